//! DynUNet vs MONAI 1.5.2 on committed fixtures (made by /work/shared/tools/make_parity_fixture.py):
//! eval output within 1e-4, DiceCE loss within 1e-5, gradients within 1e-3 relative (metric in
//! examples/parity.rs), from safetensors and from a Lightning checkpoint; plus weight-loading
//! error reporting and config checks.

#[path = "../examples/parity.rs"]
#[allow(dead_code)]
mod parity;

use std::path::PathBuf;

use cytodl_runtime::backend::{Cpu, CpuTrain};
use cytodl_runtime::nn::weights::{load_state_dict, param_names, LoadOptions, StateDict, WeightsError};
use cytodl_runtime::nn::Init;
use cytodl_runtime::nn::{DynUNet, DynUNetConfig, DynUNetConfigError, PerLevel};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name)
}

fn assert_parity(m: parity::Metrics, what: &str) {
    assert!(m.max_abs_out < 1e-4, "{what}: output {m:?}");
    assert!(m.loss_abs < 1e-5, "{what}: loss {m:?}");
    assert!(m.max_rel_grad < 1e-3, "{what}: gradients {m:?}");
}

#[test]
fn seg3d_res_from_safetensors() {
    assert_parity(parity::check::<CpuTrain>(&fixture("dynunet3d_seg"), None, &Default::default(), false).unwrap(), "dynunet3d_seg");
}

#[test]
fn seg3d_res_from_lightning_checkpoint() {
    let dir = fixture("dynunet3d_seg");
    let m = parity::check::<CpuTrain>(&dir, Some(&dir.join("lightning_style.ckpt")), &Default::default(), false).unwrap();
    assert_parity(m, "dynunet3d_seg lightning_style.ckpt");
}

#[test]
fn res_2d() {
    assert_parity(parity::check::<CpuTrain>(&fixture("dynunet2d_res"), None, &Default::default(), false).unwrap(), "dynunet2d_res");
}

#[test]
fn basic_2d_anisotropic() {
    assert_parity(parity::check::<CpuTrain>(&fixture("dynunet2d_aniso_basic"), None, &Default::default(), false).unwrap(), "dynunet2d_aniso_basic");
}

#[test]
fn basic_3d_four_levels_anisotropic_batch2() {
    assert_parity(parity::check::<CpuTrain>(&fixture("dynunet3d_basic_4lvl"), None, &Default::default(), false).unwrap(), "dynunet3d_basic_4lvl");
}

/// Every fixture through the GPU code path: burn's CubeCL kernels (those CUDA runs) on wgpu, with
/// the CPU's tolerances. Runs where the build has `--features wgpu` (CI: Mesa's lavapipe).
#[cfg(feature = "wgpu")]
#[test]
fn every_fixture_on_wgpu() {
    use cytodl_runtime::backend::WgpuTrain;
    for name in ["dynunet3d_seg", "dynunet2d_res", "dynunet2d_aniso_basic", "dynunet3d_basic_4lvl"] {
        let m = parity::check::<WgpuTrain>(&fixture(name), None, &Default::default(), false).unwrap_or_else(|e| panic!("{name} on wgpu: {e}"));
        assert_parity(m, &format!("{name} on wgpu"));
    }
}

/// Every fixture and the Lightning checkpoint on the LibTorch backend (PyTorch's CPU kernels,
/// gradients through torch's autograd: `nn::torch_autograd`), with the CPU's tolerances. Runs
/// where the build has `--features libtorch` (CI: a CPU view of PyPI's torch).
#[cfg(feature = "libtorch")]
#[test]
fn every_fixture_on_libtorch() {
    use cytodl_runtime::backend::LibTorchTrain;
    let device = burn::backend::libtorch::LibTorchDevice::Cpu;
    for name in ["dynunet3d_seg", "dynunet2d_res", "dynunet2d_aniso_basic", "dynunet3d_basic_4lvl"] {
        let m = parity::check::<LibTorchTrain>(&fixture(name), None, &device, false).unwrap_or_else(|e| panic!("{name} on libtorch: {e}"));
        assert_parity(m, &format!("{name} on libtorch"));
    }
    let dir = fixture("dynunet3d_seg");
    let m = parity::check::<LibTorchTrain>(&dir, Some(&dir.join("lightning_style.ckpt")), &device, false).expect("lightning_style.ckpt on libtorch");
    assert_parity(m, "dynunet3d_seg lightning_style.ckpt on libtorch");
}

