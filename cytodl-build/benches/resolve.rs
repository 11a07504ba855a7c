//! In-process time of compose + resolve + YAML output for one experiment (no process start-up).
//! `cargo bench -p cytodl-build --bench resolve -- [CONFIG_DIR] [OVERRIDE...]`; defaults to
//! cyto_dl's experiment/im2im/segmentation in ../shared when present. Prints `mean_ns=N`.

use std::path::PathBuf;
use std::time::Instant;

use cytodl_build::config::emit::to_yaml;
use cytodl_build::frontend::{resolve, Request};
use cytodl_build::interp::ResolveOptions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let default_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/cyto_dl-configs");
    let config_dir = args.first().map(PathBuf::from).unwrap_or(default_dir);
    if !config_dir.join("train.yaml").is_file() {
        eprintln!("skipped: no config tree at {}", config_dir.display());
        return;
    }
    let mut overrides: Vec<String> = args.iter().skip(1).cloned().collect();
    if overrides.is_empty() {
        overrides = vec!["experiment=im2im/segmentation".into(), "paths.output_dir=/out".into(), "paths.work_dir=/wd".into()];
    }
    let req = Request { config_dir, config_name: "train".into(), overrides, implicit_overrides: 0 };
    let opts = ResolveOptions::default();
    let run = || match resolve(&req, &opts) {
        Ok(r) => to_yaml(&r.config).len(),
        Err(f) => panic!("{}", f.render()),
    };
    run();
    let iters = 200;
    let start = Instant::now();
    let mut total = 0;
    for _ in 0..iters {
        total += run();
    }
    let mean = start.elapsed().as_nanos() / iters as u128;
    eprintln!("{iters} runs, {total} bytes of YAML");
    println!("mean_ns={mean}");
}
