//! The config mistakes users make, each through `cytodl-build check` on a copy of the project's
//! own config tree: every case asserts the message, the file:line:col it points at, and the
//! suggestion. Most cases are an experiment that inherits `segmentation` and changes one thing.

mod common;

use std::path::Path;

use common::{cytodl_build, Tree};

const HEAD: &str = "# @package _global_\ndefaults:\n  - segmentation\n  - _self_\n";

/// The project's `configs/` as (relative path, text) pairs.
fn project_configs() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("configs").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).expect("under configs").display().to_string();
                out.push((rel, std::fs::read_to_string(&p).expect("read")));
            }
        }
    }
    out
}

struct Case<'a> {
    /// The experiment file's text (written to `experiment/broken.yaml`).
    experiment: &'a str,
    overrides: &'a [&'a str],
    /// `file:line:col: error: message` (the file relative to the config root).
    error: &'a str,
    help: Option<&'a str>,
    /// Extra files or replacements in the tree.
    files: &'a [(&'a str, &'a str)],
}

fn run(case: Case) {
    let mut files = project_configs();
    files.push(("experiment/broken.yaml".into(), case.experiment.into()));
    for (p, t) in case.files {
        files.retain(|(q, _)| q != p);
        files.push((p.to_string(), t.to_string()));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let tree = Tree::new(&refs);
    let mut args = vec!["check", "experiment/broken.yaml"];
    args.extend_from_slice(case.overrides);
    let out = cytodl_build(&tree.root, &args, &[]);
    assert!(!out.ok, "check passed:\n{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at = lines.iter().position(|l| l.ends_with(case.error) || *l == case.error).unwrap_or_else(|| panic!("no `{}` in:\n{}", case.error, out.stderr));
    if let Some(help) = case.help {
        let next_error = lines[at + 1..].iter().position(|l| l.contains(": error: ")).map_or(lines.len(), |i| at + 1 + i);
        let block = lines[at..next_error].join("\n");
        assert!(block.contains(&format!("= help: {help}")), "help `{help}` missing in:\n{block}");
    }
    // Nothing is generated from a broken config: `generate` fails the same way and writes nothing.
    let mut args = vec!["generate", "experiment/broken.yaml", "--out", "gen"];
    args.extend_from_slice(case.overrides);
    let out = cytodl_build(&tree.root, &args, &[]);
    assert!(!out.ok && out.stderr.contains(case.error), "generate of a broken config:\n{}", out.stderr);
    assert!(!tree.root.join("gen").exists(), "generate wrote files for a broken config");
}

fn exp(extra: &str) -> String {
    format!("{HEAD}{extra}")
}

#[test]
fn unknown_parameter_suggests_the_nearest() {
    let e = exp("model:\n  backbone:\n    filterz: [8, 16, 32]\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:14: error: `monai.networks.nets.DynUNet` has no parameter `filterz`",
        help: Some("did you mean `filters`?"),
        files: &[],
    });
}

#[test]
fn unknown_target_suggests_the_nearest() {
    let e = exp("model:\n  backbone:\n    _target_: monai.networks.nets.DynUnet\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:15: error: unknown backbone `monai.networks.nets.DynUnet`",
        help: Some("did you mean one of `monai.networks.nets.DynUNet`"),
        files: &[],
    });
}

#[test]
fn known_but_unimplemented_target_is_listed() {
    let e = exp(
        "model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.head.mae_head.MAEHead\n          loss:\n            _target_: torch.nn.MSELoss\n",
    );
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:9:21: error: `cyto_dl.nn.head.mae_head.MAEHead` (MAE head) is not implemented in cytodl yet",
        help: Some("supported task heads: cyto_dl.nn.BaseHead, cyto_dl.nn.ResBlocksHead"),
        files: &[],
    });
}

