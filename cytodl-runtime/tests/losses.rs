//! Losses vs hand-computed values (small tensors, the formulas in the comments) and vs reference
//! numbers from torch 2.5.1 / MONAI 1.5.2 (computed in float64 for the fixed inputs below and
//! committed here; the tests never call Python). Gradients are checked through `Autodiff<Flex>`
//! against torch's float32 autograd.
//!
//! Oracle: `scripts/oracles/losses_monai.py` prints every expected number below; `--check` compares
//! them with this file.

use burn::tensor::{Tensor, TensorData};
use cytodl_runtime::backend::{Cpu, CpuTrain};
use cytodl_runtime::config::{Args, Component, FocalLoss, Lit, LossConfig};
use cytodl_runtime::loss::*;

type B = Cpu;

fn t5<Bk: burn::tensor::backend::Backend>(v: &[f64], shape: [usize; 5]) -> Tensor<Bk, 5> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

fn vals<Bk: burn::tensor::backend::Backend>(t: Tensor<Bk, 1>) -> Vec<f64> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w} (all: {got:?})");
    }
}

fn run(loss: &Loss, p: Tensor<B, 5>, t: Tensor<B, 5>) -> Vec<f64> {
    vals(loss.forward(p, t).unwrap())
}

// Fixed inputs shared with the reference computation:
// P1[i] = ((7 i) mod 11 - 5) / 3, shape [2, 1, 1, 2, 3];  T1[i] = 1 if (3 i) mod 5 < 2 else 0;
// M1[i] = 0 if i mod 4 == 0 else 1;  P3 = same formula, 24 values, shape [2, 3, 1, 2, 2];
// TI[i] = (5 i + 1) mod 3 (class indices), shape [2, 1, 1, 2, 2].
fn gen(n: usize) -> Vec<f64> {
    (0..n).map(|i| (((7 * i) % 11) as f64 - 5.0) / 3.0).collect()
}
fn p1<Bk: burn::tensor::backend::Backend>() -> Tensor<Bk, 5> {
    t5(&gen(12), [2, 1, 1, 2, 3])
}
fn t1<Bk: burn::tensor::backend::Backend>() -> Tensor<Bk, 5> {
    let v: Vec<f64> = (0..12).map(|i| if (3 * i) % 5 < 2 { 1.0 } else { 0.0 }).collect();
    t5(&v, [2, 1, 1, 2, 3])
}
fn m1<Bk: burn::tensor::backend::Backend>() -> Tensor<Bk, 5> {
    let v: Vec<f64> = (0..12).map(|i| if i % 4 == 0 { 0.0 } else { 1.0 }).collect();
    t5(&v, [2, 1, 1, 2, 3])
}
fn p3<Bk: burn::tensor::backend::Backend>() -> Tensor<Bk, 5> {
    t5(&gen(24), [2, 3, 1, 2, 2])
}
fn ti<Bk: burn::tensor::backend::Backend>() -> Tensor<Bk, 5> {
    let v: Vec<f64> = (0..8).map(|i| ((5 * i + 1) % 3) as f64).collect();
    t5(&v, [2, 1, 1, 2, 2])
}

/// TI one-hot encoded: shape [2, 3, 1, 2, 2].
fn onehot3<Bk: burn::tensor::backend::Backend>() -> Tensor<Bk, 5> {
    let idx: Vec<usize> = (0..8).map(|i| (5 * i + 1) % 3).collect();
    let mut v = vec![0.0; 24];
    for n in 0..2 {
        for s in 0..4 {
            v[n * 12 + idx[n * 4 + s] * 4 + s] = 1.0;
        }
    }
    t5(&v, [2, 3, 1, 2, 2])
}

const TOL: f64 = 2e-6;

