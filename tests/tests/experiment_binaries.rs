//! The path a user takes: `cytodl-build example-data`, then each generated experiment binary
//! (`generated/*`, built with the workspace) trains one epoch of two batches, tests, predicts
//! (and resumes a predict), checks its data, refuses structural overrides, and predicts with a
//! real Lightning checkpoint.

use std::path::{Path, PathBuf};

use cytodl_runtime::io::DType;
use cytodl_tests::e2e::{binary, dice, example_data, metric_values, metrics, read_channel, read_image, run, scratch};

/// Trains 1 epoch of 2 batches, then predicts; checks what the run wrote, values included, and
/// returns the run folder.
fn train_and_predict(dir: &Path, exe: &str, head: &str) -> PathBuf {
    let bin = binary(exe);
    let run_dir = dir.join(format!("run_{exe}"));
    let r = run(dir, &bin, &["train", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "--output-dir", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok, "{exe} train:\n{}", r.text());
    // A GAN takes two optimizer steps per batch (generator, then discriminator), as Lightning counts.
    let gan = exe.starts_with("gan");
    let steps = if gan { 4 } else { 2 };
    assert!(r.stdout.contains(&format!("trained 1 epochs, {steps} steps")), "{}", r.stdout);
    for f in
        [".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/run.yaml", "checkpoints/last.ckpt", "csv/version_0/metrics.csv", "csv/version_0/hparams.yaml"]
    {
        assert!(run_dir.join(f).is_file(), "{exe}: {f} missing in {}", run_dir.display());
    }
    // The device, and what chose it: the example configs' `trainer.accelerator: cpu`.
    let record = std::fs::read_to_string(run_dir.join(".hydra/run.yaml")).expect("run.yaml");
    assert!(record.contains("device: cpu\ndevice_source: trainer.accelerator=cpu\n"), "{exe}:\n{record}");
    assert!(r.stdout.contains("device: cpu (trainer.accelerator=cpu)"), "{}", r.stdout);
    // Every metric is logged, once per stage, as a finite number; the test row is the last.
    let rows = metrics(&run_dir.join("csv/version_0/metrics.csv"));
    let named: Vec<String> = if gan { vec!["generator_loss".into(), "discriminator_loss".into()] } else { vec![head.to_string()] };
    let mut columns = vec!["train/loss".to_string(), "val/loss".into(), "test/loss".into()];
    for n in &named {
        columns.extend([format!("val/loss/{n}"), format!("test/loss/{n}")]);
    }
    for col in &columns {
        let values = metric_values(&rows, col);
        assert_eq!(values.len(), 1, "{exe}: `{col}` should appear once in 1 epoch, found {values:?}");
        assert!(values[0] > 0.0, "{exe}: `{col}` = {}", values[0]);
    }
    assert!(rows.last().is_some_and(|r| r.contains_key("test/loss")), "{exe}: the test row comes last");
    // The experiment's `model.metrics`, once per stage, each in its range.
    for (col, lo, hi) in model_metrics(exe) {
        let values = metric_values(&rows, &col);
        assert_eq!(values.len(), 1, "{exe}: `{col}` should appear once in 1 epoch, found {values:?}");
        assert!((lo..=hi).contains(&values[0]), "{exe}: `{col}` = {} outside [{lo}, {hi}]", values[0]);
    }
    let overrides = std::fs::read_to_string(run_dir.join(".hydra/overrides.yaml")).expect("overrides");
    assert_eq!(overrides, "- trainer.max_epochs=1\n- trainer.limit_train_batches=2\n");

    let ckpt = run_dir.join("checkpoints/last.ckpt");
    let pred = dir.join(format!("pred_{exe}"));
    let args = ["predict", "--ckpt", ckpt.to_str().expect("utf-8"), "--output-dir", pred.to_str().expect("utf-8")];
    let r = run(dir, &bin, &args);
    assert!(r.ok, "{exe} predict:\n{}", r.text());
    assert!(r.stdout.contains("predict: 5 files written, 0 inputs already done"), "{}", r.stdout);
    // The prediction covers the whole input image, as the config's postprocessing saves it:
    // stretched to uint8 (sigmoid or identity first), or labelled connected components as uint16.
    let data = if exe == "labelfree" { "labelfree" } else { "segmentation" };
    let input = read_channel(&dir.join(format!("data/example/{data}/img_000.ome.tif")), 0);
    let (image, dtype) = read_image(&pred.join(head).join("img_000.ome.tif"));
    assert_eq!(image.data().len(), input.data().len(), "{exe}: prediction {:?} vs input {:?}", image.shape(), input.shape());
    if exe == "segmentation-resblocks" || exe == "instance-seg" {
        assert_eq!(dtype, DType::U16, "{exe}: labels are saved as uint16");
        assert!(image.data().iter().all(|v| v.fract() == 0.0 && *v >= 0.0), "{exe}: labels are whole numbers");
    } else {
        assert_eq!(dtype, DType::U8, "{exe}: the prediction is saved as uint8");
        assert_eq!((image.min(), image.max()), (0.0, 255.0), "{exe}: rescaled to uint8's range");
    }
    // An interrupted predict resumes: nothing is redone.
    let r = run(dir, &bin, &args);
    assert!(r.ok, "{exe} predict again:\n{}", r.text());
    assert!(r.stdout.contains("predict: 0 files written, 5 inputs already done"), "{}", r.stdout);
    run_dir
}

/// The `model.metrics` columns each example experiment logs (configs/experiment/*.yaml), with
/// their ranges: Dice and IoU in [0, 1], SSIM and Pearson in [-1, 1], PSNR in dB, MAE >= 0.
fn model_metrics(exe: &str) -> Vec<(String, f64, f64)> {
    let unit = |names: &[&str]| names.iter().map(|n| (n.to_string(), 0.0, 1.0)).collect::<Vec<_>>();
    match exe {
        "segmentation" | "segmentation-resblocks" => unit(&["train/dice/seg", "val/dice/seg", "val/iou/seg", "test/dice/seg"]),
        "labelfree" => vec![
            ("val/ssim/signal".into(), -1.0, 1.0),
            ("val/psnr/signal".into(), -20.0, 80.0),
            ("val/pearson/signal".into(), -1.0, 1.0),
            ("test/ssim/signal".into(), -1.0, 1.0),
            ("test/psnr/signal".into(), -20.0, 80.0),
        ],
        "gan" => vec![("val/ssim/raw".into(), -1.0, 1.0), ("val/psnr/raw".into(), -20.0, 80.0), ("test/mae/raw".into(), 0.0, 100.0)],
        "gan-superres" => vec![("val/psnr/raw".into(), -20.0, 80.0), ("test/psnr/raw".into(), -20.0, 80.0)],
        _ => Vec::new(),
    }
}

#[test]
fn every_example_experiment_trains_and_predicts() {
    let dir = scratch("all");
    example_data(&dir, 5);
    train_and_predict(&dir, "segmentation", "seg");
    train_and_predict(&dir, "labelfree", "signal");
    train_and_predict(&dir, "bench-medium", "seg");
    train_and_predict(&dir, "segmentation-resblocks", "seg");
    // A quarter-size raw in, the full-size segmentation out.
    train_and_predict(&dir, "segmentation-superres", "seg");
    // A segmentation in, a raw image out, generated against a discriminator; and 4x larger.
    train_and_predict(&dir, "gan", "raw");
    train_and_predict(&dir, "gan-superres", "raw");
    // Instance labels (uint16) from skeletons, a semantic mask and embeddings.
    train_and_predict(&dir, "instance-seg", "seg");
}

#[test]
fn segmentation_binary_commands() {
    let dir = scratch("seg");
    example_data(&dir, 5);
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
    assert!(!r.ok && r.stderr.contains("--device cuda: this binary was built without cuda; rebuild with `cytodl-build build --features cuda"), "{}", r.stderr);
    let r = run(&dir, &bin, &["train", "--device", "libtorch:cuda:1"]);
    assert!(!r.ok && r.stderr.contains("--device libtorch:cuda:1: this binary was built without libtorch"), "{}", r.stderr);
    // `trainer.accelerator` picks the device when `--device` does not (Lightning's meaning).
    let r = run(&dir, &bin, &["train", "trainer.accelerator=gpu"]);
    assert!(
        !r.ok
            && r.stderr
                .contains("trainer.accelerator is gpu, but this binary was built without a GPU backend: rebuild it with `cytodl-build build --features cuda"),
        "{}",
        r.stderr
    );
    let r = run(&dir, &bin, &["train", "trainer.accelerator=tpu"]);
    assert!(!r.ok && r.stderr.contains("`trainer.accelerator`: `tpu` is not auto, cpu, gpu, cuda or mps"), "{}", r.stderr);
    let r = run(&dir, &bin, &["train", "--device", "gpu"]);
    assert!(!r.ok && r.stderr.contains("--device gpu: expected cpu, cuda, cuda:N, wgpu, libtorch, libtorch:cuda:N or libtorch:cpu"), "{}", r.stderr);

    // bench: one JSON line.
    let r = run(&dir, &bin, &["bench", "--iters", "1"]);
    assert!(r.ok, "{}", r.stderr);
    let line = r.stdout.lines().last().expect("json");
    assert!(line.starts_with('{') && line.contains("\"train_step_ms\"") && line.contains("\"input_shape\": [2, 1, 16, 32, 32]"), "{line}");
}

/// A model trained by cyto_dl (a Lightning checkpoint with `state_dict` / `backbone.` keys)
/// predicts through the generated binary what cyto_dl predicts with it: the oracle is
/// `scripts/oracles/lightning_predict.py` (torch + MONAI sliding-window inference and cyto_dl's
/// ActThreshLabel), whose output is `tests/fixtures/lightning_predict/`.
#[test]
fn predict_with_a_lightning_checkpoint() {
    let dir = scratch("ckpt");
    example_data(&dir, 5);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ckpt = root.join("cytodl-runtime/tests/fixtures/parity/dynunet3d_seg/lightning_style.ckpt");
    let out = dir.join("pred");
    let r = run(&dir, &binary("segmentation"), &["predict", "--ckpt", ckpt.to_str().expect("utf-8"), "--output-dir", out.to_str().expect("utf-8")]);
    assert!(r.ok, "{}", r.text());
    assert!(r.stdout.contains("predict: 5 files written"), "{}", r.stdout);
    assert!(!r.stderr.contains("warning"), "every weight loads by name: {}", r.stderr);
    let (ours, dtype) = read_image(&out.join("seg/img_000.ome.tif"));
    let (want, want_dtype) = read_image(&root.join("tests/fixtures/lightning_predict/seg_img_000.tif"));
    assert_eq!((dtype, ours.shape()), (want_dtype, want.shape()));
    // uint8 after a sigmoid and a stretch: float differences of 1e-6 may move a voxel that sits
    // on a rounding boundary by one step, nothing more.
    let diffs: Vec<f32> = ours.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).collect();
    let worst = diffs.iter().copied().fold(0.0f32, f32::max);
    let differing = diffs.iter().filter(|d| **d > 0.0).count();
    assert!(worst <= 1.0 && differing * 1000 <= diffs.len(), "prediction differs from cyto_dl's (torch + MONAI): max {worst}, {differing} of {} voxels; if the example data changed, rerun scripts/oracles/lightning_predict.py", diffs.len());
}

