//! cyto_dl heads vs MONAI 1.5.2 blocks arranged as cyto_dl's ResBlocksHead, on committed
//! fixtures (tests/fixtures/heads/make_heads_fixtures.py): eval output within 1e-4, weights
//! loaded strictly from cyto_dl checkpoint key names; plus the projection head, config checks
//! and the `Head` wrapper.

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use cytodl_runtime::backend::Cpu;
use cytodl_runtime::nn::heads::{
    FinalAct, Head, HeadConfigError, HeadInputError, ProjectionConfig, ProjectionMode, ResBlocksHeadConfig, Resolution, UpsampleMethod,
};
use cytodl_runtime::nn::Init;
use cytodl_runtime::nn::StateDict;

type B = Cpu;

fn fixture(name: &str) -> StateDict {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heads").join(format!("{name}.safetensors"));
    StateDict::from_safetensors(&path).expect("fixture readable")
}

/// A fixture tensor as 5-D (4-D 2-D tensors get Z = 1).
fn tensor5(dict: &StateDict, key: &str) -> Tensor<B, 5> {
    let data = dict.tensors.get(key).expect("fixture tensor present");
    let shape: [usize; 5] = match data.shape.as_slice() {
        [n, c, y, x] => [*n, *c, 1, *y, *x],
        [n, c, z, y, x] => [*n, *c, *z, *y, *x],
        s => panic!("unexpected fixture shape {s:?}"),
    };
    let values = data.as_slice::<f32>().expect("f32").to_vec();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn max_abs_diff(a: Tensor<B, 5>, b: Tensor<B, 5>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape");
    (a - b).abs().max().into_scalar()
}

fn cfg(spatial_dims: usize, cin: usize, cout: usize, act: FinalAct, n_convs: usize) -> ResBlocksHeadConfig {
    let mut c = ResBlocksHeadConfig::new(cin, cout);
    c.spatial_dims = spatial_dims;
    c.final_act = act;
    c.n_convs = n_convs;
    c
}

fn hr(mut c: ResBlocksHeadConfig, method: UpsampleMethod, ratio: Vec<usize>) -> ResBlocksHeadConfig {
    c.resolution = Resolution::Hr;
    c.upsample_method = method;
    c.upsample_ratio = Some(ratio);
    c
}

/// Strict load from `task_heads.target.*`, forward, compare; returns the max abs error.
fn check(name: &str, config: ResBlocksHeadConfig) -> f32 {
    let dict = fixture(name);
    let head = config.init::<B>(&Default::default(), &Init::new(0)).expect("valid config");
    let (head, report) = head.load_cyto_dl(&dict, "task_heads.target.", true).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.is_clean(), "{name}: {report}");
    let out = head.try_forward(tensor5(&dict, "_input")).unwrap_or_else(|e| panic!("{name}: {e}"));
    let err = max_abs_diff(out, tensor5(&dict, "_output"));
    eprintln!("{name}: {} params loaded, max |diff| {err:e}", report.loaded.len());
    assert!(err < 1e-4, "{name}: max |diff| {err}");
    err
}

#[test]
fn lr_3d_two_convs_sigmoid() {
    check("lr_3d", cfg(3, 4, 2, FinalAct::Sigmoid, 2));
}

#[test]
fn lr_2d_two_convs() {
    check("lr_2d", cfg(2, 4, 3, FinalAct::Identity, 2));
}

#[test]
fn hr_pixelshuffle_3d() {
    check("hr_pixelshuffle_3d", hr(cfg(3, 16, 2, FinalAct::Identity, 1), UpsampleMethod::PixelShuffle, vec![2]));
}

#[test]
fn hr_pixelshuffle_2d_ratio3_tanh() {
    check("hr_pixelshuffle_2d", hr(cfg(2, 8, 1, FinalAct::Tanh, 1), UpsampleMethod::PixelShuffle, vec![3]));
}

#[test]
fn hr_nontrainable_3d_ratio4() {
    check("hr_nontrainable_3d", hr(cfg(3, 4, 1, FinalAct::Tanh, 1), UpsampleMethod::NonTrainable, vec![4]));
}