#[test]
fn mse_and_l1_by_hand() {
    // pred [1, 2, 3, 4], target [0, 2, 5, 1]: diff [1, 0, -2, 3].
    let p = || t5::<B>(&[1.0, 2.0, 3.0, 4.0], [1, 1, 1, 2, 2]);
    let t = || t5::<B>(&[0.0, 2.0, 5.0, 1.0], [1, 1, 1, 2, 2]);
    // MSE: squares [1, 0, 4, 9] -> mean 3.5, sum 14.
    assert_close(&run(&Loss::Mse { reduction: Reduction::Mean }, p(), t()), &[3.5], 0.0, "mse mean");
    assert_close(&run(&Loss::Mse { reduction: Reduction::Sum }, p(), t()), &[14.0], 0.0, "mse sum");
    assert_close(&run(&Loss::Mse { reduction: Reduction::None }, p(), t()), &[1.0, 0.0, 4.0, 9.0], 0.0, "mse none");
    // L1: |diff| [1, 0, 2, 3] -> mean 1.5, sum 6.
    assert_close(&run(&Loss::L1 { reduction: Reduction::Mean }, p(), t()), &[1.5], 0.0, "l1 mean");
    assert_close(&run(&Loss::L1 { reduction: Reduction::Sum }, p(), t()), &[6.0], 0.0, "l1 sum");
    assert_close(&run(&Loss::L1 { reduction: Reduction::None }, p(), t()), &[1.0, 0.0, 2.0, 3.0], 0.0, "l1 none");
}

#[test]
fn bce_with_logits_by_hand_and_reference() {
    // l = (1 - t) x + (1 + (pw - 1) t) ln(1 + e^{-x})
    // x = [0, 2, -30, 30], t = [1, 0, 1, 0.5]
    let x = [0.0f64, 2.0, -30.0, 30.0];
    let t = [1.0f64, 0.0, 1.0, 0.5];
    let sp = |x: f64| (1.0 + (-x).exp()).ln();
    let want: Vec<f64> = x.iter().zip(&t).map(|(x, t)| (1.0 - t) * x + sp(*x)).collect();
    // by hand: [ln 2, 2 + ln(1 + e^-2), 30 + ~0, 15 + ~0]
    assert_close(&want, &[std::f64::consts::LN_2, 2.126928011042972, 30.0, 15.0], 1e-12, "formula");
    let loss = Loss::BceWithLogits(BceWithLogitsConfig { reduction: Reduction::None, pos_weight: None });
    let got = run(&loss, t5(&x, [1, 1, 1, 2, 2]), t5(&t, [1, 1, 1, 2, 2]));
    assert_close(&got, &want, 1e-6, "bce none (large |x| stays finite)");
    // pos_weight 3: the softplus term is weighted by 1 + 2 t.
    let want_pw: Vec<f64> = x.iter().zip(&t).map(|(x, t)| (1.0 - t) * x + (1.0 + 2.0 * t) * sp(*x)).collect();
    let loss = Loss::BceWithLogits(BceWithLogitsConfig { reduction: Reduction::None, pos_weight: Some(vec![3.0]) });
    let got = run(&loss, t5(&x, [1, 1, 1, 2, 2]), t5(&t, [1, 1, 1, 2, 2]));
    assert_close(&got, &want_pw, 1e-6, "bce pos_weight");

    // torch.nn.BCEWithLogitsLoss()(P1, T1) and with pos_weight=[3.0]
    let mean = Loss::BceWithLogits(BceWithLogitsConfig::default());
    assert_close(&run(&mean, p1(), t1()), &[1.073553130179886], TOL, "bce ref");
    let pw = Loss::BceWithLogits(BceWithLogitsConfig { reduction: Reduction::Mean, pos_weight: Some(vec![3.0]) });
    assert_close(&run(&pw, p1(), t1()), &[2.0403463277085785], TOL, "bce pw ref");
}

