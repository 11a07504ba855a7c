//! Training-time noise (dropout masks) from the run's own streams.
//!
//! burn's `Dropout` draws its mask from the backend's process-global RNG, which parallel tests
//! and later data-parallel device threads would race on. Here the trainer opens a
//! [`NoiseScope`] around each batch with a stream derived from (seed, epoch, batch): every mask
//! drawn on that thread while the scope lives comes from it, in the order the forward pass asks.
//! A resumed run reopens the same scopes, so its dropout masks equal an uninterrupted run's.
//!
//! Masks are drawn on the host and uploaded (one transfer per dropout layer per step on a GPU);
//! every experiment shipped so far trains with dropout 0, which costs nothing.

use std::cell::RefCell;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::rng::Rng;

thread_local! {
    static STREAM: RefCell<Option<Rng>> = const { RefCell::new(None) };
}

/// While alive, dropout on this thread draws from the scope's stream; dropping it restores
/// whatever stream was active before.
#[must_use = "the scope ends when this guard is dropped"]
pub struct NoiseScope {
    previous: Option<Rng>,
}

impl NoiseScope {
    pub fn enter(stream: Rng) -> Self {
        let previous = STREAM.with(|s| s.borrow_mut().replace(stream));
        NoiseScope { previous }
    }
}

impl Drop for NoiseScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        STREAM.with(|s| *s.borrow_mut() = previous);
    }
}

/// Runs `f` with this thread's stream (a fixed stream, seed 0, outside any scope: a forward
/// pass in training mode outside the trainer, such as `bench`, is still deterministic).
fn with_stream<T>(f: impl FnOnce(&mut Rng) -> T) -> T {
    STREAM.with(|s| f(s.borrow_mut().get_or_insert_with(|| Rng::seed_from(0))))
}

/// torch's `nn.Dropout(p)` in training mode: each element is zeroed with probability `p` and the
/// rest scaled by `1 / (1 - p)`. The identity when `p` is 0 or the backend records no gradients
/// (evaluation), as in burn's convention for train vs eval.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    let device = x.device();
    if prob <= 0.0 || !B::ad_enabled(&device) {
        return x;
    }
    let shape = x.dims();
    let n: usize = shape.iter().product();
    let keep = 1.0 - prob;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = with_stream(|rng| (0..n).map(|_| if rng.chance(keep) { scale } else { 0.0 }).collect());
    x * Tensor::from_data(TensorData::new(mask, shape), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, CpuTrain};

    fn masks(seed: u64) -> Vec<f32> {
        let device = Default::default();
        let _scope = NoiseScope::enter(Rng::seed_from(seed));
        let x = Tensor::<CpuTrain, 2>::ones([50, 40], &device);
        let a = dropout(x.clone(), 0.25).into_data().into_vec::<f32>().expect("f32");
        let b = dropout(x, 0.25).into_data().into_vec::<f32>().expect("f32");
        [a, b].concat()
    }

    #[test]
    fn masks_come_from_the_scope() {
        let a = masks(1);
        assert_eq!(a, masks(1), "same stream, same masks");
        assert_ne!(a, masks(2), "another stream, other masks");
        assert_ne!(a[..2000], a[2000..], "successive layers get different masks");
        let kept = a.iter().filter(|v| **v != 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.75).abs() < 0.03, "kept {kept}");
        assert!(a.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
    }

    #[test]
    fn identity_in_evaluation_and_at_zero() {
        let device = Default::default();
        let x = Tensor::<Cpu, 1>::ones([10], &device);
        assert_eq!(dropout(x.clone(), 0.5).into_data(), x.into_data());
        let x = Tensor::<CpuTrain, 1>::ones([10], &device);
        assert_eq!(dropout(x.clone(), 0.0).into_data(), x.into_data());
    }

    #[test]
    fn a_scope_restores_the_previous_stream() {
        let outer = NoiseScope::enter(Rng::seed_from(5));
        {
            let _inner = NoiseScope::enter(Rng::seed_from(6));
        }
        let after = with_stream(|r| r.next_u64());
        drop(outer);
        assert_eq!(after, Rng::seed_from(5).next_u64());
    }
}
