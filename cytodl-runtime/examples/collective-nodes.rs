//! One node of a multi-node burn-collective group on this machine, as a data-parallel run uses
//! it: `collective-nodes RANK NODES MASTER_PORT DATA_PORT [CALLS]` joins (node 0 runs the
//! orchestrator on MASTER_PORT), then makes CALLS all-reduces (sums of vectors of several
//! lengths, and a gradient-sized one) and prints each result as one line `call N: [..]`.
//! `tests/multi_node_collective.rs` runs two of them (vendor/README.md: the sync fix).

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
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