/// Trained by its binary for 15 epochs, the example segmentation finds the example's blobs
/// in images it never trained on: Dice against the ground truth far above the trivial answer's.
#[test]
fn segmentation_learns_the_example_masks() {
    let dir = scratch("learn");
    example_data(&dir, 8);
    let bin = binary("segmentation");
    let r = run(&dir, &bin, &["train", "trainer.max_epochs=15", "lr=0.003", "--output-dir", "run"]);
    assert!(r.ok, "{}", r.text());
    let rows = metrics(&dir.join("run/csv/version_0/metrics.csv"));
    let losses = metric_values(&rows, "train/loss");
    assert_eq!(losses.len(), 15);
    assert!(losses[14] < 0.6 * losses[0], "the training loss falls: {losses:?}");
    // The logged Dice (model.metrics' BinaryF1Score) rises as the loss falls.
    let val_dice = metric_values(&rows, "val/dice/seg");
    assert_eq!(val_dice.len(), 15);
    assert!(val_dice[14] > val_dice[0] + 0.2, "val/dice/seg rises: {val_dice:?}");
    let r = run(&dir, &bin, &["predict", "--ckpt", "run/checkpoints/last.ckpt", "--output-dir", "pred"]);
    assert!(r.ok, "{}", r.text());
    // 8 images: 6 train, img_006 validates, img_007 tests.
    for (image, at_least) in [("img_007", 0.85), ("img_006", 0.8), ("img_000", 0.85)] {
        let truth = read_channel(&dir.join(format!("data/example/segmentation/{image}.ome.tif")), 1);
        let (pred, _) = read_image(&dir.join(format!("pred/seg/{image}.ome.tif")));
        let score = dice(pred.data(), 127.5, truth.data(), 0.0);
        let everything = dice(&vec![1.0; truth.data().len()], 0.5, truth.data(), 0.0);
        assert!(score >= at_least, "{image}: Dice {score:.3} (all-foreground scores {everything:.3})");
        assert!(everything < 0.3, "{image}: the blobs are a small part of the image ({everything:.3})");
    }
    // The test stage (with the best checkpoint, as Lightning's) logs the Dice of img_007 (whole
    // image, logits thresholded at 0): the Dice of that checkpoint's saved prediction (sigmoid
    // stretched to uint8, thresholded at 127.5) up to that rounding.
    let best = std::fs::read_dir(dir.join("run/checkpoints"))
        .expect("checkpoints")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n != "last.ckpt"))
        .expect("a best checkpoint");
    let r = run(&dir, &bin, &["predict", "--ckpt", best.to_str().expect("utf-8"), "--output-dir", "pred_best"]);
    assert!(r.ok, "{}", r.text());
    let truth = read_channel(&dir.join("data/example/segmentation/img_007.ome.tif"), 1);
    let (pred, _) = read_image(&dir.join("pred_best/seg/img_007.ome.tif"));
    let ours = dice(pred.data(), 127.5, truth.data(), 0.0);
    let logged = metric_values(&rows, "test/dice/seg");
    assert_eq!(logged.len(), 1, "one test row");
    assert!((logged[0] - ours).abs() < 0.01, "test/dice/seg {} vs the saved prediction's Dice {ours}", logged[0]);
}

