//! In-process time of what `cytodl_experiment!` does for one experiment: compose, resolve,
//! check and generate the module's tokens. `cargo bench -p cytodl-build --bench expand
//! [-- EXPERIMENT_YAML]` (default: the project's segmentation experiment). Prints `mean_ns=N`.

use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = args.first().cloned().unwrap_or_else(|| "configs/experiment/segmentation.yaml".into());
    let run = || match cytodl_build::expand::expand_experiment(&root, &file, &[]) {
        Ok(e) => e.tokens.to_string().len(),
        Err(msg) => panic!("{msg}"),
    };
    run();
    let iters = 100;
    let start = Instant::now();
    let mut total = 0;
    for _ in 0..iters {
        total += run();
    }
    let mean = start.elapsed().as_nanos() / iters as u128;
    eprintln!("{iters} expansions, {total} bytes of tokens");
    println!("mean_ns={mean}");
}
