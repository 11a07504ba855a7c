//! The GAN objective against cyto_dl 0.6.2's own classes (`MultiScaleDiscriminator`,
//! `Pix2PixHD`, `GANHead._calculate_loss`, `GANHead_resize`'s crop), on committed fixtures made by
//! `tests/fixtures/gan/make_gan_fixtures.py`: with cyto_dl's discriminator weights loaded by
//! their key names, both losses, the generator loss's gradient with respect to the prediction
//! (with and without the reconstruction term) and every discriminator weight's gradient of the
//! discriminator loss match, in 3D, 2D (cyto_dl's per-sample InstanceNorm3d quirk) and
//! super-resolution (nearest-upsampled source, cropped prediction).

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use cytodl_runtime::adversarial::{Adversarial, Criterion, GanObjective};
use cytodl_runtime::backend::CpuTrain;
use cytodl_runtime::loss::{Loss, Reduction};
use cytodl_runtime::nn::discriminator::{cyto_dl_key, MultiScaleDiscriminator, PatchGanConfig};
use cytodl_runtime::nn::weights::named_grads;
use cytodl_runtime::nn::{load_state_dict, Init, LoadOptions, StateDict};

type B = CpuTrain;

/// A case's settings, from `cases.json` (written by the oracle).
struct Case {
    dim: usize,
    n_scales: usize,
    n_layers: usize,
    ndf: usize,
    scales: usize,
    resize: bool,
}

fn case(name: &str) -> (Case, StateDict) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gan");
    let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases.json")).expect("json");
    let c = &cases[name];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{name}.{k}")) as usize;
    let case = Case {
        dim: n("dim"),
        n_scales: n("n_scales"),
        n_layers: n("n_layers"),
        ndf: n("ndf"),
        scales: n("scales"),
        resize: c["resize"].as_bool().expect("resize"),
    };
    let dict = StateDict::from_safetensors(dir.join(format!("{name}.safetensors"))).expect("fixture");
    (case, dict)
}

fn tensor5(dict: &StateDict, key: &str) -> Tensor<B, 5> {
    let data = dict.tensors.get(key).unwrap_or_else(|| panic!("fixture has no `{key}`"));
    let shape: [usize; 5] = match data.shape.as_slice() {
        [n, c, y, x] => [*n, *c, 1, *y, *x],
        [n, c, z, y, x] => [*n, *c, *z, *y, *x],
        s => panic!("unexpected shape {s:?}"),
    };
    Tensor::from_data(TensorData::new(data.as_slice::<f32>().expect("f32").to_vec(), shape), &Default::default())
}

fn scalar(dict: &StateDict, key: &str) -> f64 {
    dict.tensors[key].as_slice::<f32>().expect("f32")[0] as f64
}

/// Max |a - b| over max |b|, shapes equal.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check(name: &str) {
    let (c, dict) = case(name);
    let device = Default::default();
    let d = MultiScaleDiscriminator::<B>::new(PatchGanConfig { input_nc: 2, ndf: c.ndf, n_layers: c.n_layers, dim: c.dim }, c.n_scales, &device, &Init::new(0))
        .expect("discriminator");
    // cyto_dl's keys, mapped onto ours; strict: every weight is loaded, nothing is left over.
    let mut weights = StateDict { tensors: BTreeMap::new(), source: dict.source.clone() };
    for (k, v) in &dict.tensors {
        if let Some(rest) = k.strip_prefix("discriminator.") {
            weights.tensors.insert(cyto_dl_key(rest).unwrap_or_else(|| panic!("{name}: unmapped key {k}")), v.clone());
        }
    }
    let (d, report) = load_state_dict(d, &weights, &LoadOptions { strict: true, prefix: Some(String::new()) }).expect("strict load");
    assert!(report.is_clean(), "{name}: {report}");

    let objective = GanObjective {
        criterion: Criterion::Vanilla { real_label: 1.0, fake_label: 0.0 },
        scales: Some(c.scales),
        gan_weight: 1.0,
        feature_matching_weight: 10.0,
    };
    let adversarial = |weight: f64| Adversarial {
        head: "raw".into(),
        objective,
        reconstruction: Loss::Mse { reduction: Reduction::Mean },
        reconstruction_weight: weight,
        crop_to_common: c.resize,
    };
    let (x, y) = (tensor5(&dict, "x"), tensor5(&dict, "y"));
    let expected_grad = |key: &str| dict.tensors[key].as_slice::<f32>().expect("f32").to_vec();

    for (weight, loss_key, grad_key) in [(100.0, "loss_g", "grad_y_hat"), (0.0, "loss_g_adversarial", "grad_y_hat_adversarial")] {
        let y_hat = tensor5(&dict, "y_hat").require_grad();
        let loss = adversarial(weight).generator_loss(&d, x.clone(), y.clone(), y_hat.clone()).expect("generator loss");
        let value = loss.clone().into_scalar() as f64;
        let want = scalar(&dict, loss_key);
        assert!((value - want).abs() <= 1e-5 * want.abs().max(1.0), "{name} {loss_key}: {value} vs cyto_dl {want}");
        let grads = loss.backward();
        let g = y_hat.grad(&grads).expect("prediction gradient").into_data().to_vec::<f32>().expect("f32");
        let err = rel_err(&g, &expected_grad(grad_key));
        assert!(err < 1e-4, "{name} {grad_key}: relative error {err}");
    }

    let y_hat = tensor5(&dict, "y_hat").require_grad();
    let loss = adversarial(100.0).discriminator_loss(&d, x, y, y_hat.clone()).expect("discriminator loss");
    let value = loss.clone().into_scalar() as f64;
    let want = scalar(&dict, "loss_d");
    assert!((value - want).abs() <= 1e-5 * want.abs().max(1.0), "{name} loss_d: {value} vs cyto_dl {want}");
    let grads = loss.backward();
    assert!(y_hat.grad(&grads).is_none(), "{name}: the discriminator's loss must not reach the generator");
    let ours = named_grads(&d, &grads);
    // A bias right before an instance norm has an analytic gradient of 0 (the norm removes the
    // mean): both sides hold rounding noise there, so errors are measured against the largest
    // gradient of the whole discriminator.
    let reference: Vec<(&String, Vec<f32>)> = dict.tensors.keys().filter(|k| k.starts_with("grad.discriminator.")).map(|k| (k, expected_grad(k))).collect();
    let scale = reference.iter().flat_map(|(_, g)| g.iter()).fold(0f32, |m, v| m.max(v.abs()));
    let mut compared = 0;
    for (k, want) in &reference {
        let mapped = cyto_dl_key(&k["grad.discriminator.".len()..]).expect("mapped");
        let g = ours.get(&mapped).unwrap_or_else(|| panic!("{name}: no gradient for {mapped}")).as_slice::<f32>().expect("f32").to_vec();
        assert_eq!(g.len(), want.len(), "{name} {k}");
        let err = g.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(err < 1e-4, "{name} {k}: error {err} of the largest gradient");
        compared += 1;
    }
    assert_eq!(compared, ours.len(), "{name}: every discriminator weight has a reference gradient");
    assert!(compared >= 4 * c.n_scales, "{name}: {compared} gradients compared");
}

#[test]
fn gan_3d_matches_cyto_dl() {
    check("gan_3d");
}

#[test]
fn gan_2d_matches_cyto_dl() {
    check("gan_2d");
}

#[test]
fn gan_superres_2d_matches_cyto_dl() {
    check("gan_superres_2d");
}