/// cyto_dl's GAN: a GAN head outside a GAN, a missing discriminator optimizer, and what the
/// discriminator and Lightning's manual optimization cannot take, each at its location.
#[test]
fn gan_mistakes() {
    let e = exp("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.GANHead\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:9:11: error: `cyto_dl.nn.GANHead` trains against a discriminator: it needs model `cyto_dl.models.im2im.GAN`",
        help: Some("use a BaseHead or ResBlocksHead here, or make the model a GAN"),
        files: &[],
    });
    let gan = "# @package _global_\ndefaults:\n  - gan\n  - _self_\n";
    run(Case {
        experiment: gan,
        overrides: &["~model.optimizer.discriminator"],
        error: "model/gan.yaml:36:3: error: a GAN needs an optimizer for its discriminator: `model.optimizer.discriminator`",
        help: Some("add `discriminator: {_partial_: True, _target_: torch.optim.Adam, lr: 0.0001, betas: [0.5, 0.999]}`"),
        files: &[],
    });
    for (over, error, help) in [
        ("+trainer.gradient_clip_val=0.5", "error: a GAN optimizes manually, and Lightning refuses gradient clipping for manual optimization (`trainer.gradient_clip_val`)", "remove trainer.gradient_clip_val"),
        (
            "model.discriminator.input_nc=3",
            "error: the discriminator takes input_nc = 3 channels, but it is given the source (1 channels) and head `raw`'s target (1): 2",
            "set input_nc: 2",
        ),
        ("model._aux._tasks.0.1.gan_loss.scales=2", "error: Pix2PixHD averages over scales = 2, the discriminator has n_scales = 1", "scales must be in 1..=1"),
        (
            "model.discriminator.n_layers=3",
            "error: a training patch of [8, 32, 32] is too small for the discriminator: at scale 0 ([8, 32, 32]) its 3 strided layers and two 4-wide layers leave no output",
            "use fewer n_layers or n_scales, or a larger patch",
        ),
    ] {
        let at = format!("<override 1>:1:1: {error}");
        run(Case { experiment: gan, overrides: &[over], error: &at, help: Some(help), files: &[] });
    }
}

/// `model.metrics`: names that are not `<split>/<type>/<head>`, a split no stage logs, a head
/// the model lacks, a loss average where a comparison belongs and back, a task the binary metrics
/// do not have, a known torchmetrics class not implemented — each at its entry, with the fix.
#[test]
fn metric_mistakes() {
    let f1 = "_target_: torchmetrics.classification.BinaryF1Score";
    for (key, body, error, help) in [
        ("val/dice/segg", f1, "8:7: error: metric `val/dice/segg`: `segg` is not a head of this model (seg)", Some("did you mean `seg`?")),
        (
            "predict/dice/seg",
            f1,
            "8:7: error: metric `predict/dice/seg`: split `predict` is none of train, val, test (metrics are logged in those stages only)",
            None,
        ),
        ("dice", f1, "8:7: error: metric name `dice` is not `<split>/<type>/<head>`", Some("e.g. `val/dice/<head>`")),
        ("val/dice", f1, "8:7: error: metric `val/dice` names no head: it compares one head's prediction with its target", Some("`val/dice/seg`")),
        // over an entry segmentation.yaml declares: the error is where this file sets `_target_`
        (
            "val/dice/seg",
            "_target_: torchmetrics.MeanMetric",
            "8:17: error: metric `val/dice/seg`: torchmetrics.MeanMetric averages losses; a `dice` metric compares a prediction with its target",
            Some("average the loss as `val/loss/<head>`"),
        ),
        (
            "val/loss/seg",
            f1,
            "8:17: error: metric `val/loss/seg` averages a loss, which takes torchmetrics.MeanMetric, not `torchmetrics.classification.BinaryF1Score`",
            Some("compare predictions under another type: `val/<type>/seg`"),
        ),
        (
            "val/f1/seg",
            "_target_: torchmetrics.F1Score\n      task: multiclass",
            "9:13: error: `task` of `torchmetrics.F1Score` must be one of `binary`, found \"multiclass\"",
            None,
        ),
        (
            "val/dice/seg",
            "_target_: torchmetrics.segmentation.DiceScore\n      num_classes: 2",
            "8:17: error: `torchmetrics.segmentation.DiceScore` (Dice of one-hot predictions; BinaryF1Score is the Dice of a thresholded prediction) is not implemented in cytodl yet",
            Some("supported metrics: torchmetrics.MeanMetric, torchmetrics.classification.BinaryF1Score"),
        ),
    ] {
        let e = exp(&format!("model:\n  metrics:\n    {key}:\n      {body}\n"));
        run(Case { experiment: &e, overrides: &[], error: &format!("experiment/broken.yaml:{error}"), help, files: &[] });
    }
    // A callback monitors what model.metrics logs in train and val; test metrics are not monitored.
    run(Case {
        experiment: &exp("callbacks:\n  model_checkpoint:\n    monitor: test/dice/seg\n"),
        overrides: &[],
        error: "experiment/broken.yaml:7:14: error: `test/dice/seg` is not a metric this experiment logs (train/loss, val/loss, train/loss/seg, val/loss/seg, train/dice/seg, val/dice/seg, val/iou/seg)",
        help: Some("did you mean one of `train/dice/seg`, `val/dice/seg`?"),
        files: &[],
    });
}

