//! burn-collective between processes (nodes) on loopback: many consecutive all-reduces give
//! the right sums. burn-collective 0.21.0 hangs from the second one on (its node sync never
//! completes again); the workspace patches it (vendor/README.md), and this test is the
//! reproducer: against the unpatched crate, the second call times out.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use cytodl_testkit::workspace_example;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[test]
fn two_nodes_all_reduce_many_times_in_a_row() {
    let bin = workspace_example("collective-nodes");
    let (master, data0, data1) = (free_port(), free_port(), free_port());
    let calls = 12;
    let node = |rank: usize, data: u16| {
        Command::new(&bin)
            .args([rank.to_string(), "2".into(), master.to_string(), data.to_string(), calls.to_string()])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a node")
    };
    let nodes = [node(0, data0), node(1, data1)];
    let outputs: Vec<_> = nodes.into_iter().map(|n| n.wait_with_output().expect("a node's output")).collect();
    for (rank, out) in outputs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "node {rank} failed:\n{stderr}");
        let lines: Vec<String> = BufReader::new(&out.stdout[..]).lines().map_while(Result::ok).filter(|l| l.starts_with("call ")).collect();
        assert_eq!(lines.len(), calls, "node {rank}: {lines:?}");
        for (call, line) in lines.iter().enumerate() {
            let len = [1usize, 6, 3, 100_000, 2][call % 5];
            // Node r sends i * (r + 1) + call: the sum over both is 3i + 2 call.
            let expected: Vec<f64> = (0..len.min(6)).map(|i| (3 * i + 2 * call) as f64).collect();
            assert_eq!(line, &format!("call {call}: {expected:?}"), "node {rank}");
        }
    }
}
