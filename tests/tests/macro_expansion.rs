//! `cytodl_experiment!` expands to the same resolved config as `cytodl-build resolve`.

use cytodl_build::config::yaml::load_config;
use cytodl_build::diag::FileId;

#[test]
fn macro_expands_the_experiment() {
    let n = load_config(cytodl_tests::segmentation::RESOLVED_YAML, FileId(0)).expect("YAML");
    let get = |p: &str| n.get_path(p).map(|v| v.value.clone());
    assert_eq!(get("experiment_name"), Some(cytodl_build::config::node::Value::Str("segmentation".into())));
    assert_eq!(get("model.backbone.spatial_dims"), Some(cytodl_build::config::node::Value::Int(3)));
    assert!(n.get_path("model._aux").is_none(), "_aux must be removed");
    assert!(cytodl_tests::segmentation::SOURCES.iter().any(|s| s.ends_with("experiment/segmentation.yaml")));
}

#[test]
fn macro_applies_overrides() {
    let n = load_config(cytodl_tests::labelfree::RESOLVED_YAML, FileId(0)).expect("YAML");
    let order = n.get_path("data.transforms.train.transforms.0.reader.0.dimension_order_out").map(|v| v.value.clone());
    assert_eq!(order, Some(cytodl_build::config::node::Value::Str("YX".into())));
}

#[test]
fn macro_errors_carry_the_yaml_location() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let err = cytodl_build::expand::expand_experiment(dir, "../configs/experiment/segmentation.yaml", &["model.backbone.filterz=1".into()])
        .expect_err("unknown key");
    assert!(err.contains("<override 1>:1:1: error: Could not override 'model.backbone.filterz'"), "{err}");
    assert!(err.contains("did you mean `model.backbone.filters`?"), "{err}");
}