#[test]
fn wrong_type() {
    let e = exp("model:\n  backbone:\n    res_block: \"yes\"\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:16: error: `res_block` of `monai.networks.nets.DynUNet` must be a boolean, found \"yes\"",
        help: None,
        files: &[],
    });
}

#[test]
fn missing_required_parameter_points_at_the_component() {
    run(Case {
        experiment: HEAD,
        overrides: &["~model.backbone.kernel_size"],
        error: "model/segmentation.yaml:10:3: error: `monai.networks.nets.DynUNet` needs `kernel_size` (per level: an int or one int per axis)",
        help: Some("add `kernel_size: <any value>`"),
        files: &[],
    });
}

#[test]
fn mandatory_value_left_unset() {
    let data = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/data/segmentation.yaml")).expect("data");
    let data = data.replacen("path:\n", "path: ???\n", 1);
    let e = "# @package _global_\ndefaults:\n  - override /data: segmentation\n  - override /model: segmentation\nsource_col: raw\ntarget_col: seg\nspatial_dims: 3\nraw_im_channels: 1\ndata:\n  _aux:\n    patch_shape: [16, 32, 32]\n    _scales_dict: [[seg, [1]], [raw, [1]]]\n";
    run(Case {
        experiment: e,
        overrides: &[],
        error: "data/segmentation.yaml:4:7: error: Missing mandatory value: data.path",
        help: Some("set it on the command line: `data.path=<value>`"),
        files: &[("data/segmentation.yaml", &data)],
    });
}

#[test]
fn transform_key_not_a_column() {
    let e = exp("data:\n  transforms:\n    predict:\n      _target_: monai.transforms.Compose\n      transforms:\n        - _target_: monai.transforms.LoadImaged\n          keys: rwa\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:11:17: error: `monai.transforms.LoadImaged` uses key `rwa`, which is not one of data.columns [raw, seg]",
        help: Some("did you mean `raw`?"),
        files: &[],
    });
}

#[test]
fn head_without_a_target_column() {
    let e =
        exp("model:\n  _aux:\n    _tasks:\n      - - sgm\n        - _target_: cyto_dl.nn.BaseHead\n          loss:\n            _target_: torch.nn.MSELoss\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:9:11: error: head `sgm` has no target column: it is not one of data.columns [raw, seg]",
        help: Some("did you mean `seg`?"),
        files: &[],
    });
}

/// A MaskHead's mask is a data column, and its loss must take a mask (cyto_dl calls
/// `loss(prediction, target, mask)`).
#[test]
fn mask_head_needs_a_mask_column_and_a_masked_loss() {
    let e = exp("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.head.MaskHead\n          mask_key: sgm\n          loss:\n            _target_: monai.losses.MaskedDiceLoss\n            sigmoid: True\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:10:21: error: head `seg` takes its mask from `sgm`, which is not one of data.columns [raw, seg]",
        help: Some("did you mean `seg`?"),
        files: &[],
    });
    let e = exp("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.head.MaskHead\n          mask_key: raw\n          loss:\n            _target_: monai.losses.DiceLoss\n            sigmoid: True\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:12:13: error: a MaskHead calls its loss with (prediction, target, mask), which `monai.losses.DiceLoss` does not take (cyto_dl fails with a TypeError)",
        help: Some("use monai.losses.MaskedDiceLoss, or a BaseHead for an unmasked loss"),
        files: &[],
    });
}