/// Fine-tune from a cyto_dl checkpoint, resume our own checkpoint exactly where it stopped, and
/// start fresh from its weights only.
#[test]
fn fine_tune_resume_and_weights_only() {
    let dir = scratch("resume");
    example_data(&dir, 5);
    let bin = binary("segmentation");
    let lightning = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cytodl-runtime/tests/fixtures/parity/dynunet3d_seg/lightning_style.ckpt");
    let r = run(
        &dir,
        &bin,
        &["train", "--ckpt", lightning.to_str().expect("utf-8"), "trainer.max_epochs=1", "trainer.limit_train_batches=1", "--output-dir", "ft"],
    );
    assert!(r.ok && r.stdout.contains("trained 1 epochs, 1 steps") && !r.stdout.contains("resumed"), "{}\n{}", r.stdout, r.stderr);

    let last = dir.join("ft/checkpoints/last.ckpt");
    let log = dir.join("ft/csv/version_0/metrics.csv");
    let first_part = metrics(&log);
    let r = run(&dir, &bin, &["train", "--ckpt", last.to_str().expect("utf-8"), "trainer.max_epochs=2", "trainer.limit_train_batches=1"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("resumed from") && r.stdout.contains("at epoch 1"), "{}", r.stdout);
    assert!(r.stdout.contains("trained 1 epochs, 2 steps"), "the resumed run continues counting: {}", r.stdout);
    // The resumed run continues its own metrics.csv: epoch 0's train and val rows as they were,
    // then epoch 1's, then one test row (the first part's test row is replaced).
    assert!(!dir.join("ft/csv/version_1").exists(), "no second log folder");
    let rows = metrics(&log);
    let epochs: Vec<&str> = rows.iter().map(|r| r["epoch"].as_str()).collect();
    assert_eq!(epochs, ["0", "0", "1", "1", "2"], "{rows:?}");
    assert_eq!(rows[..2], first_part[..2], "epoch 0 is kept as logged");
    assert_eq!(metric_values(&rows, "test/loss").len(), 1);

    let r = run(
        &dir,
        &bin,
        &["train", "--ckpt", last.to_str().expect("utf-8"), "--weights-only", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "--output-dir", "ft2"],
    );
    assert!(r.ok && !r.stdout.contains("resumed") && r.stdout.contains("trained 1 epochs, 1 steps"), "{}", r.stdout);
}
