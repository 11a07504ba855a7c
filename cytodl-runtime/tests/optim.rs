//! Optimizers, clipping, accumulation, state save/restore and LR schedules vs torch 2.5.1.
//!
//! The model is a tiny linear map `Ŷ = X W + b` (W 2×2, b 2) with loss `mean((Ŷ - Y)²)`; the
//! expected parameters after each step are torch's (float32, the update formulas quoted at each
//! test), committed as numbers: the tests never call Python.
//!
//! Oracle: `scripts/oracles/optim_torch.py` prints every expected number below; `--check` compares
//! them with this file.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use cytodl_runtime::backend::{Cpu, CpuTrain};
use cytodl_runtime::optim::*;

type B = CpuTrain;

#[derive(Module, Debug)]
// The generic must be called `B`: burn's derive recognises parameter fields by it.
struct Tiny<B: Backend> {
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
}

const W0: [f32; 4] = [0.5, -0.3, 0.2, 0.8];
const B0: [f32; 2] = [0.1, -0.2];
const X: [f32; 6] = [1.0, 2.0, -1.0, 0.5, 0.3, -2.0];
const Y: [f32; 6] = [1.0, 0.0, 0.0, 1.0, -1.0, 0.5];

fn tiny(w: &[f32], b: &[f32]) -> Tiny<B> {
    let dev = Default::default();
    Tiny {
        w: Param::from_tensor(Tensor::from_data(TensorData::new(w.to_vec(), [2, 2]), &dev)),
        b: Param::from_tensor(Tensor::from_data(TensorData::new(b.to_vec(), [2]), &dev)),
    }
}

fn loss_on(m: &Tiny<B>, x: &[f32], y: &[f32]) -> Tensor<B, 1> {
    let dev = Default::default();
    let x = Tensor::<B, 2>::from_data(TensorData::new(x.to_vec(), [3, 2]), &dev);
    let y = Tensor::<B, 2>::from_data(TensorData::new(y.to_vec(), [3, 2]), &dev);
    let pred = x.matmul(m.w.val()) + m.b.val().unsqueeze_dim::<2>(0).expand([3, 2]);
    (pred - y).square().mean()
}

fn grads(m: &Tiny<B>) -> GradientsParams {
    GradientsParams::from_grads::<B, _>(loss_on(m, &X, &Y).backward(), m)
}

/// `[W (row-major), b]`.
fn values(m: &Tiny<B>) -> Vec<f64> {
    let mut v: Vec<f32> = m.w.val().into_data().to_vec().unwrap();
    v.extend(m.b.val().into_data().to_vec::<f32>().unwrap());
    v.into_iter().map(f64::from).collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w} (all {got:?})");
    }
}

fn run(config: OptimizerConfig, lr: f64) -> Vec<Vec<f64>> {
    let mut opt = Optimizer::<B>::new(config).unwrap();
    let mut m = tiny(&W0, &B0);
    let mut out = Vec::new();
    for _ in 0..3 {
        let g = grads(&m);
        m = opt.step(lr, m, g);
        out.push(values(&m));
    }
    out
}

fn check(config: OptimizerConfig, want: [[f64; 6]; 3], what: &str) {
    for (s, (got, want)) in run(config, 0.1).iter().zip(want.iter()).enumerate() {
        assert_close(got, want, 2e-6, &format!("{what} step {}", s + 1));
    }
}

// The gradient at (W0, b0): dL/dW, dL/db = (2/6) Xᵀ(XW + b - Y), (2/6) Σ_rows (XW + b - Y).
const G0: [f64; 6] = [0.18500001728534698, 0.294333279132843, -0.6166667342185974, 2.243333339691162, 0.1833333522081375, -0.5966667532920837];