#[test]
fn patch_shape_rank_names_use_and_definition() {
    let t = Tree::new(&project_configs().iter().map(|(p, t)| (p.as_str(), t.as_str())).chain([("experiment/broken.yaml", HEAD)]).collect::<Vec<_>>());
    let out = cytodl_build(&t.root, &["check", "experiment/broken.yaml", "spatial_dims=2"], &[]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("data/segmentation.yaml:45:22: error: patch_shape [16, 32, 32] has 3 values but the backbone's spatial_dims is 2"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("= note: experiment/segmentation.yaml:29:18: the value comes from `data._aux.patch_shape`, defined here"), "{}", out.stderr);
    assert!(out.stderr.contains("= help: give 2 values (for 2D: `spatial_dims=2 data._aux.patch_shape=[64,64]`)"), "{}", out.stderr);
}

#[test]
fn roi_size_rank() {
    let e = exp("model:\n  inference_args:\n    roi_size: [16, 32]\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:15: error: roi_size [16, 32] has 2 values but spatial_dims is 3",
        help: Some("give 3 values"),
        files: &[],
    });
}

#[test]
fn head_channels_must_match_the_backbone() {
    let e = exp("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.ResBlocksHead\n          in_channels: 4\n          out_channels: 1\n          loss:\n            _target_: torch.nn.MSELoss\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:10:24: error: head `seg` takes in_channels = 4, but the backbone gives out_channels = 1",
        help: Some("set in_channels: 1 (or the backbone's out_channels to 4)"),
        files: &[],
    });
}

#[test]
fn loss_with_sigmoid_and_softmax() {
    let e = exp("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.BaseHead\n          loss:\n            _target_: monai.losses.DiceCELoss\n            sigmoid: True\n            softmax: True\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:11:13: error: `monai.losses.DiceCELoss` has both sigmoid and softmax set",
        help: Some("choose one: sigmoid for independent channels, softmax for classes"),
        files: &[],
    });
}

#[test]
fn softmax_over_one_channel() {
    let e = exp("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.BaseHead\n          loss:\n            _target_: monai.losses.DiceLoss\n            softmax: True\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:11:13: error: softmax over 1 output channel is constant, so `monai.losses.DiceLoss` cannot learn",
        help: Some("use `sigmoid: True` for a binary target"),
        files: &[],
    });
}

#[test]
fn focal_loss_parameters() {
    let focal = |extra: &str| {
        exp(&format!("model:\n  _aux:\n    _tasks:\n      - - seg\n        - _target_: cyto_dl.nn.BaseHead\n          loss:\n            _target_: monai.losses.FocalLoss\n{extra}"))
    };
    let e = focal("            use_softmax: True\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:12:26: error: softmax over 1 output channel is constant, so `monai.losses.FocalLoss` cannot learn",
        help: Some("leave `use_softmax` false for a binary target"),
        files: &[],
    });
    let e = focal("            alpha: 1.5\n");
    run(Case { experiment: &e, overrides: &[], error: "experiment/broken.yaml:12:20: error: alpha must be in [0, 1], found 1.5", help: None, files: &[] });
    let e = focal("            weight: [1.0, -2.0]\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:12:21: error: weight values must be >= 0, found [1.0, -2.0]",
        help: None,
        files: &[],
    });
}

#[test]
fn negative_learning_rate() {
    let e = exp("model:\n  optimizer:\n    generator:\n      lr: -0.001\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:8:11: error: learning rate must be a non-negative number, found -0.001",
        help: Some("typical values: 1e-4 .. 1e-2"),
        files: &[],
    });
}

#[test]
fn zero_patience() {
    let e = exp("callbacks:\n  early_stopping:\n    patience: 0\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:15: error: patience must be at least 1, found 0",
        help: Some("patience counts validation checks without improvement"),
        files: &[],
    });
}

#[test]
fn monitored_metric_typo() {
    let e = exp("callbacks:\n  model_checkpoint:\n    monitor: val/los\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:14: error: `val/los` is not a metric this experiment logs (train/loss, val/loss, train/loss/seg, val/loss/seg, train/dice/seg, val/dice/seg, val/iou/seg)",
        help: Some("did you mean one of `val/loss`, `val/loss/seg`?"),
        files: &[],
    });
}

#[test]
fn unknown_split() {
    let e = exp("data:\n  transforms:\n    vaild:\n      _target_: monai.transforms.Compose\n      transforms: []\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:8:7: error: unknown split `vaild` in data.transforms",
        help: Some("did you mean one of `val`, `valid`?"),
        files: &[],
    });
}

#[test]
fn blend_mode_typo() {
    let e = exp("model:\n  inference_args:\n    mode: gausian\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:11: error: inference_args.mode must be `constant` or `gaussian`, found \"gausian\"",
        help: Some("did you mean `gaussian`?"),
        files: &[],
    });
}

