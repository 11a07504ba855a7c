//! `cytodl_experiment!` expands to the same typed module as `cytodl-build generate`, and that
//! module trains.

use cytodl_build::config::yaml::load_config;
use cytodl_build::diag::FileId;
use cytodl_runtime::backend::CpuTrain;
use cytodl_runtime::burn::optim::GradientsParams;
use cytodl_runtime::burn::tensor::ElementConversion;
use cytodl_runtime::experiment::Experiment;
use cytodl_runtime::family::ModelFamily;
use cytodl_runtime::nn::Init;
use cytodl_runtime::optim::Optimizer;
use cytodl_runtime::task::Im2Im;
use cytodl_runtime::transforms::Pipeline;
use cytodl_tests::labelfree::Labelfree;
use cytodl_tests::segmentation::Segmentation;

#[test]
fn macro_expands_the_experiment() {
    let n = load_config(Segmentation::RESOLVED_YAML, FileId(0)).expect("YAML");
    let get = |p: &str| n.get_path(p).map(|v| v.value.clone());
    assert_eq!(get("experiment_name"), Some(cytodl_build::config::node::Value::Str("segmentation".into())));
    assert_eq!(get("model.backbone.spatial_dims"), Some(cytodl_build::config::node::Value::Int(3)));
    assert!(n.get_path("model._aux").is_none(), "_aux must be removed");
    assert!(cytodl_tests::segmentation::SOURCES.iter().any(|s| s.ends_with("experiment/segmentation.yaml")));
}

#[test]
fn macro_applies_overrides() {
    let n = load_config(Labelfree::RESOLVED_YAML, FileId(0)).expect("YAML");
    let order = n.get_path("data.transforms.train.transforms.0.reader.0.dimension_order_out").map(|v| v.value.clone());
    assert_eq!(order, Some(cytodl_build::config::node::Value::Str("YX".into())));
}

#[test]
fn macro_errors_carry_the_yaml_location() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let err =
        cytodl_build::expand::expand_experiment(dir, "../configs/experiment/segmentation.yaml", &["model.backbone.filterz=1".into()]).expect_err("unknown key");
    assert!(err.contains("<override 1>:1:1: error: Could not override 'model.backbone.filterz'"), "{err}");
    assert!(err.contains("did you mean `model.backbone.filters`?"), "{err}");
}

#[test]
fn macro_module_is_typed_like_the_generated_crate() {
    // The same items as generated/segmentation/src/experiment.rs.
    assert_eq!(Segmentation::NAME, "segmentation");
    assert_eq!(Segmentation::model().x_key.0, cytodl_tests::segmentation::columns::RAW);
    assert_eq!(Segmentation::model().window().expect("window").roi_size, vec![16, 32, 32]);
    assert_eq!(Labelfree::model().window().expect("window").roi_size, vec![32, 32], "2D override reaches the typed module");
    assert_eq!(Pipeline::from_config(&cytodl_tests::segmentation::train_transforms()).expect("pipeline").steps().len(), 7);
    let generated = include_str!("../../generated/segmentation/src/experiment.rs");
    assert!(generated.contains("pub fn train_transforms() -> Compose"));
}

#[test]
fn macro_module_trains_one_step() {
    let device = Default::default();
    let family = Segmentation::model();
    let model = family.build_trainable::<CpuTrain>(&device, &Init::new(0)).expect("model");
    let (optimizer, lr) = cytodl_runtime::assemble::optimizer(&family, None).expect("optimizer");
    let mut optimizer = Optimizer::<CpuTrain>::new(optimizer).expect("optimizer");
    let x = Init::new(1).normal::<CpuTrain, 5>([1, family.in_channels(), 16, 32, 32], 0.0, 1.0, &device);
    let target = Init::new(2).uniform::<CpuTrain, 5>([1, 1, 16, 32, 32], 0.0, 1.0, &device).lower_elem(0.3).float();
    let task = family.task().expect("task");
    let step = |model: &cytodl_runtime::model::MultiTask<CpuTrain>| {
        let preds = model.forward_heads(x.clone());
        let (head, loss) = &task.heads[0];
        loss.forward(preds[head].clone(), target.clone()).expect("loss")
    };
    let before = step(&model);
    let value: f64 = before.clone().into_scalar().elem();
    assert!(value.is_finite() && value > 0.0, "loss {value}");
    let grads = GradientsParams::from_grads(before.backward(), &model);
    let lr = lr * 100.0;
    let model = optimizer.step(lr, model, grads);
    let after: f64 = step(&model).into_scalar().elem();
    assert!(after.is_finite() && after < value, "one Adam step lowers the loss: {value} -> {after}");
}