#[test]
fn hr_nontrainable_2d_anisotropic() {
    check("hr_nontrainable_2d_aniso", hr(cfg(2, 3, 2, FinalAct::Identity, 1), UpsampleMethod::NonTrainable, vec![2, 3]));
}

#[test]
fn hr_deconv_2d() {
    check("hr_deconv_2d", hr(cfg(2, 4, 1, FinalAct::Identity, 1), UpsampleMethod::Deconv, vec![2]));
}

#[test]
fn hr_deconv_3d_dense() {
    let mut c = hr(cfg(3, 4, 2, FinalAct::Identity, 2), UpsampleMethod::Deconv, vec![1, 2, 2]);
    c.dense = true;
    check("hr_deconv_3d_dense", c);
}

#[test]
fn fresh_head_shapes_and_key_mapping() {
    let device = Default::default();
    let c = hr(cfg(3, 16, 2, FinalAct::Identity, 2), UpsampleMethod::PixelShuffle, vec![2]);
    let head = c.init::<B>(&device, &Init::new(0)).expect("valid");
    let y = head.forward(Tensor::zeros([1, 16, 2, 3, 4], &device));
    assert_eq!(y.dims(), [1, 2, 4, 6, 8]);
    assert_eq!(head.cyto_dl_key("model.model.2.conv2.conv.weight").as_deref(), Some("res_blocks.1.conv2.conv.weight"));
    assert_eq!(head.cyto_dl_key("model.model.3.conv.conv.bias").as_deref(), Some("out.conv.conv.bias"));
    assert_eq!(head.cyto_dl_key("model.upsample.pixelshuffle.conv_block.weight").as_deref(), Some("upsample.conv.weight"));
    assert_eq!(head.cyto_dl_key("model.model.4.conv.weight"), None);
    // ICNR: the 8 sub-pixel channels of each output channel start from the same kernel
    let w = head.upsample.as_ref().and_then(|u| u.conv.as_ref()).expect("conv").weight.val();
    let w0 = w.clone().narrow(0, 0, 1);
    let w7 = w.narrow(0, 7, 1);
    assert_eq!(max_abs_diff(w0, w7), 0.0);
}

#[test]
fn strict_load_reports_wrong_head_layout() {
    // lr_3d has two res blocks; a one-conv head leaves model.model.2/3 keys unmapped or wrong
    let dict = fixture("lr_3d");
    let head = cfg(3, 4, 2, FinalAct::Sigmoid, 1).init::<B>(&Default::default(), &Init::new(0)).expect("valid");
    let err = head.load_cyto_dl(&dict, "task_heads.target.", true);
    assert!(err.is_err());
    let head = cfg(3, 4, 2, FinalAct::Sigmoid, 1).init::<B>(&Default::default(), &Init::new(0)).expect("valid");
    let (_, report) = head.load_cyto_dl(&dict, "task_heads.target.", false).expect("lenient");
    assert!(!report.is_clean());
    assert!(report.unexpected.iter().any(|k| k.contains("model.model.3")), "{report}");
}

