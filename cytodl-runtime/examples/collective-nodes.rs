//! One node of a multi-node burn-collective group on this machine, as a data-parallel run uses
//! it: `collective-nodes RANK NODES MASTER_PORT DATA_PORT [CALLS]` joins (node 0 runs the
//! orchestrator on MASTER_PORT), then makes CALLS all-reduces (sums of vectors of several
//! lengths, and a gradient-sized one) and prints each result as one line `call N: [..]`.
//! `tests/multi_node_collective.rs` runs two of them (vendor/README.md: the sync fix).
//!
//! `collective-nodes ... CALLS NUMEL` times instead an all-reduce of NUMEL f32 values (a
//! model's gradients laid end to end, as a training step sends them), CALLS times, and prints
//! the mean milliseconds; `collective-nodes local PEERS NUMEL CALLS` does the same between
//! PEERS devices in this process (`trainer.devices`).

use std::sync::Arc;
use std::time::Duration;

use burn::collective::CollectiveConfig;
use cytodl_runtime::backend::Cpu;
use cytodl_runtime::train::parallel::{Abort, Peer};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    match args.get(i).and_then(|a| a.parse().ok()) {
        Some(v) => v,
        None => {
            eprintln!("usage: collective-nodes RANK NODES MASTER_PORT DATA_PORT [CALLS] ({what} is missing or wrong)");
            std::process::exit(2)
        }
    }
}

/// Mean milliseconds of `calls` all-reduces of `numel` f32 values (after one warm-up).
fn time_all_reduce(peer: &Peer<Cpu>, numel: usize, calls: usize) -> f64 {
    use burn::tensor::Tensor;
    let tensor = Tensor::<Cpu, 1>::ones([numel], &Default::default());
    let run = || {
        peer.sum_tensor("a timed all-reduce", tensor.clone()).map(|t| t.into_data()).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        })
    };
    run();
    let start = std::time::Instant::now();
    for _ in 0..calls {
        std::hint::black_box(run());
    }
    start.elapsed().as_secs_f64() * 1e3 / calls.max(1) as f64
}

fn local(args: &[String]) {
    let (peers, numel, calls): (usize, usize, usize) = (arg(args, 2, "PEERS"), arg(args, 3, "NUMEL"), arg(args, 4, "CALLS"));
    let abort = Arc::new(Abort::default());
    let times: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..peers)
            .map(|rank| {
                let abort = abort.clone();
                s.spawn(move || {
                    let config = CollectiveConfig::default().with_num_devices(peers);
                    let peer = Peer::<Cpu>::join(rank, peers, Default::default(), config, Duration::from_secs(60), abort).expect("join");
                    time_all_reduce(&peer, numel, calls)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a peer")).collect()
    });
    println!("{{\"peers\": {peers}, \"nodes\": 1, \"numel\": {numel}, \"all_reduce_ms\": {:.3}}}", times[0]);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("local") {
        return local(&args);
    }
    let (rank, nodes, master, data): (usize, usize, u16, u16) =
        (arg(&args, 1, "RANK"), arg(&args, 2, "NODES"), arg(&args, 3, "MASTER_PORT"), arg(&args, 4, "DATA_PORT"));
    let calls: usize = args.get(5).and_then(|c| c.parse().ok()).unwrap_or(8);
    if rank == 0 {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
        std::thread::spawn(move || runtime.block_on(burn::collective::start_global_orchestrator(master)));
    }
    let address = |port: u16| format!("ws://127.0.0.1:{port}").parse().expect("an address");
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(nodes as u32)
        .with_global_address(address(master))
        .with_node_address(address(data))
        .with_data_service_port(data);
    let peer = match Peer::<Cpu>::join(rank, nodes, Default::default(), config, Duration::from_secs(20), Arc::new(Abort::default())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    };
    if let Some(numel) = args.get(6).and_then(|n| n.parse::<usize>().ok()) {
        let ms = time_all_reduce(&peer, numel, calls);
        if rank == 0 {
            println!("{{\"peers\": {nodes}, \"nodes\": {nodes}, \"numel\": {numel}, \"all_reduce_ms\": {ms:.3}}}");
        }
        let _ = peer.leave();
        return;
    }
    for call in 0..calls {
        let len = [1, 6, 3, 100_000, 2][call % 5];
        let values: Vec<f64> = (0..len).map(|i| (i * (rank + 1) + call) as f64).collect();
        match peer.sum("a test all-reduce", &values) {
            Ok(sum) => println!("call {call}: {:?}", &sum[..sum.len().min(6)]),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1)
            }
        }
    }
    let _ = peer.leave();
}