fn seg_config() -> DynUNetConfig {
    let l = |v: &[usize]| v.iter().map(|&k| PerLevel::Int(k)).collect::<Vec<_>>();
    DynUNetConfig::from_monai(3, 1, 1, &l(&[3, 3, 3]), &l(&[1, 2, 2]), &l(&[2, 2]), Some(&[16, 32, 64])).unwrap().with_res_block(true)
}

#[test]
fn lightning_keys_and_aliases() {
    let dir = fixture("dynunet3d_seg");
    let dict = StateDict::from_pytorch(dir.join("lightning_style.ckpt")).unwrap();
    assert!(dict.keys().any(|k| k.starts_with("backbone.skip_layers.")));
    let model: DynUNet<Cpu> = seg_config().init(&Default::default(), &Init::new(0)).unwrap();
    let (_, report) = load_state_dict(model, &dict, &LoadOptions { strict: true, prefix: None }).unwrap();
    assert_eq!(report.prefix.as_deref(), Some("backbone."));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.loaded.len(), 43);
}

#[test]
fn strict_load_names_missing_unexpected_and_mismatched_keys() {
    let mut dict = StateDict::from_safetensors(fixture("dynunet3d_seg").join("weights.safetensors")).unwrap();
    dict.tensors.remove("bottleneck.norm1.weight");
    let w = dict.tensors.remove("output_block.conv.conv.weight").unwrap();
    dict.tensors.insert("extra.weight".into(), w);
    let small = burn::tensor::TensorData::new(vec![0f32; 4], [4]);
    dict.tensors.insert("input_block.norm1.bias".into(), small);
    let model: DynUNet<Cpu> = seg_config().init(&Default::default(), &Init::new(0)).unwrap();
    let err = load_state_dict(model, &dict, &LoadOptions { strict: true, prefix: None }).unwrap_err();
    let WeightsError::Strict(report) = &err else { panic!("{err}") };
    assert_eq!(report.missing, vec!["bottleneck.norm1.weight".to_string(), "output_block.conv.conv.weight".to_string()]);
    assert_eq!(report.unexpected, vec!["extra.weight".to_string()]);
    assert_eq!(report.shape_mismatches, vec![("input_block.norm1.bias".to_string(), vec![16], vec![4])]);
    let msg = err.to_string();
    assert!(msg.contains("bottleneck.norm1.weight") && msg.contains("extra.weight") && msg.contains("input_block.norm1.bias"), "{msg}");

    // partial: loads the rest and reports the same
    let model: DynUNet<Cpu> = seg_config().init(&Default::default(), &Init::new(0)).unwrap();
    let (_, partial) = load_state_dict(model, &dict, &LoadOptions::default()).unwrap();
    assert_eq!(partial.loaded.len(), 40);
    assert_eq!(partial.missing.len(), 2);
}

#[test]
fn missing_weights_file_is_an_error_naming_it() {
    let err = StateDict::from_file("/nonexistent/w.safetensors").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/w.safetensors"));
    let err = StateDict::from_file("/nonexistent/w.ckpt").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/w.ckpt"));
}

#[test]
fn monai_key_names() {
    let model: DynUNet<Cpu> = seg_config().init(&Default::default(), &Init::new(0)).unwrap();
    let names: Vec<String> = param_names::<Cpu, _>(&model).into_iter().map(|(n, _)| n).collect();
    for k in [
        "input_block.conv1.conv.weight",
        "input_block.conv3.conv.weight",
        "input_block.norm3.bias",
        "downsamples.0.conv2.conv.weight",
        "bottleneck.norm2.weight",
        "upsamples.0.transp_conv.conv.weight",
        "upsamples.1.conv_block.conv1.conv.weight",
        "output_block.conv.conv.bias",
    ] {
        assert!(names.iter().any(|n| n == k), "{k} not in {names:?}");
    }
}