#[test]
fn adam_matches_torch() {
    // torch.optim.Adam(lr=0.1): m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
    // p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + 1e-8). Step 1 moves every p by -lr·sign(g).
    check(
        OptimizerConfig::Adam(AdamConfig::default()),
        [
            [0.4000000059604645, -0.4000000059604645, 0.30000001192092896, 0.7000000476837158, 1.4901161193847656e-08, -0.10000001639127731],
            [0.3019797205924988, -0.4975012540817261, 0.39635926485061646, 0.6005922555923462, -0.09294842928647995, -0.000554308295249939],
            [0.2085060179233551, -0.5889667272567749, 0.48331472277641296, 0.5023159980773926, -0.16582432389259338, 0.09783399105072021],
        ],
        "adam",
    );
    // Adam(lr=0.1, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True): g += 0.1 p, v̂ = max(v̂, v).
    check(
        OptimizerConfig::Adam(AdamConfig { betas: (0.5, 0.9), weight_decay: 0.1, amsgrad: true, ..Default::default() }),
        [
            [0.4000000059604645, -0.4000000059604645, 0.30000001192092896, 0.699999988079071, 1.4901161193847656e-08, -0.10000000149011612],
            [0.30512356758117676, -0.490923672914505, 0.3900737166404724, 0.6021638512611389, -0.08396068215370178, -0.002299286425113678],
            [0.22038871049880981, -0.5602421164512634, 0.45640766620635986, 0.5080723762512207, -0.12839342653751373, 0.09133290499448776],
        ],
        "adam wd amsgrad",
    );
}

#[test]
fn adamw_matches_torch() {
    // torch.optim.AdamW(lr=0.1) (weight_decay 1e-2): p *= 1 - lr·wd, then the Adam step.
    // Step 1: W00 = 0.5·(1 - 0.001) - 0.1 = 0.3995.
    check(
        OptimizerConfig::AdamW(AdamWConfig::default()),
        [
            [0.3995000123977661, -0.39970001578330994, 0.29980000853538513, 0.6992000341415405, -9.998679161071777e-05, -0.09980001300573349],
            [0.30111053586006165, -0.4968009889125824, 0.39588209986686707, 0.5990994572639465, -0.09301827847957611, -0.0002555921673774719],
            [0.20744144916534424, -0.5877760052680969, 0.48254719376564026, 0.5002427101135254, -0.16570565104484558, 0.09813082218170166],
        ],
        "adamw",
    );
    check(
        OptimizerConfig::AdamW(AdamWConfig { weight_decay: 0.5, ..Default::default() }),
        [
            [0.375, -0.38499999046325684, 0.28999999165534973, 0.6600000262260437, -0.004999987781047821, -0.09000001102685928],
            [0.26011475920677185, -0.4632223844528198, 0.3728839159011841, 0.5279526710510254, -0.09608955681324005, 0.013890691101551056],
            [0.16033853590488434, -0.5318437218666077, 0.44570446014404297, 0.4043278396129608, -0.1593065857887268, 0.11147976666688919],
        ],
        "adamw wd 0.5",
    );
}

#[test]
fn sgd_matches_torch() {
    // Plain SGD: p -= lr·g; step 1 by hand: W00 = 0.5 - 0.1·0.185 = 0.4815.
    let step1: Vec<f64> = W0.iter().chain(&B0).zip(&G0).map(|(p, g)| *p as f64 - 0.1 * g).collect();
    assert_close(&run(OptimizerConfig::Sgd(SgdConfig::default()), 0.1)[0], &step1, 2e-6, "sgd by hand");
    check(
        OptimizerConfig::Sgd(SgdConfig::default()),
        [
            [0.4814999997615814, -0.3294333517551422, 0.2616666853427887, 0.5756666660308838, 0.08166666328907013, -0.14033332467079163],
            [0.46262216567993164, -0.3506828248500824, 0.30723556876182556, 0.41291356086730957, 0.06432388722896576, -0.08260010182857513],
            [0.4438658356666565, -0.36614665389060974, 0.3411283791065216, 0.29459279775619507, 0.04814467951655388, -0.027715153992176056],
        ],
        "sgd",
    );
    // momentum 0.9: buf = g (step 1), then buf = 0.9 buf + g; p -= lr·buf.
    check(
        OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, ..Default::default() }),
        [
            [0.4814999997615814, -0.3294333517551422, 0.2616666853427887, 0.5756666660308838, 0.08166666328907013, -0.14033332467079163],
            [0.44597217440605164, -0.3771728277206421, 0.3627355694770813, 0.2110135555267334, 0.04782388359308243, -0.028900103643536568],
            [0.39490073919296265, -0.428236722946167, 0.4731023907661438, -0.18007278442382812, 0.0020776756573468447, 0.12453463673591614],
        ],
        "sgd momentum",
    );
    // momentum 0.9, dampening 0.5, weight_decay 0.01: g += 0.01 p; buf = 0.9 buf + 0.5 g.
    check(
        OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, dampening: 0.5, weight_decay: 0.01, nesterov: false }),
        [
            [0.48100000619888306, -0.3291333317756653, 0.2614666819572449, 0.5748667120933533, 0.08156666904687881, -0.140133336186409],
            [0.4542415142059326, -0.3658129572868347, 0.33947622776031494, 0.29068657755851746, 0.05627365782856941, -0.05732148513197899],
            [0.4204021394252777, -0.40413957834243774, 0.42222118377685547, -0.0075587616302073, 0.025567952543497086, 0.04451059550046921],
        ],
        "sgd momentum dampening wd",
    );
    // nesterov: g' = g + 0.9 buf; p -= lr·g'. Step 1: W00 = 0.5 - 0.1·1.9·(0.185 + 0.005) = 0.4639.
    check(
        OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, nesterov: true, weight_decay: 0.01, dampening: 0.0 }),
        [
            [0.46389999985694885, -0.35535332560539246, 0.31678667664527893, 0.37224671244621277, 0.06497666239738464, -0.086253322660923],
            [0.41126561164855957, -0.40465179085731506, 0.4252851903438568, -0.01399761438369751, 0.018730953335762024, 0.06875460594892502],
            [0.3460536599159241, -0.43685707449913025, 0.5014020800590515, -0.2684781849384308, -0.032932791858911514, 0.24774445593357086],
        ],
        "sgd nesterov",
    );
}

