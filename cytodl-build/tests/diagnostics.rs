//! Malformed configs through the `cytodl-build` binary: each error names the problem, points at
//! `file:line:col` with the source line, and says how to fix it. Nothing panics.

mod common;

use common::Tree;

const TRAIN: &str = "defaults:\n  - _self_\n  - trainer: default\n  - model: null\n  - experiment: null\n\nseed: 12345\ntags: [dev]\n";

fn base(extra: &[(&'static str, &'static str)]) -> Tree {
    let mut files = vec![
        ("train.yaml", TRAIN),
        ("trainer/default.yaml", "max_epochs: 10\naccelerator: cpu\n"),
        ("trainer/gpu.yaml", "defaults:\n  - default\naccelerator: gpu\n"),
        ("model/unet.yaml", "lr: 0.001\nfilters: [16, 32]\n"),
    ];
    files.extend_from_slice(extra);
    Tree::new(&files)
}

/// Asserts a failed run whose stderr has `location: error: message...`, and `help` when given.
fn expect_error(run: &common::Run, location: &str, message: &str, help: Option<&str>) {
    assert!(!run.ok, "expected a failure, got:\n{}", run.stdout);
    let head = format!("{location}: error: {message}");
    assert!(run.stderr.contains(&head), "missing `{head}` in:\n{}", run.stderr);
    if let Some(h) = help {
        assert!(run.stderr.contains(&format!("= help: {h}")), "missing help `{h}` in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn bad_yaml_syntax() {
    let t = base(&[("model/broken.yaml", "lr: 0.1\nfilters: [16, 32\nname: x\n")]);
    let run = t.resolve(&["model=broken"]);
    expect_error(&run, "model/broken.yaml:3:5", "invalid YAML", None);
    assert!(run.stderr.contains("3 | name: x"), "{}", run.stderr);
}

#[test]
fn duplicate_key() {
    let t = base(&[("model/dup.yaml", "lr: 0.1\nfilters: [1]\nlr: 0.2\n")]);
    let run = t.resolve(&["model=dup"]);
    expect_error(&run, "model/dup.yaml:3:1", "found duplicate key `lr`", Some("remove one of the two entries"));
    assert!(run.stderr.contains("model/dup.yaml:1:1: first defined here"), "{}", run.stderr);
}

#[test]
fn unknown_override_key_suggests_nearest() {
    let run = base(&[]).resolve(&["seeed=1"]);
    expect_error(&run, "<override 1>:1:1", "Could not override 'seeed'.\nTo append to your config use +seeed=1", Some("did you mean `seed`?"));
}

#[test]
fn unknown_nested_override_key() {
    let run = base(&[]).resolve(&["trainer.max_epoch=3"]);
    expect_error(&run, "<override 1>:1:1", "Could not override 'trainer.max_epoch'.", Some("did you mean `trainer.max_epochs`?"));
}

#[test]
fn missing_group_option_lists_options_and_suggests() {
    let run = base(&[]).resolve(&["trainer=gpx"]);
    expect_error(&run, "<override 1>:1:1", "In 'train': Could not find 'trainer/gpx'", Some("did you mean `gpu`?"));
    assert!(run.stderr.contains("Available options in 'trainer':\n\tdefault\n\tgpu"), "{}", run.stderr);
}

#[test]
fn missing_option_in_a_file() {
    let t = base(&[("experiment/e.yaml", "# @package _global_\ndefaults:\n  - override /model: unett\n")]);
    let run = t.resolve(&["experiment=e"]);
    // Like Hydra, the message names the config whose entry was overridden; the span names the override.
    expect_error(&run, "experiment/e.yaml:3:5", "In 'train': Could not find 'model/unett'", Some("did you mean `unet`?"));
}

#[test]
fn unknown_group_on_command_line() {
    let run = base(&[]).resolve(&["modle=unet"]);
    expect_error(
        &run,
        "<override 1>:1:1",
        "Could not override 'modle'.\nTo append to your config use +modle=unet",
        Some("did you mean `model`? (a config group: `group=option`)"),
    );
}

#[test]
fn duplicate_self() {
    let t = Tree::new(&[("train.yaml", "defaults:\n  - _self_\n  - _self_\na: 1\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:3:5", "Duplicate _self_ defined in train", Some("keep a single `_self_` entry"));
}

#[test]
fn override_before_plain_entry() {
    let t = base(&[("experiment/e.yaml", "# @package _global_\ndefaults:\n  - override /trainer: gpu\n  - /model: unet\n")]);
    let run = t.resolve(&["experiment=e"]);
    expect_error(
        &run,
        "experiment/e.yaml:3:5",
        "In experiment/e: Override 'trainer : gpu' is defined before 'model: unet'.",
        Some("move every `override ...` entry after the plain entries"),
    );
}

#[test]
fn override_without_global_package() {
    let t = base(&[("experiment/e.yaml", "defaults:\n  - override /trainer: gpu\n")]);
    let run = t.resolve(&["experiment=e"]);
    expect_error(
        &run,
        "experiment/e.yaml:2:5",
        "In 'experiment/e': Could not override 'trainer@experiment.trainer'.\nDid you mean to override trainer?",
        Some("an `override` only matches an entry of the same package; a config that overrides top-level groups needs `# @package _global_`"),
    );
}

#[test]
fn multiple_values_for_group() {
    let run = base(&[]).resolve(&["+trainer=gpu"]);
    assert!(run.stderr.contains("<override 1>:1:1: `trainer` was chosen as `gpu` here"), "{}", run.stderr);
    expect_error(
        &run,
        "train.yaml:3:5",
        "Multiple values for trainer. To override a value use 'override trainer: gpu'",
        Some("`trainer` is already chosen elsewhere"),
    );
}

#[test]
fn interpolation_cycle_names_the_chain() {
    let t = Tree::new(&[("train.yaml", "a: ${b}\nb: ${c}\nc: ${a}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:1:4", "Recursive interpolation detected", Some("the interpolations form a cycle: a -> b -> c -> a"));
    assert!(run.stderr.contains("train.yaml:2:4: `b` is part of the cycle"), "{}", run.stderr);
}

#[test]
fn interpolation_to_missing_key() {
    let t = Tree::new(&[("train.yaml", "model:\n  lr: 0.1\noptim:\n  lr: ${model.lrr}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:4:7", "Interpolation key 'model.lrr' not found", Some("`model.lrr` does not exist; did you mean `model.lr`?"));
    assert!(run.stderr.contains("= key: optim.lr"), "{}", run.stderr);
}

#[test]
fn unknown_resolver_suggests() {
    let t = Tree::new(&[("train.yaml", "root: ${oc.evn:HOME}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:1:7", "Unsupported interpolation type oc.evn", Some("did you mean `oc.env`?"));
}

#[test]
fn legacy_env_resolver() {
    let t = Tree::new(&[("train.yaml", "root: ${env:HOME}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:1:7", "Unsupported interpolation type env", Some("`${env:...}` was removed in OmegaConf 2.2; use `${oc.env:...}`"));
}

#[test]
fn bad_eval_expression() {
    let t = Tree::new(&[("train.yaml", "dims: 3\nz: ${eval:'None if ${dims}== else 38'}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:2:4", "eval: invalid syntax", None);
}

#[test]
fn eval_refuses_code() {
    let t = Tree::new(&[("train.yaml", "z: ${eval:'__import__(\"os\").getcwd()'}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:1:4", "eval: attribute access is not supported", None);
}

#[test]
fn mandatory_value_left_fails_check() {
    let t = Tree::new(&[("train.yaml", "checkpoint:\n  ckpt_path: ???\n")]);
    let run = common::cytodl_build(&t.root, &["check", "--config-dir", "."], &[]);
    expect_error(&run, "train.yaml:2:14", "Missing mandatory value: checkpoint.ckpt_path", Some("set it on the command line: `checkpoint.ckpt_path=<value>`"));
    // `resolve` prints it like OmegaConf (`???`) and only warns.
    let run = t.resolve(&[]);
    assert!(run.ok && run.stdout.contains("ckpt_path: ???"), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("warning: Missing mandatory value: checkpoint.ckpt_path"), "{}", run.stderr);
}

#[test]
fn mandatory_group_choice() {
    let t = base(&[("eval.yaml", "defaults:\n  - model: ???\n")]);
    let run = t.resolve(&["--config-name", "eval"]);
    expect_error(
        &run,
        "eval.yaml:2:5",
        "You must specify 'model', e.g, model=<OPTION>\nAvailable options:\n\tunet",
        Some("choose an option on the command line, e.g. `model=unet`"),
    );
}

#[test]
fn bad_package_header() {
    let t = base(&[("model/h.yaml", "# @package foo bar\nlr: 1\n")]);
    let run = t.resolve(&["model=h"]);
    expect_error(&run, "model/h.yaml:1:1", "Too many components in '@package foo bar'", Some("a package header has exactly one value"));
}

#[test]
fn sweep_is_ambiguous() {
    let run = base(&[]).resolve(&["seed=1,2"]);
    expect_error(
        &run,
        "<override 1>:1:1",
        "Ambiguous value for argument 'seed=1,2'\n1. To use it as a list, use key=[value1,value2]",
        Some("sweeps are not supported; write `seed=[1,2]` for a list"),
    );
}

#[test]
fn append_to_existing_key() {
    let run = base(&[]).resolve(&["+seed=3"]);
    expect_error(
        &run,
        "<override 1>:1:1",
        "Could not append to config. An item is already at 'seed'.",
        Some("`seed` already exists; write `seed=3` to change it"),
    );
}

#[test]
fn delete_missing_key_and_wrong_value() {
    let run = base(&[]).resolve(&["~sed"]);
    expect_error(&run, "<override 1>:1:1", "Could not delete from config. 'sed' does not exist.", Some("did you mean `seed`?"));
    let run = base(&[]).resolve(&["~seed=1"]);
    expect_error(&run, "<override 1>:1:1", "Could not delete from config. The value of 'seed' is 12345 and not 1.", None);
}

#[test]
fn unparsable_override() {
    let run = base(&[]).resolve(&["seed"]);
    expect_error(&run, "<override 1>:1:5", "Error parsing override 'seed'", Some("overrides look like `key=value`"));
}

#[test]
fn independent_errors_reported_together() {
    let t = Tree::new(&[("train.yaml", "a: ${nope}\nb: ${oc.env:CYTODL_TEST_UNSET_VARIABLE}\nc: ${d}\n")]);
    let run = t.resolve(&["e=1"]);
    // The override error stops composition; fix it and both interpolation errors show at once.
    assert!(run.stderr.contains("Could not override 'e'"), "{}", run.stderr);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:1:4", "Interpolation key 'nope' not found", None);
    expect_error(
        &run,
        "train.yaml:2:4",
        "Environment variable 'CYTODL_TEST_UNSET_VARIABLE' not found",
        Some("export CYTODL_TEST_UNSET_VARIABLE=..., or give a default"),
    );
    expect_error(&run, "train.yaml:3:4", "Interpolation key 'd' not found", None);
    assert!(run.stderr.contains("aborting due to 3 errors"), "{}", run.stderr);
}

#[test]
fn defaults_list_must_be_a_list() {
    let t = Tree::new(&[("train.yaml", "defaults:\n  trainer: default\n")]);
    let run = t.resolve(&[]);
    expect_error(
        &run,
        "train.yaml:2:3",
        "Invalid defaults list in 'train', defaults must be a list (got mapping)",
        Some("write the defaults list as a YAML list"),
    );
}

#[test]
fn too_many_keys_in_default_item() {
    let t = base(&[("train2.yaml", "defaults:\n  - trainer: default\n    model: unet\n")]);
    let run = t.resolve(&["--config-name", "train2"]);
    expect_error(&run, "train2.yaml:2:5", "In train2: Too many keys in default item {trainer, model}", Some("each defaults entry is one `group: option` pair"));
}

#[test]
fn interpolation_to_parent() {
    let t = Tree::new(&[("train.yaml", "a:\n  b: ${a}\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "train.yaml:2:6", "Interpolation to parent node detected", Some("`a` contains this value"));
}

#[test]
fn grammar_error_points_into_value() {
    let t = Tree::new(&[("train.yaml", "x: 1\ny: ${x\n")]);
    let run = t.resolve(&[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("train.yaml:2:") && run.stderr.contains("error: GrammarParseError"), "{}", run.stderr);
    assert!(run.stderr.contains("= help: interpolations look like"), "{}", run.stderr);
}

#[test]
fn missing_primary_config() {
    let t = Tree::new(&[("other.yaml", "a: 1\n")]);
    let run = t.resolve(&[]);
    expect_error(&run, "<built-in>", "Cannot find primary config 'train'", None);
}
