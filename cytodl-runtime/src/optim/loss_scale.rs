//! Dynamic loss scaling for fp16 mixed precision (Lightning's `precision: 16-mixed`, which wraps
//! PyTorch's `torch.cuda.amp.GradScaler` with its defaults).
//!
//! Under fp16 autocast a convolution's backward pass runs in fp16, whose smallest subnormal is
//! 6e-8: the small gradients of a segmentation loss flush to zero there and the network stops
//! learning. The scaler multiplies the loss by `scale` (2^16 at first) before the backward
//! pass, so gradients are computed `scale` times larger, and divides the f32 gradients by
//! `scale` before the optimizer (and gradient clipping) sees them. When a scaled gradient
//! overflows (inf or NaN anywhere), the optimizer step is skipped and the scale halves; after
//! `growth_interval` (2000) steps without overflow it doubles — GradScaler's rule, value for
//! value.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use super::clip::scale_grads;

/// GradScaler's state and settings (`init_scale`, `growth_factor`, `backoff_factor`,
/// `growth_interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    pub scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: u64,
    /// Consecutive steps without overflow since the scale last changed.
    growth_tracker: u64,
}

impl Default for LossScaler {
    /// PyTorch's defaults: `init_scale=2**16, growth_factor=2, backoff_factor=0.5,
    /// growth_interval=2000`.
    fn default() -> Self {
        LossScaler { scale: 65536.0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000, growth_tracker: 0 }
    }
}

impl LossScaler {
    /// `loss * scale`, the value to call `backward` on.
    pub fn scale_loss<B: AutodiffBackend>(&self, loss: Tensor<B, 1>) -> Tensor<B, 1> {
        loss.mul_scalar(self.scale)
    }

    /// The gradients of a scaled loss divided by `scale`, or `None` when any of them overflowed
    /// (the caller skips the optimizer step). Updates the scale either way, as
    /// `scaler.step(optimizer); scaler.update()` does.
    pub fn unscale<B: AutodiffBackend, M: AutodiffModule<B>>(&mut self, model: &M, grads: GradientsParams) -> Option<GradientsParams> {
        let finite = all_finite::<B, M>(model, &grads);
        // The gradients are divided by the scale they were computed with, before it changes.
        let unscaled = finite.then(|| scale_grads::<B, M>(model, grads, 1.0 / self.scale));
        self.update(finite);
        unscaled
    }

    /// GradScaler's `update`: back off after an overflow, grow after `growth_interval` clean
    /// steps in a row.
    pub fn update(&mut self, finite: bool) {
        if !finite {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
            return;
        }
        self.growth_tracker += 1;
        if self.growth_tracker == self.growth_interval {
            self.scale *= self.growth_factor;
            self.growth_tracker = 0;
        }
    }
}

/// `0 * g` summed per gradient: NaN exactly when `g` holds an inf or a NaN.
struct NonFiniteVisitor<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    probes: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for NonFiniteVisitor<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.probes.push(crate::reduce::sum_all(g.mul_scalar(0.0)));
        }
    }
}

/// Whether every gradient element is finite (one device-to-host read for all parameters).
pub fn all_finite<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: &GradientsParams) -> bool {
    let mut v = NonFiniteVisitor::<B> { grads, probes: Vec::new() };
    model.visit(&mut v);
    if v.probes.is_empty() {
        return true;
    }
    let probe: f64 = Tensor::cat(v.probes, 0).sum().into_scalar().elem();
    probe.is_finite()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuTrain;
    use burn::module::Module;
    use burn::tensor::TensorData;

    #[derive(Module, Debug)]
    struct Pair<B: burn::tensor::backend::Backend> {
        w: Param<Tensor<B, 1>>,
    }

    fn grads_of(model: &Pair<CpuTrain>, loss_factor: f32) -> GradientsParams {
        let loss = model.w.val().mul_scalar(loss_factor).sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    #[test]
    fn scale_halves_on_overflow_and_doubles_after_the_growth_interval() {
        let mut s = LossScaler { growth_interval: 3, ..LossScaler::default() };
        s.update(false);
        assert_eq!(s.scale, 32768.0);
        s.update(true);
        s.update(true);
        assert_eq!(s.scale, 32768.0);
        s.update(true);
        assert_eq!(s.scale, 65536.0);
        s.update(true);
        s.update(false);
        s.update(true);
        s.update(true);
        assert_eq!(s.scale, 32768.0, "an overflow restarts the count");
    }

    #[test]
    fn unscale_divides_finite_gradients_and_skips_overflowed_ones() {
        let device = Default::default();
        let model = Pair::<CpuTrain> { w: Param::from_tensor(Tensor::from_data(TensorData::from([1.0f32, 2.0]), &device)) };
        let mut s = LossScaler::default();
        let g = s.unscale::<CpuTrain, _>(&model, grads_of(&model, 3.0 * 65536.0)).expect("finite");
        let g: Vec<f32> = g.get::<burn::backend::Flex, 1>(model.w.id).unwrap().into_data().to_vec().unwrap();
        assert_eq!(g, vec![3.0, 3.0]);
        assert_eq!(s.scale, 65536.0);
        assert!(s.unscale::<CpuTrain, _>(&model, grads_of(&model, f32::INFINITY)).is_none());
        assert_eq!(s.scale, 32768.0);
    }
}