fn grad_values(m: &Tiny<B>, g: &GradientsParams) -> Vec<f64> {
    let mut v: Vec<f32> = g.get::<Cpu, 2>(m.w.id).unwrap().into_data().to_vec().unwrap();
    v.extend(g.get::<Cpu, 1>(m.b.id).unwrap().into_data().to_vec::<f32>().unwrap());
    v.into_iter().map(f64::from).collect()
}

#[test]
fn global_norm_and_value_clipping_match_torch() {
    let m = tiny(&W0, &B0);
    assert_close(&grad_values(&m, &grads(&m)), &G0, 2e-6, "gradient");
    // clip_grad_norm_(max_norm=0.5): total = ‖(‖g_W‖, ‖g_b‖)‖ = 2.4337835;
    // every gradient *= 0.5 / (2.4337835 + 1e-6) — one factor for all parameters.
    let (clipped, total) = clip_grad_norm::<B, _>(&m, grads(&m), 0.5).unwrap();
    let total = total.unwrap().into_scalar() as f64;
    assert_close(&[total], &[2.433783531188965], 1e-6, "total norm");
    let want: Vec<f64> = G0.iter().map(|g| g * 0.5 / (2.433783531188965 + 1e-6)).collect();
    assert_close(&grad_values(&m, &clipped), &want, 2e-6, "clip by norm (formula)");
    #[rustfmt::skip]
    let torch = [0.038006655871868134, 0.06046822667121887, -0.1266888529062271, 0.46087345480918884, 0.037664253264665604, -0.12258002907037735];
    assert_close(&grad_values(&m, &clipped), &torch, 2e-6, "clip by norm (torch)");
    // Below the threshold the factor clamps to 1: unchanged.
    let (same, _) = clip_grad_norm::<B, _>(&m, grads(&m), 10.0).unwrap();
    assert_close(&grad_values(&m, &same), &G0, 2e-6, "no clipping below max_norm");
    // clip_grad_value_(0.5): clamp to [-0.5, 0.5].
    let v = clip_grad_value::<B, _>(&m, grads(&m), 0.5).unwrap();
    assert_close(&grad_values(&m, &v), &[G0[0], G0[1], -0.5, 0.5, G0[4], -0.5], 1e-7, "clip by value");

    // Inside the optimizer: SGD(lr=0.1) step on the norm-clipped gradient.
    let mut opt = Optimizer::<B>::new(OptimizerConfig::Sgd(SgdConfig::default())).unwrap().with_grad_clip(GradClip::Norm(0.5)).unwrap();
    let g = grads(&m);
    let m2 = opt.step(0.1, m.clone(), g);
    let want: Vec<f64> = W0.iter().chain(&B0).zip(&torch).map(|(p, g)| *p as f64 - 0.1 * g).collect();
    assert_close(&values(&m2), &want, 2e-6, "sgd with clipping");
}