#[test]
fn dice_by_hand() {
    // No activation; pred [0.5, 1, 0, 0.25], target [1, 1, 0, 0]:
    // tp = 0.5 + 1 = 1.5, Σp = 1.75, Σg = 2
    // dice: 1 - (2*1.5 + 1e-5) / (1.75 + 2 + 1e-5)
    // squared: Σp² = 0.25 + 1 + 0.0625 = 1.3125 -> 1 - (3 + 1e-5) / (3.3125 + 1e-5)
    // jaccard: den = 2 (3.75 - 1.5) = 4.5 -> 1 - (3 + 1e-5) / (4.5 + 1e-5)
    let p = || t5::<B>(&[0.5, 1.0, 0.0, 0.25], [1, 1, 1, 2, 2]);
    let g = || t5::<B>(&[1.0, 1.0, 0.0, 0.0], [1, 1, 1, 2, 2]);
    let d = |cfg: DiceLossConfig| run(&Loss::Dice(cfg), p(), g());
    assert_close(&d(DiceLossConfig::default()), &[1.0 - 3.00001 / 3.75001], 1e-6, "dice");
    assert_close(&d(DiceLossConfig { squared_pred: true, ..Default::default() }), &[1.0 - 3.00001 / 3.31251], 1e-6, "dice squared");
    assert_close(&d(DiceLossConfig { jaccard: true, ..Default::default() }), &[1.0 - 3.00001 / 4.50001], 1e-6, "jaccard");
}

#[test]
fn dice_vs_monai() {
    let sig = || DiceLossConfig { activation: Activation::Sigmoid, ..Default::default() };
    let d = |cfg: DiceLossConfig, p: Tensor<B, 5>, t: Tensor<B, 5>| run(&Loss::Dice(cfg), p, t);
    // monai.losses.DiceLoss(sigmoid=True)(P1, T1) etc.
    assert_close(&d(sig(), p1(), t1()), &[0.6780735421476471], TOL, "sigmoid");
    assert_close(&d(DiceLossConfig { reduction: Reduction::None, ..sig() }, p1(), t1()), &[0.737825746439478, 0.6183213378558163], TOL, "sigmoid none");
    assert_close(&d(DiceLossConfig { batch: true, ..sig() }, p1(), t1()), &[0.6839275622797116], TOL, "batch");
    assert_close(&d(DiceLossConfig { squared_pred: true, ..sig() }, p1(), t1()), &[0.5855690174513659], TOL, "squared");
    assert_close(&d(DiceLossConfig { jaccard: true, ..sig() }, p1(), t1()), &[0.8066440629205792], TOL, "jaccard");
    assert_close(&d(DiceLossConfig { reduction: Reduction::Sum, ..sig() }, p1(), t1()), &[1.3561470842952943], TOL, "sum");
    // DiceLoss()(sigmoid(P1), T1) equals the sigmoid=True value.
    let sp1 = burn::tensor::activation::sigmoid(p1::<B>());
    assert_close(&d(DiceLossConfig::default(), sp1, t1()), &[0.6780735421476471], TOL, "no activation");

    let soft = || DiceLossConfig { activation: Activation::Softmax, to_onehot_y: true, ..Default::default() };
    assert_close(&d(soft(), p3(), ti()), &[0.7237126452718461], TOL, "softmax onehot");
    assert_close(&d(DiceLossConfig { include_background: false, ..soft() }, p3(), ti()), &[0.7706944352888409], TOL, "softmax no background");
    assert_close(
        &d(DiceLossConfig { include_background: false, reduction: Reduction::None, ..soft() }, p3(), ti()),
        &[0.5133792614568868, 0.846163367111713, 0.849924609592462, 0.8733105029943019],
        TOL,
        "softmax no background none ([N, C-1] flattened)",
    );
}

