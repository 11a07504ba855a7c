//! `cytodl-build explain`: for a key, the source that set it last, every source it overrode (in
//! order), and the interpolations it went through — on a written tree where every expected
//! line is known, on the project's configs, and on cyto_dl's reference tree.

mod common;

use common::{cytodl_build, Tree};

/// The lines of one key's explanation, without the indentation.
fn lines(stdout: &str) -> Vec<String> {
    stdout.lines().map(|l| l.trim().to_string()).collect()
}

#[test]
fn a_value_set_overridden_and_interpolated_is_explained_in_order() {
    let tree = Tree::new(&[
        ("train.yaml", "defaults:\n  - model: small\n  - _self_\n  - experiment: null\nlr: 0.1\n"),
        ("model/small.yaml", "optimizer:\n  lr: ${lr}\n  betas: [0.9, 0.999]\nwidth: 8\n"),
        ("experiment/fast.yaml", "# @package _global_\nlr: 0.3\nmodel:\n  width: 16\n"),
    ]);
    let run =
        cytodl_build(&tree.root, &["explain", "--config-dir", ".", "experiment=fast", "lr=0.5", "model.width=32", "model.optimizer.lr", "model.width"], &[]);
    assert!(run.ok, "{}", run.stderr);
    let got = lines(&run.stdout);
    let expected = [
        "model.optimizer.lr = 0.5",
        "set by    model/small.yaml:2:7  | lr: ${lr}",
        "via       ${lr}",
        "lr = 0.5",
        "set by    <override 2>:1:1  | lr=0.5",
        "overrode  experiment/fast.yaml:2:5  | lr: 0.3",
        "overrode  train.yaml:5:5  | lr: 0.1",
        "model.width = 32",
        "set by    <override 3>:1:1  | model.width=32",
        "overrode  experiment/fast.yaml:4:10  | width: 16",
        "overrode  model/small.yaml:4:8  | width: 8",
    ];
    assert_eq!(got, expected, "{}", run.stdout);
}

#[test]
fn an_unknown_key_is_an_error_with_a_suggestion() {
    let tree = Tree::new(&[("train.yaml", "model:\n  width: 8\n")]);
    let run = cytodl_build(&tree.root, &["explain", "--config-dir", ".", "model.widht"], &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("error: no key `model.widht` in the composed config (did you mean `width`?)"), "{}", run.stderr);
    let run = cytodl_build(&tree.root, &["explain", "--config-dir", "."], &[]);
    assert!(!run.ok && run.stderr.contains("explain needs KEYs"), "{}", run.stderr);
}

#[test]
fn explain_all_writes_every_value_into_provenance_txt() {
    let tree = Tree::new(&[("train.yaml", "a: 1\nb:\n  c: ${a}\n  d: [1, 2]\n_aux:\n  x: 3\n")]);
    let out = tree.root.join("out");
    let run = cytodl_build(&tree.root, &["explain", "--config-dir", ".", "--all", "--out", "out", "a=2"], &[]);
    assert!(run.ok, "{}", run.stderr);
    let text = std::fs::read_to_string(out.join("provenance.txt")).expect("provenance.txt");
    let firsts: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    // Every leaf of the app config (no `_aux`), in config order.
    assert_eq!(firsts, ["a = 2", "b.c = 2", "b.d = [1, 2]"], "{text}");
    assert!(text.contains("  overrode  train.yaml:1:4  | a: 1"), "{text}");
}

/// The project's own experiment: its file overrides the trainer defaults, the command line both.
#[test]
fn the_projects_segmentation_max_epochs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = cytodl_build(&root, &["explain", "configs/experiment/segmentation.yaml", "trainer.max_epochs=3", "trainer.max_epochs"], &[]);
    assert!(run.ok, "{}", run.stderr);
    let got = lines(&run.stdout);
    assert_eq!(got[0], "trainer.max_epochs = 3");
    assert!(got[1].starts_with("set by    <override 1>:1:1"), "{}", run.stdout);
    assert!(got[2].starts_with("overrode  configs/experiment/segmentation.yaml:"), "{}", run.stdout);
    assert!(got[3].starts_with("overrode  configs/trainer/default.yaml:"), "{}", run.stdout);
    assert_eq!(got.len(), 4, "{}", run.stdout);
}

/// cyto_dl's own `experiment=im2im/segmentation`: every file and override that touched the
/// learning rate and the batch size, and the interpolation behind `spatial_dims`.
#[test]
fn cyto_dl_reference_segmentation_lr_and_batch_size() {
    let Some(shared) = cytodl_testkit::shared_dir("cyto_dl_reference_segmentation_lr_and_batch_size") else { return };
    let configs = shared.join("reference/cyto_dl-configs");
    let configs = configs.to_str().expect("utf-8 path");
    let args = [
        "explain",
        "--config-dir",
        configs,
        "experiment=im2im/segmentation",
        "data.batch_size=4",
        "model.optimizer.generator.lr",
        "data.batch_size",
        "model.backbone.spatial_dims",
    ];
    let run = cytodl_build(&shared, &args, &[]);
    assert!(run.ok, "{}", run.stderr);
    let got = lines(&run.stdout);
    // Paths print relative to the working directory (`shared`).
    let at = |file: &str| format!("reference/cyto_dl-configs/{file}:");
    assert_eq!(got[0], "model.optimizer.generator.lr = 0.0001", "{}", run.stdout);
    assert!(got[1].starts_with(&format!("set by    {}", at("model/im2im/segmentation.yaml"))) && got[1].ends_with("| lr: 0.0001"), "{}", run.stdout);
    assert_eq!(got[2], "data.batch_size = 4", "{}", run.stdout);
    assert!(got[3].starts_with("set by    <override 2>:1:1"), "{}", run.stdout);
    assert!(got[4].starts_with(&format!("overrode  {}", at("experiment/im2im/segmentation.yaml"))), "{}", run.stdout);
    assert!(got[5].starts_with(&format!("overrode  {}", at("data/im2im/segmentation.yaml"))), "{}", run.stdout);
    assert_eq!(got[6], "model.backbone.spatial_dims = 3", "{}", run.stdout);
    assert!(got[7].ends_with("| spatial_dims: ${spatial_dims}") && got[8] == "via       ${spatial_dims}" && got[9] == "spatial_dims = 3", "{}", run.stdout);
    assert!(got[10].starts_with(&format!("set by    {}", at("experiment/im2im/segmentation.yaml"))), "{}", run.stdout);
}