#[test]
fn gradient_accumulation_sums_or_averages() {
    const X2: [f32; 6] = [0.5, -1.0, 2.0, 1.0, -0.7, 0.2];
    const Y2: [f32; 6] = [0.3, 0.3, -1.0, 2.0, 0.0, 0.0];
    let m = tiny(&W0, &B0);
    let mut acc = GradAccumulator::<B>::new();
    acc.accumulate::<B, _>(&m, GradientsParams::from_grads::<B, _>(loss_on(&m, &X, &Y).backward(), &m));
    acc.accumulate::<B, _>(&m, GradientsParams::from_grads::<B, _>(loss_on(&m, &X2, &Y2).backward(), &m));
    assert_eq!(acc.count(), 2);
    // Lightning (accumulate_grad_batches=2) back-propagates loss/2 per micro-batch.
    let joint = (loss_on(&m, &X, &Y) + loss_on(&m, &X2, &Y2)).div_scalar(2.0);
    let want = grad_values(&m, &GradientsParams::from_grads::<B, _>(joint.backward(), &m));
    let mean = acc.take_mean::<B, _>(&m);
    assert_close(&grad_values(&m, &mean), &want, 1e-6, "mean of micro-batch gradients");
    assert_eq!(acc.count(), 0);

    acc.accumulate::<B, _>(&m, grads(&m));
    acc.accumulate::<B, _>(&m, grads(&m));
    let sum = acc.take_sum();
    let want: Vec<f64> = G0.iter().map(|g| 2.0 * g).collect();
    assert_close(&grad_values(&m, &sum), &want, 2e-6, "sum");
}

/// Two steps, save, then the third step both uninterrupted and from a restored optimizer on a
/// model rebuilt from the saved weights (new ParamIds, as after loading a checkpoint).
fn resume_is_identical(config: OptimizerConfig) {
    let mut opt = Optimizer::<B>::new(config.clone()).unwrap();
    let mut m = tiny(&W0, &B0);
    for _ in 0..2 {
        let g = grads(&m);
        m = opt.step(0.1, m, g);
    }
    let bytes = opt.to_record().to_bytes();
    let saved = values(&m);

    let g = grads(&m);
    let uninterrupted = values(&opt.step(0.05, m, g));

    let w: Vec<f32> = saved[..4].iter().map(|v| *v as f32).collect();
    let b: Vec<f32> = saved[4..].iter().map(|v| *v as f32).collect();
    let m2 = tiny(&w, &b);
    let mut opt2 = Optimizer::<B>::new(config).unwrap();
    let record = OptimizerRecord::from_bytes(&bytes).unwrap();
    opt2.load_record(&record, &m2).unwrap();
    assert_eq!(opt2.to_record(), record);
    let g = grads(&m2);
    let resumed = values(&opt2.step(0.05, m2, g));
    assert_eq!(uninterrupted, resumed, "resumed step differs");

    // A fresh optimizer (no state) gives a different third step: the state mattered.
    let m3 = tiny(&w, &b);
    let g = grads(&m3);
    let fresh = values(&Optimizer::<B>::new(opt2.config().clone()).unwrap().step(0.05, m3, g));
    assert_ne!(fresh, uninterrupted);
}

#[test]
fn saved_state_restores_identical_updates() {
    resume_is_identical(OptimizerConfig::Adam(AdamConfig { amsgrad: true, weight_decay: 1e-4, ..Default::default() }));
    resume_is_identical(OptimizerConfig::AdamW(AdamWConfig::default()));
    resume_is_identical(OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, nesterov: true, ..Default::default() }));
}

