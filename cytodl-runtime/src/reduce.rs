//! Whole-tensor sums that add their elements in the same order on every run.
//!
//! burn-flex sums an f32 tensor of 4 Mi elements or more with rayon's adaptive `sum`, whose
//! grouping follows work stealing: the same loss could differ in its last bits from run to run.
//! Summing each row of the last axis first (sequential SIMD in burn-flex) and then the row sums
//! keeps every reduction under that size, so a run is bit-reproducible on the CPU.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The sum of every element, as a `[1]` tensor.
pub fn sum_all<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, 1> {
    if D < 2 {
        return t.sum();
    }
    let rows: Tensor<B, 2> = t.flatten(0, D - 2);
    rows.sum_dim(1).sum()
}

/// The mean of every element, as a `[1]` tensor.
pub fn mean_all<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, 1> {
    let n = t.shape().num_elements().max(1) as f64;
    sum_all(t).div_scalar(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::nn::Init;

    #[test]
    fn sums_match_burns_within_rounding() {
        let device = Default::default();
        let t = Init::new(4).normal::<Cpu, 3>([3, 5, 7], 1.0, 2.0, &device);
        let ours: f32 = sum_all(t.clone()).into_scalar();
        let burns: f32 = t.clone().sum().into_scalar();
        assert!((ours - burns).abs() < 1e-4, "{ours} vs {burns}");
        let ours: f32 = mean_all(t.clone()).into_scalar();
        let burns: f32 = t.mean().into_scalar();
        assert!((ours - burns).abs() < 1e-6, "{ours} vs {burns}");
        let v = Init::new(5).normal::<Cpu, 1>([9], 0.0, 1.0, &device);
        assert_eq!(sum_all(v.clone()).into_scalar(), v.sum().into_scalar());
    }

    /// Above burn-flex's parallel threshold (4 Mi elements) the result is the same bits every
    /// time, on a busy pool too.
    #[test]
    fn large_sums_repeat_exactly() {
        let device = Default::default();
        let t = Init::new(6).normal::<Cpu, 2>([1 << 12, 1 << 11], 0.0, 1.0, &device);
        let first: f32 = sum_all(t.clone()).into_scalar();
        for _ in 0..4 {
            let again: f32 = rayon::join(|| sum_all(t.clone()).into_scalar(), || sum_all(t.clone()).into_scalar()).0;
            assert_eq!(again.to_bits(), first.to_bits());
        }
    }
}
