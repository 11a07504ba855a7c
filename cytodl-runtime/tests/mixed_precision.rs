//! fp16 mixed precision needs loss scaling: a convolution trained under fp16 autocast on a
//! loss with small gradients learns nothing without the scaler (its fp16 output gradients flush
//! to zero) and learns like f32 with it. Runs on the CPU backend's fp16 kernels; the GPU backends
//! run the same autocast and scaler code (`scripts/gpu_check.sh` trains with `16-mixed` on CUDA).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{FloatDType, Tensor};
use cytodl_runtime::backend::{Cpu, CpuTrain};
use cytodl_runtime::nn::{autocast, conv, Init};
use cytodl_runtime::optim::LossScaler;

#[derive(Module, Debug)]
struct OneConv<B: burn::tensor::backend::Backend> {
    weight: Param<Tensor<B, 5>>,
}

impl OneConv<CpuTrain> {
    fn forward(&self, x: Tensor<CpuTrain, 5>) -> Tensor<CpuTrain, 5> {
        autocast::conv(x, self.weight.val(), None, |x, w, b| conv::conv3d(x, w, b, ConvOptions::new([1; 3], [1; 3], [1; 3], 1)))
    }
}

/// A loss whose gradients with respect to the convolution's output are ~1e-9 per voxel: a
/// mean squared error over 8x32x32 voxels, weighted by 1e-5 (as a small auxiliary loss weight
/// or a large patch makes them).
fn loss(model: &OneConv<CpuTrain>, x: &Tensor<CpuTrain, 5>, target: &Tensor<CpuTrain, 5>) -> Tensor<CpuTrain, 1> {
    (model.forward(x.clone()) - target.clone()).powi_scalar(2).mean().mul_scalar(1e-5)
}

/// `steps` of SGD under `dtype` autocast, with or without loss scaling; the final f32 loss and
/// the first step's weight gradient.
fn train(dtype: Option<FloatDType>, scaling: bool, steps: usize) -> (f64, Vec<f32>) {
    let device = Default::default();
    let init = Init::new(7);
    let x = init.at("x").normal::<CpuTrain, 5>([1, 4, 8, 32, 32], 0.0, 1.0, &device);
    let true_w = init.at("true").normal::<CpuTrain, 5>([4, 4, 3, 3, 3], 0.0, 0.2, &device);
    let target = conv::conv3d(x.clone(), true_w, None, ConvOptions::new([1; 3], [1; 3], [1; 3], 1)).detach();
    let mut model = OneConv { weight: Param::from_tensor(init.at("w").normal::<CpuTrain, 5>([4, 4, 3, 3, 3], 0.0, 0.2, &device)) };
    let mut scaler = LossScaler::default();
    let mut first_grad = Vec::new();
    let _autocast = autocast::enable(dtype);
    for _ in 0..steps {
        let l = loss(&model, &x, &target);
        let l = if scaling { scaler.scale_loss(l) } else { l };
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let grads = if scaling { scaler.unscale::<CpuTrain, _>(&model, grads).expect("no overflow at this scale") } else { grads };
        let g: Tensor<Cpu, 5> = grads.get(model.weight.id).expect("a weight gradient");
        if first_grad.is_empty() {
            first_grad = g.clone().into_data().to_vec().unwrap();
        }
        // Plain SGD with a learning rate matched to the 1e-5 loss weight.
        let w = model.weight.val().inner() - g.mul_scalar(2e4);
        model = OneConv { weight: Param::from_tensor(Tensor::from_inner(w).require_grad()) };
    }
    drop(_autocast);
    let final_loss = loss(&model, &x, &target).into_scalar() as f64;
    (final_loss, first_grad)
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(p, q)| (*p as f64) * (*q as f64)).sum::<f64>() / (norm(a) * norm(b))
}

#[test]
fn fp16_gradients_underflow_without_loss_scaling_and_train_with_it() {
    let steps = 20;
    let (start, _) = train(None, false, 0);
    let (f32_loss, g32) = train(None, false, steps);
    let (unscaled_loss, g16) = train(Some(FloatDType::F16), false, steps);
    let (scaled_loss, g16s) = train(Some(FloatDType::F16), true, steps);
    eprintln!("loss: start {start:.3e}, f32 {f32_loss:.3e}, fp16 unscaled {unscaled_loss:.3e}, fp16 scaled {scaled_loss:.3e}");
    eprintln!("first gradient norm: f32 {:.3e}, fp16 unscaled {:.3e}, fp16 scaled {:.3e}", norm(&g32), norm(&g16), norm(&g16s));

    assert!(f32_loss < 0.5 * start, "the f32 reference must learn: {start} -> {f32_loss}");
    // Without scaling the fp16 output gradients (~1e-9) are below fp16's smallest subnormal
    // (6e-8): the weight gradient is (almost) zero and the loss does not move.
    assert!(norm(&g16) < 0.01 * norm(&g32), "unscaled fp16 gradient norm {} vs f32 {}", norm(&g16), norm(&g32));
    assert!(unscaled_loss > 0.95 * start, "unscaled fp16 must not learn: {start} -> {unscaled_loss}");
    // With GradScaler's 2^16 the same gradients are representable: f32's direction and size
    // to fp16's precision, and the same progress.
    assert!(cosine(&g16s, &g32) > 0.999, "scaled fp16 gradient direction: cosine {}", cosine(&g16s, &g32));
    assert!((norm(&g16s) / norm(&g32) - 1.0).abs() < 0.01, "scaled fp16 gradient norm ratio {}", norm(&g16s) / norm(&g32));
    assert!(scaled_loss < 0.5 * start && (scaled_loss / f32_loss - 1.0).abs() < 0.05, "scaled fp16 must learn like f32: {scaled_loss} vs {f32_loss}");
}
