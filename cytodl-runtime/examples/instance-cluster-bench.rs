//! Times cytodl's InstanceSegCluster on a prediction TIFF (what `bench/instance_cluster_bench.py`
//! writes and times cyto_dl's clustering on). Prints one JSON line: milliseconds per run (the
//! median of `runs`), the instance count, and whether the labels equal the reference labels
//! when given.
//!
//! `cargo run --release -p cytodl-runtime --example instance-cluster-bench -- PRED.tif DIM C,Z,Y,X [RUNS] [LABELS.tif]`

use std::path::Path;
use std::time::Instant;

use cytodl_runtime::instance_seg::InstanceSegCluster;
use cytodl_runtime::io::{read, Selection};

/// The experiment binaries' allocator, so that the timing is theirs.
#[global_allocator]
static ALLOCATOR: cytodl_runtime::Allocator = cytodl_runtime::Allocator;

fn main() {
    cytodl_runtime::keep_freed_memory_mapped();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: instance-cluster-bench PRED.tif DIM C,Z,Y,X [RUNS] [LABELS.tif]");
        std::process::exit(2);
    }
    let dim: usize = args[1].parse().expect("DIM is 2 or 3");
    let shape: Vec<usize> = args[2].split(',').map(|s| s.parse().expect("shape of integers")).collect();
    let runs: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (pred, _) = read(Path::new(&args[0]), &Selection::default()).expect("prediction TIFF");
    let pred = pred.reshape(shape.clone()).expect("the given shape");
    let cluster = InstanceSegCluster { dim, min_size: 100, ..InstanceSegCluster::default() };
    let mut times = Vec::new();
    let mut labels = None;
    for _ in 0..runs {
        let t = Instant::now();
        labels = Some(cluster.apply(&pred).expect("clustering"));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let labels = labels.expect("at least one run");
    let instances = labels.data().iter().fold(0f32, |m, v| m.max(*v));
    let same = args.get(4).map(|p| {
        let (want, _) = read(Path::new(p), &Selection::default()).expect("labels TIFF");
        want.data().iter().zip(labels.data()).filter(|(a, b)| a == b).count() as f64 / want.len() as f64
    });
    println!(
        "{{\"impl\": \"cytodl\", \"median_ms\": {:.1}, \"runs\": {runs}, \"instances\": {instances}, \"identical_fraction\": {}}}",
        times[times.len() / 2],
        same.map_or("null".to_string(), |f| format!("{f:.6}"))
    );
}
