//! Mixed precision (Lightning's `precision: bf16-mixed` / `16-mixed`) the way PyTorch's autocast
//! does it for the layers that dominate a U-Net: every convolution and transposed convolution
//! takes its input, weight and bias rounded to a 16-bit float type and returns f32. Weights
//! (the optimizer's "master" copy), normalisation, activations, losses and the optimizer stay
//! in f32; gradients flow back through the casts in f32.
//!
//! The compute type is set for the current thread with [`enable`], which returns a guard that
//! restores the previous setting (as `torch.autocast` is a context manager). Training and
//! inference run their forward passes on the calling thread, so the binary enables it once
//! around `train` / `test` / `predict`.

use std::cell::Cell;

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};

thread_local! {
    static COMPUTE: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// Restores the previous compute type when dropped.
#[must_use = "mixed precision ends when the guard is dropped"]
pub struct Guard {
    previous: Option<FloatDType>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        COMPUTE.with(|c| c.set(self.previous));
    }
}

/// Convolutions on this thread compute in `dtype` (`None`: f32) until the guard drops.
pub fn enable(dtype: Option<FloatDType>) -> Guard {
    Guard { previous: COMPUTE.with(|c| c.replace(dtype)) }
}

/// The 16-bit type convolutions compute in on this thread, if any.
pub fn compute_dtype() -> Option<FloatDType> {
    COMPUTE.with(Cell::get)
}

/// Runs a convolution-like `op` on operands cast to the compute type, and casts its result back
/// to f32; without mixed precision, runs it as is.
pub fn conv<B: Backend, const D: usize>(
    x: Tensor<B, 5>,
    weight: Tensor<B, 5>,
    bias: Option<Tensor<B, 1>>,
    op: impl FnOnce(Tensor<B, 5>, Tensor<B, 5>, Option<Tensor<B, 1>>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    match compute_dtype() {
        None => op(x, weight, bias),
        Some(dtype) => op(x.cast(dtype), weight.cast(dtype), bias.map(|b| b.cast(dtype))).cast(FloatDType::F32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuTrain;
    use crate::nn::Init;
    use crate::nn::{DynUNetConfig, PerLevel};
    use burn::tensor::DType;

    /// A DynUNet forward and backward under bf16 autocast: outputs and gradients are f32 and
    /// agree with the f32 run to bf16's precision (8 significant bits), and the guard restores
    /// f32 afterwards.
    #[test]
    fn bf16_dynunet_matches_f32_to_bf16_precision() {
        let device = Default::default();
        let k: Vec<PerLevel> = vec![3.into(); 3];
        let s: Vec<PerLevel> = vec![1.into(), 2.into(), 2.into()];
        let u: Vec<PerLevel> = vec![2.into(); 2];
        let net =
            DynUNetConfig::from_monai(3, 1, 2, &k, &s, &u, Some(&[8, 16, 32])).unwrap().with_res_block(true).init::<CpuTrain>(&device, &Init::new(0)).unwrap();
        let x = Init::new(1).normal::<CpuTrain, 5>([1, 1, 8, 16, 16], 0.0, 1.0, &device);
        let run = |dtype: Option<FloatDType>| {
            let _guard = enable(dtype);
            let y = net.forward(x.clone());
            let grads = y.clone().powi_scalar(2).mean().backward();
            let g = net.input_block.conv1.conv.weight.grad(&grads).map(|g| g.into_data());
            (y.inner(), g)
        };
        let (y32, g32) = run(None);
        let (y16, g16) = run(Some(FloatDType::BF16));
        assert_eq!(compute_dtype(), None, "the guard restores f32");
        assert_eq!(y16.dtype(), DType::F32);
        let (a, b) = (y32.into_data().to_vec::<f32>().unwrap(), y16.into_data().to_vec::<f32>().unwrap());
        let scale = cytodl_testkit::max_abs(&a);
        let diff = cytodl_testkit::max_abs_diff(&a, &b);
        assert!(diff > 0.0, "bf16 rounding must show: the casts did not happen");
        assert!(diff / scale < 0.05, "bf16 output off by {diff} (scale {scale})");
        let (g32, g16) = (g32.unwrap().to_vec::<f32>().unwrap(), g16.unwrap().to_vec::<f32>().unwrap());
        assert_eq!(g32.len(), g16.len());
        // Every conv's backward also runs in bf16, and a weight gradient is a long sum with
        // cancellations: compare directions (cosine) and sizes (norm ratio), not elements.
        let dot: f64 = g32.iter().zip(&g16).map(|(p, q)| (*p as f64) * (*q as f64)).sum();
        let norm = |g: &[f32]| g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let (n32, n16) = (norm(&g32), norm(&g16));
        let cosine = dot / (n32 * n16);
        assert!(cosine > 0.97, "bf16 gradient direction: cosine {cosine}");
        assert!((n16 / n32 - 1.0).abs() < 0.1, "bf16 gradient norm ratio {}", n16 / n32);
    }
}