#[test]
fn config_errors() {
    let d = Default::default();
    let mut c = cfg(3, 4, 1, FinalAct::Identity, 1);
    c.resolution = Resolution::Hr;
    assert_eq!(c.init::<B>(&d, &Init::new(0)).err(), Some(HeadConfigError::MissingUpsampleRatio));
    c.upsample_ratio = Some(vec![2, 2]);
    assert!(matches!(c.init::<B>(&d, &Init::new(0)).err(), Some(HeadConfigError::UpsampleRatioLength { .. })));
    c.upsample_ratio = Some(vec![2]);
    // pixelshuffle: 4 >> 3 == 0 channels
    assert!(matches!(c.init::<B>(&d, &Init::new(0)).err(), Some(HeadConfigError::PixelShuffleChannels { .. })));
    c.spatial_dims = 4;
    assert_eq!(c.init::<B>(&d, &Init::new(0)).err(), Some(HeadConfigError::SpatialDims(4)));
    // Option names are read by the declaration (cytodl-schema); the head takes its typed values.
    use cytodl_runtime::config::{self as schema, Field, Lit};
    assert!(schema::UpsampleMethod::from_lit(&Lit::Str("bilinear".into())).is_err());
    assert_eq!(schema::UpsampleMethod::from_lit(&Lit::Str("nontrainable".into())), Ok(schema::UpsampleMethod::NonTrainable));
    assert!(schema::Resolution::from_lit(&Lit::Str("mr".into())).is_err());
    let act = |target: &str, dim: Option<i64>| {
        let mut m = indexmap::IndexMap::new();
        m.insert("_target_".to_string(), Lit::Str(target.into()));
        if let Some(d) = dim {
            m.insert("dim".to_string(), Lit::Int(d));
        }
        schema::ActivationConfig::from_lit(&Lit::Map(m)).expect("activation")
    };
    assert_eq!(FinalAct::from_config(&act("torch.nn.Sigmoid", None), 3), Ok(FinalAct::Sigmoid));
    assert_eq!(FinalAct::from_config(&act("torch.nn.ReLU", None), 3), Ok(FinalAct::ReLU));
    // torch's axis 2 of a 2-D network's [N, C, Y, X] output is Y: axis 3 of [N, C, 1, Y, X].
    assert_eq!(FinalAct::from_config(&act("torch.nn.Softmax", Some(2)), 2), Ok(FinalAct::Softmax(3)));
    assert_eq!(FinalAct::from_config(&act("torch.nn.Softmax", Some(5)), 3), Err(HeadConfigError::SoftmaxDim { dim: 5, rank: 5 }));
}

#[test]
fn projection_max_and_mean() {
    let d = Default::default();
    let x: Tensor<B, 5> = Tensor::from_data(TensorData::new((0..2 * 3 * 2 * 2).map(|v| ((v * 7) % 11) as f32).collect::<Vec<_>>(), [1, 2, 3, 2, 2]), &d);
    let vals = x.clone().into_data().to_vec::<f32>().expect("f32");
    let cfg = |mode| ProjectionConfig { mode, in_channels: 2, out_channels: 2, depth: 3 };
    let max = cfg(ProjectionMode::Max).init::<B>(&d, &Init::new(0)).expect("valid").forward(x.clone());
    let mean = cfg(ProjectionMode::Mean).init::<B>(&d, &Init::new(0)).expect("valid").forward(x);
    assert_eq!(max.dims(), [1, 2, 1, 2, 2]);
    let max = max.into_data().to_vec::<f32>().expect("f32");
    let mean = mean.into_data().to_vec::<f32>().expect("f32");
    for c in 0..2 {
        for p in 0..4 {
            let zs: Vec<f32> = (0..3).map(|z| vals[c * 12 + z * 4 + p]).collect();
            let m = zs.iter().cloned().fold(f32::MIN, f32::max);
            assert_eq!(max[c * 4 + p], m);
            assert!((mean[c * 4 + p] - zs.iter().sum::<f32>() / 3.0).abs() < 1e-6);
        }
    }
}

#[test]
fn projection_learned_matches_torch_conv3d() {
    let d = Default::default();
    let dict = fixture("projection_learned");
    let head = ProjectionConfig { mode: ProjectionMode::Learned, in_channels: 4, out_channels: 3, depth: 5 }.init::<B>(&d, &Init::new(0)).expect("valid");
    let (head, report) =
        cytodl_runtime::nn::load_state_dict(head, &dict, &cytodl_runtime::nn::LoadOptions { strict: false, prefix: Some(String::new()) }).expect("load");
    assert_eq!(report.loaded.len(), 2, "{report}");
    let out = head.try_forward(tensor5(&dict, "_input")).expect("depth 5");
    assert!(max_abs_diff(out, tensor5(&dict, "_output")) < 1e-4);
    let wrong = head.try_forward(Tensor::zeros([1, 4, 4, 2, 2], &d));
    assert_eq!(wrong.err(), Some(HeadInputError::Depth { expected: 5, got: 4 }));
}