#[test]
fn state_records_are_checked() {
    let mut adam = Optimizer::<B>::new(OptimizerConfig::Adam(AdamConfig::default())).unwrap();
    let m = tiny(&W0, &B0);
    let g = grads(&m);
    let m = adam.step(0.1, m, g);
    let rec = adam.to_record();
    assert_eq!(rec.params.keys().cloned().collect::<Vec<_>>(), ["b", "w"], "keyed by module path");
    assert_eq!(rec.params["w"].step, 1);
    assert_eq!(rec.params["w"].buffers["exp_avg"].len(), 4);

    let mut sgd = Optimizer::<B>::new(OptimizerConfig::Sgd(SgdConfig::default())).unwrap();
    assert!(matches!(sgd.load_record(&rec, &m), Err(OptimError::Record(_))), "kind mismatch");
    let mut wrong = rec.clone();
    wrong.params.get_mut("w").unwrap().buffers.get_mut("exp_avg").unwrap().pop();
    assert!(matches!(adam.load_record(&wrong, &m), Err(OptimError::Record(_))), "length mismatch");
    let mut wrong = rec.clone();
    let p = wrong.params.remove("w").unwrap();
    wrong.params.insert("decoder.w".into(), p);
    assert!(matches!(adam.load_record(&wrong, &m), Err(OptimError::Record(_))), "unknown parameter");

    let bytes = rec.to_bytes();
    assert!(OptimizerRecord::from_bytes(&bytes[..bytes.len() - 3]).is_err(), "truncated");
    assert!(OptimizerRecord::from_bytes(b"garbage!garbage!").is_err(), "bad magic");
    assert_eq!(OptimizerRecord::from_bytes(&bytes).unwrap(), rec);
}

#[test]
fn invalid_optimizer_parameters_are_named() {
    let err = |c: OptimizerConfig| match Optimizer::<B>::new(c) {
        Err(OptimError::InvalidParameter { param, .. }) => param,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(err(OptimizerConfig::Adam(AdamConfig { betas: (1.0, 0.999), ..Default::default() })), "betas");
    assert_eq!(err(OptimizerConfig::AdamW(AdamWConfig { eps: -1.0, ..Default::default() })), "eps");
    assert_eq!(err(OptimizerConfig::AdamW(AdamWConfig { weight_decay: -0.1, ..Default::default() })), "weight_decay");
    assert_eq!(err(OptimizerConfig::Sgd(SgdConfig { momentum: -0.5, ..Default::default() })), "momentum");
    assert_eq!(err(OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, dampening: 0.1, nesterov: true, ..Default::default() })), "nesterov");
    assert_eq!(err(OptimizerConfig::Sgd(SgdConfig { nesterov: true, ..Default::default() })), "nesterov");
    let opt = Optimizer::<B>::new(OptimizerConfig::Sgd(SgdConfig::default())).unwrap();
    assert!(matches!(opt.with_grad_clip(GradClip::Norm(-1.0)), Err(OptimError::InvalidParameter { param: "max_norm", .. })));
    let m = tiny(&W0, &B0);
    assert!(matches!(clip_grad_value::<B, _>(&m, grads(&m), f64::NAN), Err(OptimError::InvalidParameter { param: "clip_value", .. })));
    // torch defaults, not burn's.
    assert_eq!(AdamConfig::default().eps, 1e-8);
    assert_eq!(AdamWConfig::default().weight_decay, 1e-2);
    assert_eq!(SgdConfig::default().dampening, 0.0);
}

// ---------------------------------------------------------------- schedules

fn lrs(s: LrSchedule, base: f64, n: u64) -> Vec<f64> {
    (0..n).map(|e| s.lr_at(base, e).unwrap()).collect()
}

fn assert_lrs(got: &[f64], want: &[f64], what: &str) {
    assert_close(got, want, 1e-14, what);
}