#[test]
fn unknown_sliding_window_argument() {
    let e = exp("model:\n  inference_args:\n    overlapp: 0.5\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:15: error: unknown sliding-window argument `overlapp`",
        help: Some("did you mean `overlap`?"),
        files: &[],
    });
}

#[test]
fn overlap_out_of_range() {
    let e = exp("model:\n  inference_args:\n    overlap: 1.5\n");
    run(Case { experiment: &e, overrides: &[], error: "experiment/broken.yaml:7:14: error: overlap must be in [0, 1)", help: None, files: &[] });
}

#[test]
fn unknown_trainer_key() {
    let e = exp("trainer:\n  max_epoch: 3\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:6:14: error: `lightning.Trainer` has no parameter `max_epoch`",
        help: Some("did you mean one of `max_epochs`, `min_epochs`?"),
        files: &[],
    });
}

#[test]
fn fractional_batch_limit() {
    let e = exp("trainer:\n  limit_train_batches: 0.5\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:6:24: error: trainer.limit_train_batches = 0.5: fractions of an epoch are not supported; give a number of batches",
        help: None,
        files: &[],
    });
}

#[test]
fn unknown_precision() {
    let e = exp("trainer:\n  precision: 17\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:6:14: error: unknown precision `17`",
        help: Some("did you mean one of `16`, `32`?"),
        files: &[],
    });
}

/// Lightning accepts `precision: 64`; nothing here computes in float64, so it is a build error
/// rather than a failure when training starts.
#[test]
fn float64_precision() {
    let e = exp("trainer:\n  precision: 64\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:6:14: error: precision `64` (float64) is not supported: the GPU and CPU kernels are 32- and 16-bit",
        help: Some("use 32, 16-mixed or bf16-mixed"),
        files: &[],
    });
}

#[test]
fn component_of_the_wrong_kind() {
    let e = exp("model:\n  optimizer:\n    generator:\n      _target_: torch.optim.lr_scheduler.ExponentialLR\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:8:17: error: `torch.optim.lr_scheduler.ExponentialLR` is a learning-rate scheduler, but an optimizer is expected here",
        help: None,
        files: &[],
    });
}

#[test]
fn dynunet_levels_disagree() {
    let e = exp("model:\n  backbone:\n    strides: [1, 2, 2, 2]\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:14: error: strides has 4 levels but kernel_size has 3",
        help: Some("give one kernel size and one stride per level"),
        files: &[],
    });
}

#[test]
fn probability_out_of_range() {
    let e = exp("data:\n  transforms:\n    predict:\n      _target_: monai.transforms.Compose\n      transforms:\n        - _target_: monai.transforms.RandFlipd\n          keys: raw\n          prob: 1.5\n");
    run(Case { experiment: &e, overrides: &[], error: "experiment/broken.yaml:12:17: error: prob must be in [0, 1], found 1.5", help: None, files: &[] });
}

#[test]
fn seed_document_postprocessing_needs_its_channels() {
    let e = exp("model:\n  postprocessing:\n    prediction:\n      seg:\n        _target_: cyto_dl.models.im2im.utils.instance_seg.InstanceSegCluster\n        _partial_: True\n");
    run(Case {
        experiment: &e,
        overrides: &["~model._aux._tasks.0.1.postprocess"],
        error: "experiment/broken.yaml:9:9: error: InstanceSegCluster reads 5 channels (skeleton, semantic, 3 embedding), head `seg` predicts 1",
        help: Some("it clusters an instance-segmentation prediction (InstanceSegLoss, spatial_dims + 3 channels)"),
        files: &[],
    });
}

/// cyto_dl's `AutoThreshold` (the seed document's example) is implemented: the config checks.
#[test]
fn seed_document_postprocessing_auto_threshold_checks() {
    let e = exp("model:\n  postprocessing:\n    prediction:\n      seg:\n        _target_: cyto_dl.models.im2im.utils.postprocessing.AutoThreshold\n        _partial_: True\n        method: threshold_otsu\n");
    let mut files = project_configs();
    files.push(("experiment/auto.yaml".into(), e));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let tree = Tree::new(&refs);
    let out = cytodl_build(&tree.root, &["check", "experiment/auto.yaml"], &[]);
    assert!(out.ok, "{}", out.stderr);
}

