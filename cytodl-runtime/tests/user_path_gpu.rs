//! The user's path on the GPU code path: cytodl's segmentation experiment, expanded from its YAML
//! by `cytodl_experiment!` as a user crate does, trains, validates and tests through the
//! experiment binary's command line with `trainer.accelerator=gpu` — which, in a build whose only
//! GPU backend is wgpu, is burn's CubeCL kernels (on lavapipe in CI) — and gives the CPU's
//! losses at the same seed.
#![cfg(feature = "wgpu")]

use std::collections::BTreeMap;
use std::path::Path;

use cytodl_build::example_data::{self, Shape};
use cytodl_testkit::Scratch;

cytodl_macros::cytodl_experiment!("../configs/experiment/segmentation.yaml");

/// `metrics.csv`'s loss columns: each column's values in row order.
fn losses(run: &Path) -> BTreeMap<String, Vec<f64>> {
    let path = run.join("csv/version_0/metrics.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let mut columns: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in lines {
        for (name, cell) in header.iter().zip(line.split(',')) {
            if name.contains("loss") && !cell.is_empty() {
                columns.entry(name.to_string()).or_default().push(cell.parse().unwrap_or_else(|_| panic!("{name}: {cell}")));
            }
        }
    }
    columns
}

/// Trains one short run with `extra` arguments in `out`; what `train` printed is not kept.
fn train(dir: &Path, out: &str, extra: &[&str]) -> std::path::PathBuf {
    let run = dir.join(out);
    let data = format!("data.path={}", dir.join("data/segmentation").display());
    let cache = format!("data.cache_dir={}", dir.join("cache").display());
    let mut args = vec!["segmentation", "train", "trainer.max_epochs=1", "trainer.limit_train_batches=2", &data, &cache, "--output-dir"];
    let run_text = run.to_str().expect("utf-8").to_string();
    args.push(&run_text);
    args.extend_from_slice(extra);
    if let Err(e) = cytodl_runtime::cli::run_command_line::<segmentation::Segmentation, _, _>(&args) {
        panic!("segmentation {}: {e}", args[1..].join(" "));
    }
    run
}

#[test]
fn segmentation_trains_on_the_gpu_code_path_like_on_the_cpu() {
    let dir = Scratch::new("user-path-gpu");
    // Fields of view the size of the patch: one sliding window each in validation and test.
    example_data::write(&dir.join("data"), 3, Shape { z: 16, y: 32, x: 32 }).expect("example data");
    let gpu = train(&dir, "gpu", &["trainer.accelerator=gpu"]);
    let cpu = train(&dir, "cpu", &["--device", "cpu"]);

    let record = |run: &Path| std::fs::read_to_string(run.join(".hydra/run.yaml")).expect("run.yaml");
    assert!(record(&gpu).contains("device: wgpu\ndevice_source: trainer.accelerator=gpu\n"), "{}", record(&gpu));
    assert!(record(&cpu).contains("device: cpu\ndevice_source: --device\n"), "{}", record(&cpu));

    let (on_gpu, on_cpu) = (losses(&gpu), losses(&cpu));
    for column in ["train/loss", "val/loss", "test/loss"] {
        assert!(on_cpu.get(column).is_some_and(|v| !v.is_empty()), "the CPU run logged no {column}: {on_cpu:?}");
    }
    assert_eq!(on_gpu.keys().collect::<Vec<_>>(), on_cpu.keys().collect::<Vec<_>>(), "the same loss columns");
    for (column, want) in &on_cpu {
        let got = &on_gpu[column];
        assert_eq!(got.len(), want.len(), "{column}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.is_finite() && (g - w).abs() <= 1e-4 * w.abs().max(1.0), "{column}: {g} on wgpu vs {w} on the CPU");
        }
    }
    let checkpoint = |run: &Path| std::fs::metadata(run.join("checkpoints/last.ckpt")).map(|m| m.len()).unwrap_or(0);
    assert!(checkpoint(&gpu) > 0 && checkpoint(&gpu) == checkpoint(&cpu), "the GPU run's checkpoint is the CPU run's size");
}