#[test]
fn dice_ce_vs_monai() {
    let sig = DiceCeLossConfig { dice: DiceLossConfig { activation: Activation::Sigmoid, ..Default::default() }, ..Default::default() };
    // DiceCELoss(sigmoid=True)(P1, T1) = Dice + BCEWithLogits = 0.67807354 + 1.07355313
    assert_close(&run(&Loss::DiceCe(sig.clone()), p1(), t1()), &[1.751626672327533], TOL, "sigmoid");
    let weighted = DiceCeLossConfig { dice: DiceLossConfig { reduction: Reduction::Sum, ..sig.dice.clone() }, lambda_dice: 0.3, lambda_ce: 2.0 };
    // 0.3 * Dice_sum + 2 * BCE_sum
    assert_close(&run(&Loss::DiceCe(weighted), p1(), t1()), &[26.172119249605853], TOL, "lambdas, sum");

    let soft = DiceCeLossConfig { dice: DiceLossConfig { activation: Activation::Softmax, to_onehot_y: true, ..Default::default() }, ..Default::default() };
    // Dice(softmax, one-hot) 0.72371265 + CrossEntropy(P3, TI) 1.34535567
    assert_close(&run(&Loss::DiceCe(soft), p3(), ti()), &[2.0690683127034237], TOL, "softmax index target");
    assert_close(&vals(cross_entropy_loss(p3::<B>(), ti(), Reduction::Mean).unwrap()), &[1.3453556674315774], TOL, "ce");
    // The same with a one-hot (probability) target and no to_onehot_y.
    let onehot: Tensor<B, 5> = onehot3();
    let soft_p = DiceCeLossConfig { dice: DiceLossConfig { activation: Activation::Softmax, ..Default::default() }, ..Default::default() };
    assert_close(&run(&Loss::DiceCe(soft_p), p3(), onehot), &[2.0690683127034237], TOL, "softmax one-hot target");
}

#[test]
fn masked_dice_and_tversky_vs_monai() {
    let sig = DiceLossConfig { activation: Activation::Sigmoid, ..Default::default() };
    let got = vals(Loss::MaskedDice(sig.clone()).forward_masked(p1::<B>(), t1(), Some(m1())).unwrap());
    // MaskedDiceLoss(sigmoid=True)(P1, T1, M1): masked voxels enter as sigmoid(0) = 0.5.
    assert_close(&got, &[0.7010493768134749], TOL, "masked dice");
    // Without a mask it is plain Dice (MONAI warns and does the same).
    assert_close(&run(&Loss::MaskedDice(sig), p1(), t1()), &[0.6780735421476471], TOL, "masked dice, no mask");

    let tv = |c: TverskyLossConfig, p, t| run(&Loss::Tversky(c), p, t);
    let sig = TverskyLossConfig { activation: Activation::Sigmoid, ..Default::default() };
    assert_close(&tv(sig.clone(), p1(), t1()), &[0.6780722685961105], TOL, "tversky");
    assert_close(&tv(TverskyLossConfig { alpha: 0.3, beta: 0.7, ..sig }, p1(), t1()), &[0.6656463013042144], TOL, "tversky a.3 b.7");
    let soft = TverskyLossConfig { activation: Activation::Softmax, to_onehot_y: true, include_background: false, alpha: 0.7, beta: 0.3, ..Default::default() };
    assert_close(&tv(soft, p3(), ti()), &[0.7676868040335393], TOL, "tversky softmax");
}

