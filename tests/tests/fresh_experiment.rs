//! The quick start's path with an experiment nobody committed: a user's config tree (the
//! project's `configs/` copied to a temp folder) gains a new experiment file, which the bare
//! `cytodl-build EXPERIMENT.yaml` of README's quick start compiles (a release build, its crate
//! outside the workspace with `--out`), and whose binary then trains and predicts.

use std::path::Path;

use cytodl_runtime::io::DType;
use cytodl_tests::e2e::{binary, example_data, metric_values, metrics, read_channel, read_image, run, scratch};

/// A 2-D nucleus segmentation a user might write from scratch: the data and model groups of the
/// project, a smaller network, a Dice loss, its own name.
const EXPERIMENT: &str = r#"# @package _global_
defaults:
  - override /data: segmentation
  - override /model: segmentation
  - override /callbacks: default
  - override /trainer: cpu
  - override /logger: csv

seed: 3
experiment_name: my_nuclei
run_name: first_try
source_col: raw
target_col: seg
spatial_dims: 2
raw_im_channels: 1

trainer:
  max_epochs: 2

data:
  path: ${paths.data_dir}/example/segmentation
  batch_size: 2
  _aux:
    patch_shape: [32, 32]

model:
  backbone:
    filters: [8, 16, 32]
"#;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_new_experiment_file_builds_trains_and_predicts() {
    let dir = scratch("fresh");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    copy_tree(&root.join("configs"), &dir.join("configs"));
    std::fs::write(dir.join("configs/experiment/my_nuclei.yaml"), EXPERIMENT).expect("write the experiment");
    example_data(&dir, 5);

    // README: `cytodl-build configs/experiment/segmentation.yaml` prints the binary's path last.
    let build = run(&dir, &binary("cytodl-build"), &["configs/experiment/my_nuclei.yaml", "--out", "gen"]);
    assert!(build.ok, "cytodl-build:\n{}", build.text());
    let printed = build.stdout.lines().last().map(str::trim).expect("the binary's path");
    let bin = dir.join(printed); // relative to where cytodl-build ran
    assert!(bin.is_file(), "`{printed}` is not a file:\n{}", build.text());
    assert!(bin.starts_with(dir.join("gen")), "the binary lives in its crate folder: {printed}");
    let generated = std::fs::read_to_string(dir.join("gen/src/experiment.rs")).expect("generated code");
    assert!(generated.contains("filters: Some(Vec::from([8, 16, 32]))"), "the user's filters reach the code");

    let bin = bin.as_path();
    let r = run(&dir, bin, &["train"]);
    assert!(r.ok, "train:\n{}", r.text());
    assert!(r.stdout.contains("trained 2 epochs"), "{}", r.stdout);
    // Run folders follow the experiment's names: logs/train/runs/my_nuclei/first_try/<time>/.
    let runs: Vec<_> = std::fs::read_dir(dir.join("logs/train/runs/my_nuclei/first_try")).expect("run folder").map(|e| e.expect("entry").path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_dir = &runs[0];
    let losses = metric_values(&metrics(&run_dir.join("csv/version_0/metrics.csv")), "train/loss");
    assert_eq!(losses.len(), 2);
    let config = std::fs::read_to_string(run_dir.join(".hydra/config.yaml")).expect("config");
    assert!(config.contains("spatial_dims: 2"), "{config}");

    let ckpt = run_dir.join("checkpoints/last.ckpt");
    let r = run(&dir, bin, &["predict", "--ckpt", ckpt.to_str().expect("utf-8"), "--output-dir", "pred"]);
    assert!(r.ok, "predict:\n{}", r.text());
    // 2-D: the example's slice Z = 4 of channel 0 (the data group's `Z: 4` when spatial_dims is 2).
    let (image, dtype) = read_image(&dir.join("pred/seg/img_000.ome.tif"));
    assert_eq!(image.data().len(), 64 * 64, "one 64 x 64 slice, got {:?}", image.shape());
    assert_eq!(dtype, DType::U8, "ActThreshLabel's rescale_dtype");
    // Two epochs of a small network already tell the blobs from the background: the sigmoid
    // (stretched to 0..255) is higher on the ground truth's foreground than off it.
    let truth = read_channel(&dir.join("data/example/segmentation/img_000.ome.tif"), 1);
    let plane = 64 * 64;
    assert!(truth.data().len() >= 5 * plane, "the example image has at least 5 slices: {:?}", truth.shape());
    let truth = &truth.data()[4 * plane..5 * plane];
    let mean = |inside: bool| {
        let v: Vec<f32> = image.data().iter().zip(truth).filter(|(_, t)| (**t > 0.0) == inside).map(|(p, _)| *p).collect();
        assert!(!v.is_empty(), "slice 4 has foreground and background");
        v.iter().sum::<f32>() / v.len() as f32
    };
    let (fg, bg) = (mean(true), mean(false));
    assert!(fg > bg + 10.0, "the prediction follows the blobs: mean {fg:.1} on them, {bg:.1} off them");
}