#[test]
fn chainable_schedules_match_torch() {
    // ExponentialLR(0.995): lr_e = lr_{e-1} · 0.995 (torch's recurrence, in f64).
    #[rustfmt::skip]
    let want = [0.1, 0.0995, 0.09900250000000001, 0.0985074875, 0.09801495006250001, 0.09752487531218751, 0.09703725093562657, 0.09655206468094843, 0.09606930435754368, 0.09558895783575597, 0.09511101304657718, 0.09463545798134429];
    assert_lrs(&lrs(LrSchedule::Exponential { gamma: 0.995 }, 0.1, 12), &want, "exponential");
    // StepLR(3, 0.5): halves at epochs 3, 6, 9.
    let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.0125];
    assert_lrs(&lrs(LrSchedule::Step { step_size: 3, gamma: 0.5 }, 0.1, 12), &want, "step");
    // MultiStepLR([2, 5, 5, 9], 0.1): ×0.1 at 2, ×0.1² at 5 (milestone counted twice), ×0.1 at 9.
    #[rustfmt::skip]
    let want = [0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.010000000000000002, 0.00010000000000000005, 0.00010000000000000005, 0.00010000000000000005, 0.00010000000000000005, 1.0000000000000006e-05, 1.0000000000000006e-05, 1.0000000000000006e-05];
    assert_lrs(&lrs(LrSchedule::MultiStep { milestones: vec![5, 2, 9, 5], gamma: 0.1 }, 0.1, 12), &want, "multistep");
    // Milestone 0 applies at construction, as in torch.
    assert_eq!(LrSchedule::MultiStep { milestones: vec![0], gamma: 0.5 }.lr_at(1.0, 0).unwrap(), 0.5);
    // CosineAnnealingLR(T_max=4, eta_min=1e-3): eta + (lr - eta)(1 + cos(πe/T))/(1 + cos(π(e-1)/T)),
    // reaching eta_min at e = 4 and rising again after (torch's periodic recurrence).
    #[rustfmt::skip]
    let want = [0.1, 0.0855017856687341, 0.0505, 0.0154982143312659, 0.001, 0.015498214331265896, 0.05050000000000001, 0.08550178566873413, 0.10000000000000003, 0.08550178566873413, 0.05050000000000003, 0.015498214331265945, 0.001, 0.015498214331265896];
    assert_lrs(&lrs(LrSchedule::CosineAnnealing { t_max: 4, eta_min: 1e-3 }, 0.1, 14), &want, "cosine T=4");
    // Closed form check by hand: epoch 2 of T_max 4 is the midpoint (0.1 + 0.001) / 2 = 0.0505.
    #[rustfmt::skip]
    let want = [0.1, 0.09755282581475769, 0.09045084971874738, 0.07938926261462367, 0.06545084971874739, 0.05000000000000001, 0.03454915028125264, 0.020610737385376353, 0.009549150281252635, 0.002447174185242324, 0.0, 0.0024471741852423235];
    assert_lrs(&lrs(LrSchedule::CosineAnnealing { t_max: 10, eta_min: 0.0 }, 0.1, 12), &want, "cosine T=10");
    assert_eq!(lrs(LrSchedule::Constant, 0.3, 3), [0.3, 0.3, 0.3]);
}

#[test]
fn one_cycle_matches_torch() {
    // OneCycleLR(max_lr=0.01, total_steps=10): initial 0.01/25 = 4e-4, min 4e-4/1e4 = 4e-8;
    // phase 1 ends at 0.3·10 - 1 = 2, cos-annealed 4e-4 -> 0.01, then 0.01 -> 4e-8 until step 9.
    let s = LrSchedule::OneCycle(OneCycleConfig::new(0.01, 10));
    #[rustfmt::skip]
    let want = [0.0003999999999999993, 0.0052, 0.01, 0.009504846320134737, 0.008117456539497631, 0.0061126202193628925, 0.003887419780637108, 0.00188258346050237, 0.0004951936798652628, 4e-08, 0.0004951936798652623];
    assert_lrs(&lrs(s.clone(), 123.0, 11), &want, "one cycle (optimizer lr ignored)");
    // Adam beta1 cycles 0.95 -> 0.85 -> 0.95 (cycle_momentum).
    #[rustfmt::skip]
    let beta1 = [0.95, 0.8999999999999999, 0.85, 0.854951556604879, 0.8688255099070633, 0.8888739533021842, 0.9111260466978157, 0.9311744900929366, 0.945048443395121, 0.95, 0.945048443395121];
    let got: Vec<f64> = (0..11).map(|e| s.momentum_at(e).unwrap().unwrap()).collect();
    assert_lrs(&got, &beta1, "one cycle beta1");
    assert!(matches!(s.lr_at(0.1, 11), Err(ScheduleError::PastEnd { step: 11, total_steps: 10 })));

    // three_phase, linear, pct_start 0.25.
    let s = LrSchedule::OneCycle(OneCycleConfig { anneal_strategy: Anneal::Linear, three_phase: true, pct_start: 0.25, ..OneCycleConfig::new(0.01, 10) });
    #[rustfmt::skip]
    let want = [0.0004, 0.0068000000000000005, 0.0068000000000000005, 0.0003999999999999993, 0.00033334, 0.00026668000000000004, 0.00020002, 0.00013336, 6.67e-05, 3.999999999997929e-08, -6.662000000000004e-05];
    assert_lrs(&lrs(s, 0.1, 11), &want, "one cycle three-phase linear");

    // cyto_dl's MAE config: max_lr, epochs=max_epochs (100), steps_per_epoch=1, pct_start=0.1.
    let c = OneCycleConfig { pct_start: 0.1, ..OneCycleConfig::from_epochs(0.001, 100, 1).unwrap() };
    let sched = Scheduler::new(LrSchedule::OneCycle(c.clone()), 1.0).unwrap();
    let got: Vec<f64> = [0, 5, 9, 10, 50, 99, 100].iter().map(|&e| sched.lr_at(e).unwrap()).collect();
    #[rustfmt::skip]
    let want = [3.9999999999999996e-05, 0.0006033511252801266, 0.001, 0.0009996954147278938, 0.0005695882721338308, 4e-09, 3.085852721061571e-07];
    assert_lrs(&got, &want, "one cycle 100 epochs");
    // With 10 epochs phase 1 has zero length (0.1·10 - 1 = 0): torch's constructor raises
    // ZeroDivisionError; so does ours.
    let c10 = OneCycleConfig { pct_start: 0.1, ..OneCycleConfig::from_epochs(0.001, 10, 1).unwrap() };
    assert!(matches!(Scheduler::new(LrSchedule::OneCycle(c10), 1.0), Err(ScheduleError::ZeroLengthPhase { .. })));
}