#[test]
fn null_where_a_value_is_needed() {
    let e = exp("data:\n  batch_size: null\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:6:15: error: `batch_size` of `cyto_dl.datamodules.dataframe.DataframeDatamodule` cannot be null; it must be an integer",
        help: Some("remove it to use the default 1"),
        files: &[],
    });
}

#[test]
fn negative_seed() {
    let e = exp("seed: -1\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:5:7: error: `seed` must be a non-negative integer or null, found -1",
        help: None,
        files: &[],
    });
}

#[test]
fn enum_value_typo() {
    let e = exp("callbacks:\n  model_checkpoint:\n    mode: minn\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:11: error: `mode` of `lightning.pytorch.callbacks.ModelCheckpoint` must be one of `min`, `max`, found \"minn\"",
        help: Some("did you mean `min`?"),
        files: &[],
    });
}

#[test]
fn dropout_out_of_range() {
    let e = exp("model:\n  backbone:\n    dropout: 1.5\n");
    run(Case { experiment: &e, overrides: &[], error: "experiment/broken.yaml:7:14: error: dropout must be in [0, 1), found 1.5", help: None, files: &[] });
}

#[test]
fn every_independent_error_in_one_run() {
    let e = exp("model:\n  backbone:\n    filterz: [8]\n    res_block: 3\ntrainer:\n  max_epoch: 3\ncallbacks:\n  early_stopping:\n    patience: 0\n");
    let t = Tree::new(&project_configs().iter().map(|(p, t)| (p.as_str(), t.as_str())).chain([("experiment/broken.yaml", e.as_str())]).collect::<Vec<_>>());
    let out = cytodl_build(&t.root, &["check", "experiment/broken.yaml"], &[]);
    assert!(!out.ok);
    for want in [
        "broken.yaml:7:14: error: `monai.networks.nets.DynUNet` has no parameter `filterz`",
        "broken.yaml:8:16: error: `res_block`",
        "broken.yaml:10:14: error: `lightning.Trainer` has no parameter `max_epoch`",
        "broken.yaml:13:15: error: patience must be at least 1",
    ] {
        assert!(out.stderr.contains(want), "`{want}` missing in:\n{}", out.stderr);
    }
    assert_eq!(out.stderr.matches(": error: ").count(), 4, "exactly the four mistakes:\n{}", out.stderr);
}

#[test]
fn experiment_without_a_data_section_points_at_the_experiment() {
    run(Case {
        experiment: "# @package _global_\nseed: 1\n",
        overrides: &[],
        error: "experiment/broken.yaml:1:1: error: the config has no `data` section",
        help: Some("select one: `override /data: <name>` in the experiment's defaults"),
        files: &[],
    });
}

#[test]
fn missing_optimizer_is_reported_once_at_the_model() {
    let t = Tree::new(&project_configs().iter().map(|(p, t)| (p.as_str(), t.as_str())).chain([("experiment/broken.yaml", HEAD)]).collect::<Vec<_>>());
    let out = cytodl_build(&t.root, &["check", "experiment/broken.yaml", "~model.optimizer"], &[]);
    assert!(out.stderr.contains("model/segmentation.yaml:2:1: error: `cyto_dl.models.im2im.MultiTaskIm2Im` needs `optimizer`"), "{}", out.stderr);
    assert_eq!(out.stderr.matches(": error: ").count(), 1, "{}", out.stderr);
}

