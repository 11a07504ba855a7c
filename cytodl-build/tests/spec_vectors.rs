//! The test vectors of `shared/spec/hydra-omegaconf.md` §8 that need a config tree or the
//! resolvers (15-18, 25-36), through the library's front end. (1-14 and 19-24 are unit tests
//! next to the grammar, resolver, loader, merge and override parser.)

mod common;

use common::Tree;
use cytodl_build::config::emit::to_yaml;
use cytodl_build::config::node::{Node, Value};
use cytodl_build::config::yaml::load_config;
use cytodl_build::diag::FileId;
use cytodl_build::frontend::{resolve, Request};
use cytodl_build::interp::ResolveOptions;

/// A config compared as data *and* in order (a `Node`'s equality ignores key order, which
/// Hydra's defaults and merges decide).
#[derive(Clone)]
struct Config(Node);

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 && to_yaml(&self.0) == to_yaml(&other.0)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", to_yaml(&self.0))
    }
}

impl std::ops::Deref for Config {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.0
    }
}

fn y(s: &str) -> Config {
    Config(load_config(s, FileId(0)).expect("test YAML"))
}

fn run(t: &Tree, name: &str, overrides: &[&str]) -> Result<Config, String> {
    let req = Request {
        config_dir: t.root.clone(),
        config_name: name.to_string(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        implicit_overrides: 0,
    };
    let mut opts = ResolveOptions::default();
    opts.env.insert("CYTODL_TEST_TEN".into(), "10".into());
    resolve(&req, &opts).map(|r| Config(r.config)).map_err(|f| f.diagnostics.items.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("\n"))
}

fn one(files: &[(&str, &str)], overrides: &[&str]) -> Result<Config, String> {
    run(&Tree::new(files), "config", overrides)
}

#[test]
fn v15_oc_env() {
    let n = one(&[("config.yaml", "a: /test/${oc.env:CYTODL_NOT_FOUND_X,ZZZ}\nb: ${oc.env:CYTODL_TEST_TEN}\nc: ${oc.env:CYTODL_NOT_FOUND_X, null}\n")], &[])
        .unwrap();
    assert_eq!(n, y("a: /test/ZZZ\nb: '10'\nc: null\n"));
    let e = one(&[("config.yaml", "a: ${oc.env:not_found}\n")], &[]).unwrap_err();
    assert_eq!(e, "Environment variable 'not_found' not found");
}

#[test]
fn v16_oc_select() {
    let n = one(
        &[("config.yaml", "a: ${oc.select:missing}\nb: ${oc.select:missing, default value}\nmissing: ???\nnested:\n  a1: ${oc.select:..k}\n  k: 20\nk: 10\n")],
        &[],
    )
    .unwrap();
    assert_eq!(n, y("a: null\nb: default value\nmissing: ???\nnested: {a1: 10, k: 20}\nk: 10\n"));
}

#[test]
fn v17_oc_decode() {
    let n = one(
        &[("config.yaml", "parent:\n  a: ${oc.decode:'10'}\n  b: ${oc.decode:'  123  '}\n  c: ${oc.decode:'\"123\"'}\n  d: ${oc.decode:'${.sibling}'}\n  e: ${oc.decode:'${..uncle}'}\n  sibling: 1\nuncle: 2\n")],
        &[],
    )
    .unwrap();
    let p = n.as_map().unwrap()["parent"].as_map().unwrap().clone();
    assert_eq!(p["a"].value, Value::Int(10));
    // Leading whitespace is a token of its own, so the element is a multi-token string.
    assert_eq!(p["b"].value, Value::Str("  123  ".into()));
    assert_eq!(p["c"].value, Value::Str("123".into()));
    assert_eq!(p["d"].value, Value::Int(1));
    assert_eq!(p["e"].value, Value::Int(2));
}

#[test]
fn v18_oc_create_and_dict_resolvers() {
    let n = one(&[("config.yaml", "x: '${oc.create:{a: 0, b: ${y}}}'\ny: 5\nk: ${oc.dict.keys:d}\nv: ${oc.dict.values:d}\nd: {p: 1, q: two}\n")], &[]).unwrap();
    assert_eq!(n, y("x: {a: 0, b: 5}\ny: 5\nk: [p, q]\nv: [1, two]\nd: {p: 1, q: two}\n"));
}

#[test]
fn v25_to_27_config_overrides() {
    let e = one(&[("config.yaml", "{}\n")], &["x=10"]).unwrap_err();
    assert_eq!(e, "Could not override 'x'.\nTo append to your config use +x=10");
    assert_eq!(one(&[("config.yaml", "{}\n")], &["+x={a:1,b:2}"]).unwrap(), y("x: {a: 1, b: 2}"));
    let e = one(&[("config.yaml", "x: 20\n")], &["+x=10"]).unwrap_err();
    assert!(e.starts_with("Could not append to config. An item is already at 'x'"), "{e}");
    assert_eq!(one(&[("config.yaml", "x: {a: 10, b: null}\n")], &["x={b:20}"]).unwrap(), y("x: {a: 10, b: 20}"));
    assert_eq!(one(&[("config.yaml", "x: {y: 10}\n")], &["~x.y"]).unwrap(), y("x: {}"));
    let e = one(&[("config.yaml", "x: 20\n")], &["~x=10"]).unwrap_err();
    assert_eq!(e, "Could not delete from config. The value of 'x' is 20 and not 10.");
    let e = one(&[("config.yaml", "x: 20\n")], &["~z"]).unwrap_err();
    assert_eq!(e, "Could not delete from config. 'z' does not exist.");
    let e = one(&[("config.yaml", "x: 20\n")], &["foo@bar=10"]).unwrap_err();
    assert_eq!(e, "Override foo@bar=10 looks like a config group override, but config group 'foo' does not exist.");
    assert_eq!(one(&[("config.yaml", "key: 0\n")], &["++key=1"]).unwrap(), y("key: 1"));
    assert_eq!(one(&[("config.yaml", "key: 0\n")], &["++key2=1"]).unwrap(), y("key: 0\nkey2: 1"));
}

const GROUP1: &[(&str, &str)] = &[
    ("group1/file1.yaml", "g1: file1\n"),
    ("group1/file2.yaml", "g1: file2\n"),
    ("group1/file3.yaml", "g1: file3\n"),
    ("group1/group_item1.yaml", "defaults:\n  - group2: file1\nitem: 1\n"),
    ("group1/group2/file1.yaml", "g2: file1\n"),
    ("group2/file2.yaml", "g2: file2\n"),
];

fn tree(extra: &[(&'static str, &'static str)]) -> Tree {
    let mut files: Vec<(&str, &str)> = GROUP1.to_vec();
    files.extend_from_slice(extra);
    Tree::new(&files)
}

#[test]
fn v28_self_position_and_nested_defaults() {
    let t = tree(&[
        ("self_first.yaml", "defaults:\n  - _self_\n  - group1: file1\ng1: own\n"),
        ("self_last.yaml", "defaults:\n  - group1: file1\n  - _self_\ngroup1:\n  g1: own\n"),
    ]);
    // `_self_` first: the group's content merges over the file's own.
    assert_eq!(run(&t, "self_first", &[]).unwrap(), y("g1: own\ngroup1: {g1: file1}"));
    assert_eq!(run(&t, "self_last", &[]).unwrap(), y("group1: {g1: own}"));
    let t = tree(&[("nested.yaml", "defaults:\n  - group1: group_item1\n")]);
    assert_eq!(run(&t, "nested", &[]).unwrap(), y("group1: {group2: {g2: file1}, item: 1}"));
}

#[test]
fn v29_v30_experiment_use_case() {
    let t = tree(&[
        ("group_default.yaml", "defaults:\n  - group1: file1\n"),
        ("experiment/include_absolute_config.yaml", "# @package _global_\ndefaults:\n  - /group1/group2: file1\n  - _self_\nexp: 1\n"),
        ("experiment/override_config_group.yaml", "# @package _global_\ndefaults:\n  - override /group1: file2\n"),
    ]);
    assert_eq!(run(&t, "group_default", &["+experiment=include_absolute_config"]).unwrap(), y("group1: {g1: file1, group2: {g2: file1}}\nexp: 1"));
    assert_eq!(run(&t, "group_default", &["+experiment=override_config_group"]).unwrap(), y("group1: {g1: file2}"));
    assert_eq!(run(&t, "group_default", &["+experiment=override_config_group", "group1=file3"]).unwrap(), y("group1: {g1: file3}"));
}

#[test]
fn v31_nested_override_errors() {
    let t = tree(&[
        ("experiment/error_override_without_global.yaml", "defaults:\n  - override /group1: file1\n"),
        ("experiment/error_override_without_abs.yaml", "defaults:\n  - override group1: file1\n"),
    ]);
    let e = run(&t, "experiment/error_override_without_global", &[]).unwrap_err();
    assert!(e.starts_with("In 'experiment/error_override_without_global': Could not override 'group1@experiment.group1'. No match"), "{e}");
    let e = run(&t, "experiment/error_override_without_abs", &[]).unwrap_err();
    assert!(e.contains("Could not override 'experiment/group1'"), "{e}");
}

#[test]
fn v32_override_rules() {
    let t = tree(&[
        ("ov.yaml", "defaults:\n  - group1: file1\n  - override group1: file2\n"),
        ("ov_first.yaml", "defaults:\n  - override group1: file2\n  - group1: file1\n"),
        ("two_plain.yaml", "defaults:\n  - group1: file1\n  - group1: file2\n"),
        ("duplicate_self.yaml", "defaults:\n  - _self_\n  - _self_\n"),
    ]);
    assert_eq!(run(&t, "ov", &[]).unwrap(), y("group1: {g1: file2}"));
    assert_eq!(run(&t, "ov", &["group1=file3"]).unwrap(), y("group1: {g1: file3}"));
    let e = run(&t, "ov_first", &[]).unwrap_err();
    assert!(e.contains("Overrides must be at the end of the defaults list"), "{e}");
    let e = run(&t, "two_plain", &[]).unwrap_err();
    assert_eq!(e, "Multiple values for group1. To override a value use 'override group1: file2'");
    assert_eq!(run(&t, "duplicate_self", &[]).unwrap_err(), "Duplicate _self_ defined in duplicate_self");
}

#[test]
fn v33_placeholder() {
    let t = tree(&[("placeholder.yaml", "defaults:\n  - group1: null\n")]);
    assert_eq!(run(&t, "placeholder", &[]).unwrap(), y("{}"));
    assert_eq!(run(&t, "placeholder", &["group1=file1"]).unwrap(), y("group1: {g1: file1}"));
}

#[test]
fn v34_interpolated_defaults() {
    let t = tree(&[
        ("interp.yaml", "defaults:\n  - group1: file1\n  - group2: file2\n  - group1_group2: ${group1}_${group2}\n"),
        ("group1_group2/file1_file2.yaml", "combo: one_two\n"),
        ("group1_group2/file2_file2.yaml", "combo: two_two\n"),
        ("group2/file1.yaml", "g2: file1\n"),
    ]);
    assert_eq!(run(&t, "interp", &[]).unwrap().as_map().unwrap()["group1_group2"].clone(), y("combo: one_two").0);
    assert_eq!(run(&t, "interp", &["group1=file2"]).unwrap().as_map().unwrap()["group1_group2"].clone(), y("combo: two_two").0);
}

#[test]
fn v35_optional_and_mandatory() {
    let t = tree(&[
        ("empty.yaml", "{}\n"),
        ("opt.yaml", "defaults:\n  - empty\n  - optional foo: missing\n"),
        ("with_missing.yaml", "defaults:\n  - db: ???\n"),
        ("db/mysql.yaml", "d: 1\n"),
    ]);
    assert_eq!(run(&t, "opt", &[]).unwrap(), y("{}"));
    let e = run(&t, "with_missing", &[]).unwrap_err();
    assert!(e.starts_with("You must specify 'db', e.g, db=<OPTION>\nAvailable options:"), "{e}");
}

#[test]
fn v36_override_errors() {
    let t = tree(&[("empty.yaml", "{}\n"), ("dup.yaml", "defaults:\n  - group1: file1\n  - group1@_here_: file1\n")]);
    let e = run(&t, "empty", &["group1=file1"]).unwrap_err();
    assert!(e.starts_with("Could not override 'group1'. No match in the defaults list."), "{e}");
    let e = run(&t, "empty", &["+group1=not_found"]).unwrap_err();
    assert!(e.starts_with("In 'empty': Could not find 'group1/not_found'\n\nAvailable options in 'group1':"), "{e}");
    let e = run(&t, "empty", &["~group1"]).unwrap_err();
    assert!(e.starts_with("Could not delete 'group1'. No match"), "{e}");
    // Hydra 1.3.2's messages for these two trees (its oracle: ../shared/tools/hydra_oracle.py).
    let t2 = tree(&[
        ("twice.yaml", "defaults:\n  - group1: file1\n  - group1@pkg: file1\n  - /group1@pkg: file2\n"),
        ("dup.yaml", "defaults:\n  - group1: file1\n  - group1: file1\n"),
    ]);
    let e = run(&t2, "twice", &[]).unwrap_err();
    assert_eq!(e, "Multiple values for group1@pkg. To override a value use 'override group1@pkg: file2'");
    let e = run(&t2, "dup", &[]).unwrap_err();
    assert_eq!(e, "group1 appears more than once in the final defaults list");
    let _ = t;
}

#[test]
fn option_lists_and_packages() {
    let t = tree(&[
        ("list.yaml", "defaults:\n  - group1: [file1, file2]\n"),
        ("pkg.yaml", "defaults:\n  - group1@moved: file1\n  - group1@_global_: file2\n"),
        ("header.yaml", "defaults:\n  - hdr: a\n"),
        ("hdr/a.yaml", "# @package deep.pkg\nv: 1\n"),
        ("comment_first.yaml", "defaults:\n  - hdr: b\n"),
        ("hdr/b.yaml", "# a comment\n# @package _global_\nv: 2\n"),
    ]);
    assert_eq!(run(&t, "list", &[]).unwrap(), y("group1: {g1: file2}"));
    assert_eq!(run(&t, "pkg", &[]).unwrap(), y("moved: {g1: file1}\ng1: file2"));
    assert_eq!(run(&t, "header", &[]).unwrap(), y("deep: {pkg: {v: 1}}"));
    // An ordinary comment before `# @package` ends the header: the group's package applies.
    assert_eq!(run(&t, "comment_first", &[]).unwrap(), y("hdr: {v: 2}"));
}
