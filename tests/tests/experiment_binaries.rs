//! The path a user takes: `cytodl-build example-data`, then each generated experiment binary
//! (`generated/*`, built with the workspace) trains one epoch of two batches, tests, predicts
//! (and resumes a predict), checks its data, refuses structural overrides, and predicts with a
//! real Lightning checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/` of this test build: the workspace's binaries are there.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let p = bin_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(p.is_file(), "{} is not built: run `cargo build --workspace` first (CI does)", p.display());
    p
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, bin: &Path, args: &[&str]) -> Out {
    let out = Command::new(bin).current_dir(dir).args(args).output().expect("run");
    Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cytodl-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn example_data(dir: &Path) {
    let r = run(dir, &binary("cytodl-build"), &["example-data", "data/example", "--files", "5"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(dir.join("data/example/segmentation/train.csv").is_file());
}

/// Trains 1 epoch of 2 batches, then predicts; returns the run folder.
fn train_and_predict(dir: &Path, exe: &str, head: &str) -> PathBuf {
    let bin = binary(exe);
    let run_dir = dir.join(format!("run_{exe}"));
    let r = run(dir, &bin, &["train", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "--output-dir", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok, "{exe} train:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("trained 1 epochs, 2 steps"), "{}", r.stdout);
    for f in [".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/last.ckpt", "csv/version_0/metrics.csv", "csv/version_0/hparams.yaml"] {
        assert!(run_dir.join(f).is_file(), "{exe}: {f} missing in {}", run_dir.display());
    }
    let metrics = std::fs::read_to_string(run_dir.join("csv/version_0/metrics.csv")).expect("metrics");
    let header = metrics.lines().next().expect("header");
    for col in ["train/loss", "val/loss", &format!("val/loss/{head}"), "test/loss"] {
        assert!(header.split(',').any(|c| c == col), "{exe}: no {col} in {header}");
    }
    let overrides = std::fs::read_to_string(run_dir.join(".hydra/overrides.yaml")).expect("overrides");
    assert!(overrides.contains("- trainer.max_epochs=1"), "{overrides}");

    let ckpt = run_dir.join("checkpoints/last.ckpt");
    let pred = dir.join(format!("pred_{exe}"));
    let args = ["predict", "--ckpt", ckpt.to_str().expect("utf-8"), "--output-dir", pred.to_str().expect("utf-8")];
    let r = run(dir, &bin, &args);
    assert!(r.ok, "{exe} predict:\n{}", r.stderr);
    assert!(r.stdout.contains("predict: 5 files written, 0 inputs already done"), "{}", r.stdout);
    assert!(pred.join(head).join("img_000.ome.tif").is_file());
    // An interrupted predict resumes: nothing is redone.
    let r = run(dir, &bin, &args);
    assert!(r.stdout.contains("predict: 0 files written, 5 inputs already done"), "{}", r.stdout);
    run_dir
}

#[test]
fn every_example_experiment_trains_and_predicts() {
    let dir = scratch("all");
    example_data(&dir);
    train_and_predict(&dir, "segmentation", "seg");
    train_and_predict(&dir, "labelfree", "signal");
    train_and_predict(&dir, "bench-medium", "seg");
    train_and_predict(&dir, "segmentation-resblocks", "seg");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn segmentation_binary_commands() {
    let dir = scratch("seg");
    example_data(&dir);
    let bin = binary("segmentation");

    // config: the resolved YAML it was built from.
    let r = run(&dir, &bin, &["config"]);
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated/segmentation/resolved.yaml")).expect("resolved.yaml");
    assert_eq!(r.stdout, committed);

    // data-check: clean data passes; a broken row is reported with file:line and column.
    let r = run(&dir, &bin, &["data-check"]);
    assert!(r.ok && r.stdout.contains("data-check: 5 rows, no problems"), "{}{}", r.stdout, r.stderr);
    let train_csv = dir.join("data/example/segmentation/train.csv");
    let mut csv = std::fs::read_to_string(&train_csv).expect("csv");
    csv.push_str("missing.ome.tif,img_000.ome.tif\n");
    std::fs::write(&train_csv, csv).expect("write");
    let r = run(&dir, &bin, &["data-check"]);
    assert!(!r.ok);
    assert!(r.stdout.contains("train.csv:5: column `raw`:"), "{}", r.stdout);
    assert!(r.stderr.contains("data-check: 1 problems in 6 rows"), "{}", r.stderr);

    // Runtime overrides: scalars change, structure is refused with "rebuild".
    let r = run(&dir, &bin, &["train", "model.backbone.filters=[8,16,32]"]);
    assert!(!r.ok && r.stderr.contains("rebuild with cytodl-build model.backbone.filters=[8,16,32]"), "{}", r.stderr);
    let r = run(&dir, &bin, &["train", "trainer.max_epoch=1"]);
    assert!(!r.ok && r.stderr.contains("did you mean `trainer.max_epochs`?"), "{}", r.stderr);
    let r = run(&dir, &bin, &["train", "--device", "cuda"]);
    assert!(!r.ok && r.stderr.contains("built without CUDA"), "{}", r.stderr);

    // bench: one JSON line.
    let r = run(&dir, &bin, &["bench", "--iters", "1"]);
    assert!(r.ok, "{}", r.stderr);
    let line = r.stdout.lines().last().expect("json");
    assert!(line.starts_with('{') && line.contains("\"train_step_ms\"") && line.contains("\"input_shape\": [2, 1, 16, 32, 32]"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A model trained by cyto_dl (a Lightning checkpoint with `state_dict` / `backbone.` keys)
/// predicts through the generated binary.
#[test]
fn predict_with_a_lightning_checkpoint() {
    let dir = scratch("ckpt");
    example_data(&dir);
    let ckpt = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cytodl-runtime/tests/fixtures/parity/dynunet3d_seg/lightning_style.ckpt");
    let out = dir.join("pred");
    let r = run(&dir, &binary("segmentation"), &["predict", "--ckpt", ckpt.to_str().expect("utf-8"), "--output-dir", out.to_str().expect("utf-8")]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("predict: 5 files written"), "{}", r.stdout);
    assert!(!r.stderr.contains("missing"), "weights must load by name: {}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fine-tune from a cyto_dl checkpoint, resume our own checkpoint exactly where it stopped, and
/// start fresh from its weights only.
#[test]
fn fine_tune_resume_and_weights_only() {
    let dir = scratch("resume");
    example_data(&dir);
    let bin = binary("segmentation");
    let lightning = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cytodl-runtime/tests/fixtures/parity/dynunet3d_seg/lightning_style.ckpt");
    let r = run(&dir, &bin, &["train", "--ckpt", lightning.to_str().expect("utf-8"), "trainer.max_epochs=1", "trainer.limit_train_batches=1", "--output-dir", "ft"]);
    assert!(r.ok && r.stdout.contains("trained 1 epochs, 1 steps") && !r.stdout.contains("resumed"), "{}\n{}", r.stdout, r.stderr);

    let last = dir.join("ft/checkpoints/last.ckpt");
    let r = run(&dir, &bin, &["train", "--ckpt", last.to_str().expect("utf-8"), "trainer.max_epochs=2", "trainer.limit_train_batches=1"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("resumed from") && r.stdout.contains("at epoch 1"), "{}", r.stdout);
    assert!(r.stdout.contains("trained 1 epochs, 2 steps"), "the resumed run continues counting: {}", r.stdout);
    let metrics = std::fs::read_to_string(dir.join("ft/csv/version_0/metrics.csv")).expect("resumed run logs into its own folder");
    assert!(metrics.lines().any(|l| l.starts_with("1,")), "{metrics}");

    let r = run(&dir, &bin, &["train", "--ckpt", last.to_str().expect("utf-8"), "--weights-only", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "--output-dir", "ft2"]);
    assert!(r.ok && !r.stdout.contains("resumed") && r.stdout.contains("trained 1 epochs, 1 steps"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}