/// A FocalLoss built the way a config builds it: from its declaration's arguments (absent ones
/// take the declared defaults, MONAI's).
fn focal(args: &[(&str, Lit)]) -> Loss {
    let args = Args::new(args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
    let config = FocalLoss::from_args(&args).expect("FocalLoss arguments");
    Loss::try_from(&LossConfig::FocalLoss(config)).expect("FocalLoss")
}

#[test]
fn focal_vs_monai() {
    let (f, yes) = (Lit::Float, Lit::Bool(true));
    assert_close(&run(&focal(&[]), p1(), t1()), &[0.5594398379325867], TOL, "focal sigmoid");
    assert_close(&run(&focal(&[("gamma", f(0.0))]), p1(), t1()), &[1.073553204536438], TOL, "focal gamma 0 (= bce)");
    // gamma 0 is BCE with logits.
    let bce = run(&Loss::BceWithLogits(BceWithLogitsConfig::default()), p1(), t1());
    assert_close(&run(&focal(&[("gamma", f(0.0))]), p1(), t1()), &bce, 1e-6, "focal gamma 0 vs bce");
    let sum = focal(&[("alpha", f(0.25)), ("reduction", Lit::Str("sum".into()))]);
    assert_close(&run(&sum, p1(), t1()), &[0.5937256813049316], TOL, "focal alpha .25, sum");
    let weights = focal(&[("gamma", f(1.5)), ("weight", Lit::List(vec![f(1.0), f(2.0), f(0.5)]))]);
    assert_close(&run(&weights, p3(), onehot3()), &[0.44787463545799255], TOL, "focal sigmoid weights");
    let soft = [("use_softmax", yes.clone()), ("to_onehot_y", yes.clone())];
    assert_close(&run(&focal(&soft), p3(), ti()), &[0.27603262662887573], TOL, "focal softmax");
    let alpha = [soft.as_slice(), &[("alpha", f(0.75))]].concat();
    assert_close(&run(&focal(&alpha), p3(), ti()), &[0.18471872806549072], TOL, "focal softmax alpha");
    // Without channel 0, MONAI drops alpha; a single weight applies to every class.
    let no_bg = [alpha.as_slice(), &[("include_background", Lit::Bool(false)), ("weight", f(2.0)), ("reduction", Lit::Str("sum".into()))]].concat();
    assert_close(&run(&focal(&no_bg), p3(), ti()), &[1.3081220388412476], TOL, "focal softmax no background, weight, sum");

    // Gradients through Autodiff<Flex> against torch's float32 autograd.
    let g = grad_of(&focal(&[("alpha", f(0.25))]), p1(), t1(), None);
    #[rustfmt::skip]
    let want = [-0.021013755351305008, 0.03804485499858856, -0.012681618332862854, 0.06304126232862473, 0.027828464284539223, -0.0160048920661211, 0.056574270129203796, -0.006214308552443981, 0.0015745735727250576, 0.048014674335718155, -0.00927615538239479, 0.0007097219349816442];
    assert_close(&g, &want, 1e-5, "d Focal(alpha .25) / d pred");
    let g = grad_of(&focal(&soft), p3(), ti(), None);
    #[rustfmt::skip]
    let want = [0.0006974504794925451, -0.0211088377982378, 0.005158531945198774, 0.040933266282081604, -0.001670821220614016, 0.002516234526410699, 0.038116682320833206, -0.0423935204744339, 0.0009733703918755054, 0.018592599779367447, -0.043275218456983566, 0.0014602532610297203, -0.0211088377982378, 0.005158531945198774, 0.040933266282081604, -0.021108834072947502, 0.002516234526410699, 0.038116682320833206, -0.0423935204744339, 0.002516234992071986, 0.018592599779367447, -0.043275218456983566, 0.0014602532610297203, 0.018592599779367447];
    assert_close(&g, &want, 1e-5, "d Focal(softmax) / d pred");

    // Bad parameters are typed errors, whichever way the loss is built.
    let bad = FocalLoss::from_args(&Args::new([("alpha".to_string(), f(1.5))].into_iter().collect())).expect("args");
    assert!(matches!(Loss::try_from(&LossConfig::FocalLoss(bad)), Err(LossError::InvalidParameter { param: "alpha", .. })));
    let two = focal(&[("weight", Lit::List(vec![f(1.0), f(2.0)]))]);
    assert!(matches!(two.forward(p3::<B>(), onehot3()), Err(LossError::InvalidParameter { param: "weight", .. })));
}

#[test]
fn tversky_by_hand() {
    // pred [0.5, 1, 0, 0.25], target [1, 1, 0, 0]: tp = 1.5, fp = Σp(1-g) = 0.25,
    // fn = Σ(1-p)g = 0.5; alpha 0.3, beta 0.7: 1 - (1.5 + 1e-5) / (1.5 + 0.075 + 0.35 + 1e-5)
    let cfg = TverskyLossConfig { alpha: 0.3, beta: 0.7, ..Default::default() };
    let got = run(&Loss::Tversky(cfg), t5(&[0.5, 1.0, 0.0, 0.25], [1, 1, 1, 2, 2]), t5(&[1.0, 1.0, 0.0, 0.0], [1, 1, 1, 2, 2]));
    assert_close(&got, &[1.0 - 1.50001 / 1.92501], 1e-6, "tversky");
}

fn grad_of(loss: &Loss, p: Tensor<CpuTrain, 5>, t: Tensor<CpuTrain, 5>, m: Option<Tensor<CpuTrain, 5>>) -> Vec<f64> {
    let p = p.require_grad();
    let l = loss.forward_masked(p.clone(), t, m).unwrap();
    let grads = l.backward();
    let g = p.grad(&grads).expect("gradient reaches the prediction");
    vals(g.flatten::<1>(0, 4))
}

#[test]
fn gradients_flow_and_match_torch() {
    let sig = DiceCeLossConfig { dice: DiceLossConfig { activation: Activation::Sigmoid, ..Default::default() }, ..Default::default() };
    let g = grad_of(&Loss::DiceCe(sig), p1(), t1(), None);
    #[rustfmt::skip]
    let want = [-0.08993738144636154, 0.06008465215563774, -0.08834894001483917, 0.07308784127235413, 0.053995341062545776, -0.09011714160442352, 0.07250295579433441, -0.08374586701393127, 0.023937705904245377, 0.06872650235891342, -0.08947914838790894, 0.018543826416134834];
    assert_close(&g, &want, 1e-5, "d DiceCE(sigmoid) / d pred");

    let soft = DiceCeLossConfig { dice: DiceLossConfig { activation: Activation::Softmax, to_onehot_y: true, ..Default::default() }, ..Default::default() };
    let g = grad_of(&Loss::DiceCe(soft), p3(), ti(), None);
    #[rustfmt::skip]
    let want = [0.019822806119918823, -0.10769778490066528, 0.015560124069452286, 0.1135803833603859, -0.046287134289741516, 0.013344647362828255, 0.11456313729286194, -0.11738703399896622, 0.026464324444532394, 0.09435312449932098, -0.13012325763702393, 0.0038066410925239325, -0.09586337953805923, 0.015592903830111027, 0.12358063459396362, -0.09586337208747864, 0.0116068534553051, 0.11012032628059387, -0.12771134078502655, 0.011606856249272823, 0.08425652235746384, -0.12571322917938232, 0.004130694083869457, 0.08425652980804443];
    assert_close(&g, &want, 1e-5, "d DiceCE(softmax) / d pred");

    let masked = Loss::MaskedDice(DiceLossConfig { activation: Activation::Sigmoid, ..Default::default() });
    let g = grad_of(&masked, p1(), t1(), Some(m1()));
    #[rustfmt::skip]
    let want = [0.0, 0.005220795050263405, -0.03864491730928421, 0.003112337552011013, 0.0, -0.033896058797836304, 0.00582598801702261, -0.040209148079156876, 0.0, 0.00693834712728858, -0.03911258652806282, 0.004715733230113983];
    assert_close(&g, &want, 1e-5, "d MaskedDice / d pred (zero where masked)");

    // Closed forms, with p = p1, t = t1 and n = 12 elements: MSE (mean) 2(p - t)/n, L1 (sum)
    // sign(p - t), BCE with logits (mean) (sigmoid(p) - t)/n.
    let (p, t) = (vals(p1::<CpuTrain>().flatten::<1>(0, 4)), vals(t1::<CpuTrain>().flatten::<1>(0, 4)));
    let n = p.len() as f64;
    let closed: [(Loss, Vec<f64>); 3] = [
        (Loss::Mse { reduction: Reduction::Mean }, p.iter().zip(&t).map(|(p, t)| 2.0 * (p - t) / n).collect()),
        (Loss::L1 { reduction: Reduction::Sum }, p.iter().zip(&t).map(|(p, t)| (p - t).signum()).collect()),
        (Loss::BceWithLogits(BceWithLogitsConfig::default()), p.iter().zip(&t).map(|(p, t)| (1.0 / (1.0 + (-p).exp()) - t) / n).collect()),
    ];
    for (loss, want) in closed {
        assert_close(&grad_of(&loss, p1(), t1(), None), &want, 1e-5, &format!("d {loss:?} / d pred"));
    }
    // Tversky: central differences of the loss itself (f32: step 1e-2 keeps rounding below 1e-5).
    let tversky = Loss::Tversky(TverskyLossConfig { activation: Activation::Sigmoid, ..Default::default() });
    let g = grad_of(&tversky, p1(), t1(), None);
    let value = |x: &[f64]| vals(tversky.forward(t5::<CpuTrain>(x, [2, 1, 1, 2, 3]), t1()).unwrap())[0];
    let h = 1e-2;
    let numeric: Vec<f64> = (0..p.len())
        .map(|i| {
            let (mut up, mut down) = (p.clone(), p.clone());
            up[i] += h;
            down[i] -= h;
            (value(&up) - value(&down)) / (2.0 * h)
        })
        .collect();
    assert_close(&g, &numeric, 2e-3, "d Tversky / d pred vs central differences");
    assert!(g.iter().any(|v| v.abs() > 1e-3), "{g:?}");
}

#[test]
fn invalid_parameters_and_shapes_are_typed_errors() {
    let bad = Loss::DiceCe(DiceCeLossConfig { lambda_ce: -1.0, ..Default::default() });
    assert!(matches!(bad.validate(), Err(LossError::InvalidParameter { param: "lambda_ce", .. })));
    let bad = Loss::DiceCe(DiceCeLossConfig { dice: DiceLossConfig { reduction: Reduction::None, ..Default::default() }, ..Default::default() });
    assert!(matches!(bad.forward(p1::<B>(), t1()), Err(LossError::InvalidParameter { param: "reduction", .. })));
    let bad = Loss::Dice(DiceLossConfig { smooth_nr: f64::NAN, ..Default::default() });
    assert!(matches!(bad.validate(), Err(LossError::InvalidParameter { param: "smooth_nr", .. })));
    assert!(matches!(Reduction::parse("avg"), Err(LossError::InvalidParameter { param: "reduction", .. })));
    assert!(matches!(Activation::from_flags(true, true), Err(LossError::InvalidParameter { param: "sigmoid", .. })));
    let bad = Loss::BceWithLogits(BceWithLogitsConfig { reduction: Reduction::Mean, pos_weight: Some(vec![1.0, 2.0]) });
    assert!(matches!(bad.forward(p1::<B>(), t1()), Err(LossError::InvalidParameter { param: "pos_weight", .. })));

    // Shape mismatches.
    let mse = Loss::Mse { reduction: Reduction::Mean };
    assert!(matches!(mse.forward(p1::<B>(), p3()), Err(LossError::Shape { .. })));
    let dice = Loss::Dice(DiceLossConfig::default());
    assert!(matches!(dice.forward(p3::<B>(), ti()), Err(LossError::Shape { .. })), "class indices without to_onehot_y");
    let masked = Loss::MaskedDice(DiceLossConfig::default());
    let two_channel_mask = t5::<B>(&[1.0; 24], [2, 2, 1, 2, 3]);
    assert!(matches!(masked.forward_masked(p1::<B>(), t1(), Some(two_channel_mask)), Err(LossError::Shape { .. })));
}