#[test]
fn scheduler_state_is_the_epoch() {
    let s = LrSchedule::Exponential { gamma: 0.9 };
    let mut a = Scheduler::new(s.clone(), 0.1).unwrap();
    for _ in 0..3 {
        a.step().unwrap();
    }
    assert_eq!(a.state(), SchedulerState { epoch: 3 });
    let mut b = Scheduler::new(s, 0.1).unwrap();
    b.load_state(a.state());
    assert_eq!(a.step().unwrap(), b.step().unwrap());
    assert_eq!(b.lr().unwrap(), b.lr_at(4).unwrap());
    // 0.1 · 0.9⁴, as four multiplications.
    assert_eq!(b.lr().unwrap(), 0.1 * 0.9 * 0.9 * 0.9 * 0.9);

    let err = |s: LrSchedule| match Scheduler::new(s, 0.1) {
        Err(ScheduleError::InvalidParameter { param, .. }) => param,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(err(LrSchedule::Step { step_size: 0, gamma: 0.5 }), "step_size");
    assert_eq!(err(LrSchedule::CosineAnnealing { t_max: 0, eta_min: 0.0 }), "T_max");
    assert_eq!(err(LrSchedule::Exponential { gamma: f64::INFINITY }), "gamma");
    assert_eq!(err(LrSchedule::OneCycle(OneCycleConfig { pct_start: 1.5, ..OneCycleConfig::new(0.1, 10) })), "pct_start");
    assert_eq!(err(LrSchedule::OneCycle(OneCycleConfig::new(0.1, 0))), "total_steps");
    assert!(matches!(Scheduler::new(LrSchedule::Constant, -1.0), Err(ScheduleError::InvalidParameter { param: "lr", .. })));
    assert!(matches!(OneCycleConfig::from_epochs(0.1, 0, 1), Err(ScheduleError::InvalidParameter { param: "epochs", .. })));
}

#[test]
fn one_cycle_momentum_drives_the_optimizer() {
    // OneCycle + AdamW as the MAE configs use it: beta1 follows momentum_at each epoch.
    let sched = Scheduler::new(LrSchedule::OneCycle(OneCycleConfig::new(0.01, 10)), 0.001).unwrap();
    let mut opt = Optimizer::<B>::new(OptimizerConfig::AdamW(AdamWConfig::default())).unwrap();
    let m = sched.momentum_at(2).unwrap().unwrap();
    opt.set_momentum(m).unwrap();
    match opt.config() {
        OptimizerConfig::AdamW(c) => assert_eq!(c.betas.0, 0.85),
        other => panic!("{other:?}"),
    }
    assert!(matches!(opt.set_momentum(1.5), Err(OptimError::InvalidParameter { param: "betas", .. })));
}