#[test]
fn head_enum_dispatch_and_loading() {
    let d = Default::default();
    let x: Tensor<B, 5> = Tensor::ones([1, 4, 3, 4, 4], &d);
    let base = Head::<B>::base();
    assert_eq!(max_abs_diff(base.forward(x.clone()), x.clone()), 0.0);
    let proj = Head::Projection(
        ProjectionConfig { mode: ProjectionMode::Mean, in_channels: 4, out_channels: 4, depth: 3 }.init::<B>(&d, &Init::new(0)).expect("valid"),
    );
    assert_eq!(proj.forward(x.clone()).dims(), [1, 4, 1, 4, 4]);
    // a ResBlocks head loads from a whole checkpoint by head name
    let dict = fixture("lr_3d");
    let head = Head::ResBlocks(cfg(3, 4, 2, FinalAct::Sigmoid, 2).init::<B>(&d, &Init::new(0)).expect("valid"));
    let (head, report) = head.load_cyto_dl(&dict, "target", true).expect("strict load");
    assert_eq!(report.loaded.len(), 6);
    let out = head.try_forward(tensor5(&dict, "_input")).expect("4 channels");
    assert!(max_abs_diff(out, tensor5(&dict, "_output")) < 1e-4);
    assert!(head.try_forward(x).is_ok());
    let bad = Head::ResBlocks(cfg(3, 4, 2, FinalAct::Sigmoid, 2).init::<B>(&d, &Init::new(0)).expect("valid")).try_forward(Tensor::zeros([1, 3, 2, 2, 2], &d));
    assert_eq!(bad.err(), Some(HeadInputError::Channels { expected: 4, got: 3 }));
}

#[test]
fn resblocks_with_mean_projection_first_layer() {
    // cyto_dl's first_layer slot: 3-D features projected to 2-D, then 2-D blocks
    let d = Default::default();
    let mut c = cfg(2, 4, 1, FinalAct::Identity, 1);
    c.first_layer = Some(ProjectionConfig { mode: ProjectionMode::Mean, in_channels: 4, out_channels: 4, depth: 5 });
    let head = c.init::<B>(&d, &Init::new(0)).expect("valid");
    let y = head.forward(Tensor::ones([2, 4, 5, 6, 6], &d));
    assert_eq!(y.dims(), [2, 1, 1, 6, 6]);
}

#[test]
fn gradients_reach_every_parameter() {
    // interpolation, pixel shuffle, pad-pool and the dense concat are plain differentiable ops
    use cytodl_runtime::backend::CpuTrain;
    use cytodl_runtime::nn::weights::{named_grads, param_names};
    let d = Default::default();
    let cases = [
        hr(cfg(3, 16, 2, FinalAct::Sigmoid, 1), UpsampleMethod::PixelShuffle, vec![2]),
        hr(cfg(2, 4, 1, FinalAct::Tanh, 2), UpsampleMethod::NonTrainable, vec![2, 3]),
        {
            let mut c = hr(cfg(3, 4, 2, FinalAct::Identity, 2), UpsampleMethod::Deconv, vec![1, 2, 2]);
            c.dense = true;
            c
        },
    ];
    for c in cases {
        let head = c.init::<CpuTrain>(&d, &Init::new(0)).expect("valid");
        let x = Init::new(1).normal::<CpuTrain, 5>([2, c.in_channels, 2, 3, 4], 0.0, 1.0, &d);
        let loss = head.forward(x).powi_scalar(2).mean();
        let grads = loss.backward();
        let got = named_grads(&head, &grads);
        let names = param_names(&head);
        assert!(!names.is_empty());
        for (name, _) in names {
            let g = got.get(&name).unwrap_or_else(|| panic!("{c:?}: no gradient for {name}"));
            let g = g.as_slice::<f32>().expect("f32");
            assert!(g.iter().all(|v| v.is_finite()), "{name}");
            assert!(g.iter().any(|v| *v != 0.0), "{c:?}: zero gradient for {name}");
        }
    }
}