#[test]
fn config_checks() {
    let l = |v: &[usize]| v.iter().map(|&k| PerLevel::Int(k)).collect::<Vec<_>>();
    assert!(matches!(DynUNetConfig::from_monai(3, 1, 1, &l(&[3, 3]), &l(&[1, 2]), &l(&[2]), None), Err(DynUNetConfigError::KernelStrideLength { .. })));
    assert!(matches!(DynUNetConfig::from_monai(3, 1, 1, &l(&[3, 3, 3]), &l(&[1, 2, 2]), &l(&[2]), None), Err(DynUNetConfigError::UpsampleLength { .. })));
    let bad = [PerLevel::Int(3), PerLevel::List(vec![3, 3]), PerLevel::Int(3)];
    assert!(matches!(DynUNetConfig::from_monai(3, 1, 1, &bad, &l(&[1, 2, 2]), &l(&[2, 2]), None), Err(DynUNetConfigError::PerLevelLength { index: 1, .. })));
    // MONAI's default filters and the 2-D expansion
    let c = DynUNetConfig::from_monai(2, 1, 2, &l(&[3, 3, 3]), &l(&[1, 2, 2]), &l(&[2, 2]), None).unwrap();
    assert_eq!(c.filters, vec![32, 64, 128]);
    assert_eq!(c.kernel_size[0], [1, 3, 3]);
    assert_eq!(c.strides[1], [1, 2, 2]);
}

#[test]
fn deep_supervision_heads_in_training_only() {
    use burn::module::AutodiffModule;
    use cytodl_runtime::backend::CpuTrain;
    let l = |v: &[usize]| v.iter().map(|&k| PerLevel::Int(k)).collect::<Vec<_>>();
    let cfg =
        DynUNetConfig::from_monai(3, 1, 2, &l(&[3, 3, 3, 3]), &l(&[1, 2, 2, 2]), &l(&[2, 2, 2]), Some(&[4, 8, 8, 8])).unwrap().with_deep_supervision(true, 2);
    let model: DynUNet<CpuTrain> = cfg.init(&Default::default(), &Init::new(0)).unwrap();
    let x = burn::tensor::Tensor::<CpuTrain, 5>::ones([1, 1, 8, 16, 16], &Default::default());
    let stacked = model.forward_stacked(x.clone());
    assert_eq!(stacked.dims(), [1, 3, 2, 8, 16, 16]);
    let eval = model.valid().forward_stacked(x.inner());
    assert_eq!(eval.dims(), [1, 1, 2, 8, 16, 16]);
}

/// MONAI's training-mode deep-supervision output (`make.py` in the fixture directory).
#[test]
fn deep_supervision_matches_monai() {
    use cytodl_runtime::backend::CpuTrain;
    use cytodl_runtime::nn::weights::load_file;
    let dir = fixture("dynunet3d_deepsup");
    let l = |v: &[usize]| v.iter().map(|&k| PerLevel::Int(k)).collect::<Vec<_>>();
    let cfg = DynUNetConfig::from_monai(3, 1, 2, &l(&[3, 3, 3, 3]), &l(&[1, 2, 2, 2]), &l(&[2, 2, 2]), Some(&[4, 8, 8, 8]))
        .unwrap()
        .with_res_block(true)
        .with_deep_supervision(true, 2);
    let model: DynUNet<CpuTrain> = cfg.init(&Default::default(), &Init::new(0)).unwrap();
    let strict = LoadOptions { strict: true, prefix: None };
    let (model, _) = load_file(model, dir.join("weights.safetensors"), &strict).unwrap();
    let io = StateDict::from_safetensors(dir.join("io.safetensors")).unwrap();
    let x = io.tensors["input"].clone();
    let x = burn::tensor::Tensor::<CpuTrain, 5>::from_data(x, &Default::default());
    let y = model.forward_stacked(x);
    let expected = &io.tensors["output_train_stacked"];
    assert_eq!(y.dims().to_vec(), expected.shape.to_vec());
    let got = y.into_data().to_vec::<f32>().unwrap();
    let want = expected.to_vec::<f32>().unwrap();
    let err = cytodl_testkit::max_abs_diff(&got, &want);
    assert!(err < 1e-4, "max abs error {err}");
}