/// Sections of the wrong shape anywhere in the experiment: each fails `check` with a located
/// error (never a panic, never silently accepted, never `<built-in>`).
#[test]
fn malformed_sections_fail_with_a_location() {
    let cases = [
        "model: 5\n",
        "data:\n  transforms:\n    train: 5\n",
        "data:\n  columns: 5\n",
        "model:\n  task_heads: [1]\n",
        "model:\n  task_heads:\n    seg: 5\n",
        "callbacks: 3\n",
        "callbacks:\n  x: 5\n",
        "trainer: null\n",
        "logger: 7\n",
        "model:\n  optimizer:\n    generator: 5\n",
        "model:\n  inference_args:\n    roi_size: abc\n",
        "model:\n  backbone: null\n",
        "model:\n  backbone:\n    strides: [a, b, c]\n",
        "data:\n  transforms:\n    train:\n      _target_: monai.transforms.Compose\n      transforms:\n        - _target_: monai.transforms.LoadImaged\n          keys: raw\n          reader: 5\n",
        "experiment_name: [1]\n",
        "model:\n  postprocessing:\n    prediction: 5\n",
        "data:\n  batch_size: -3\n",
        "data:\n  subsample:\n    train: -2\n",
        "trainer:\n  max_epochs: -1\n",
    ];
    let base: Vec<(String, String)> = project_configs();
    for extra in cases {
        let e = exp(extra);
        let t = Tree::new(&base.iter().map(|(p, t)| (p.as_str(), t.as_str())).chain([("experiment/broken.yaml", e.as_str())]).collect::<Vec<_>>());
        let out = cytodl_build(&t.root, &["check", "experiment/broken.yaml"], &[]);
        assert!(!out.ok, "accepted:\n{extra}");
        assert!(!out.stderr.contains("panicked") && !out.stderr.contains("<built-in>"), "{extra}\n{}", out.stderr);
        // The first error, or a note of it, points at the broken lines of the experiment (an
        // error found where a value is used names the definition in a note).
        let lines: Vec<&str> = out.stderr.lines().collect();
        let start = lines.iter().position(|l| l.contains(": error: ")).unwrap_or_else(|| panic!("no error for {extra}:\n{}", out.stderr));
        let end = lines[start + 1..].iter().position(|l| l.contains(": error: ")).map_or(lines.len(), |i| start + 1 + i);
        let (first_line, last_line) = (HEAD.lines().count() + 1, HEAD.lines().count() + extra.lines().count());
        let at_the_mistake = lines[start..end].iter().any(|l| {
            let loc = l.trim_start().trim_start_matches("= note: ").split(": ").next().unwrap_or_default();
            let parts: Vec<&str> = loc.rsplitn(3, ':').collect();
            parts.len() == 3
                && parts[2].ends_with("experiment/broken.yaml")
                && parts[0].parse::<u32>().is_ok()
                && parts[1].parse::<usize>().is_ok_and(|n| (first_line..=last_line).contains(&n))
        });
        assert!(
            at_the_mistake,
            "the error does not point at lines {first_line}-{last_line} of experiment/broken.yaml:\n{extra}\n{}",
            lines[start..end].join("\n")
        );
    }
}

#[test]
fn misspelt_experiment_file_suggests_the_existing_one() {
    let t = Tree::new(&project_configs().iter().map(|(p, t)| (p.as_str(), t.as_str())).collect::<Vec<_>>());
    let out = cytodl_build(&t.root, &["check", "experiment/segmentaion.yaml"], &[]);
    assert!(!out.ok);
    assert!(out.stderr.contains("experiment/segmentaion.yaml:1:1: error: experiment file experiment/segmentaion.yaml does not exist"), "{}", out.stderr);
    assert!(out.stderr.contains("= help: did you mean `segmentation.yaml`?"), "{}", out.stderr);
}

#[test]
fn experiment_outside_a_config_tree() {
    let t = Tree::new(&[("experiment/x.yaml", "a: 1\n")]);
    let out = cytodl_build(&t.root, &["check", "experiment/x.yaml"], &[]);
    assert!(!out.ok);
    assert!(out.stderr.contains("experiment/x.yaml:1:1: error: no ancestor folder of"), "{}", out.stderr);
    assert!(out.stderr.contains("= help: pass the config tree explicitly with `--config-dir DIR`"), "{}", out.stderr);
}

#[test]
fn unimplemented_normalisation_is_refused() {
    let e = exp("model:\n  backbone:\n    norm_name: batch\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:16: error: only affine instance normalisation (MONAI's default `[\"INSTANCE\", {\"affine\": true}]`) is implemented",
        help: Some("remove norm_name to use the default"),
        files: &[],
    });
}

#[test]
fn unsupported_lightning_option_is_refused_not_ignored() {
    let e = exp("callbacks:\n  early_stopping:\n    stopping_threshold: 0.1\n");
    run(Case {
        experiment: &e,
        overrides: &[],
        error: "experiment/broken.yaml:7:25: error: `stopping_threshold` of `lightning.pytorch.callbacks.EarlyStopping` is not supported by cytodl",
        help: Some("remove it (cytodl has no equivalent yet)"),
        files: &[],
    });
}
