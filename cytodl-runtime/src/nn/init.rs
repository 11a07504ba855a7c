//! Seeded initial weights.
//!
//! burn's `Tensor::random` and its lazily initialised `Param`s draw from one process-global RNG
//! per backend: two models built in one process (tests run in parallel threads) race on it, and
//! a parameter drawn at its first use depends on everything that ran before. Here every
//! parameter draws from its own stream, keyed by the run's seed and the parameter's path in the
//! model (`backbone.input_block.conv1.conv.weight`): a model's initial weights depend only on the
//! seed and the architecture — not on construction order, the thread, or what ran earlier — and
//! adding a head leaves the backbone's weights as they were.
//!
//! Values are drawn on the host in `f64` and uploaded once, so every backend gets the same
//! initial weights for the same seed. Parameter ids come from the same key: burn draws them at
//! random, which made two runs' checkpoints (which store the ids) differ byte for byte.

use burn::module::{Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::rng::Rng;

/// The source of a model's initial weights: a seed and a path into the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    key: u64,
    path: String,
}

/// FNV-1a over a path segment, mixed into the parent's key (stable across platforms and versions).
fn mix(key: u64, segment: &str) -> u64 {
    let mut h = key ^ 0xcbf2_9ce4_8422_2325;
    for b in segment.bytes().chain([0xff]) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // One splitmix64 round, so that neighbouring names give unrelated keys.
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Init {
    /// The root of a model initialised from `seed`.
    pub fn new(seed: u64) -> Self {
        Init { key: mix(seed, "cytodl.init"), path: String::new() }
    }

    /// The sub-module or parameter `name` below this one.
    pub fn at(&self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        let path = if self.path.is_empty() { name.to_string() } else { format!("{}.{name}", self.path) };
        Init { key: mix(self.key, name), path }
    }

    /// Where in the model this stream is (for messages).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This parameter's random stream.
    pub fn rng(&self) -> Rng {
        Rng::seed_from(self.key)
    }

    /// A trainable parameter holding `value`, with this path's id.
    pub fn param<B: Backend, const D: usize>(&self, value: Tensor<B, D>) -> Param<Tensor<B, D>> {
        Param::initialized(ParamId::from(self.key), value.require_grad())
    }

    /// A parameter of independent `N(mean, std²)` values.
    pub fn normal_param<B: Backend, const D: usize>(&self, shape: [usize; D], mean: f64, std: f64, device: &B::Device) -> Param<Tensor<B, D>> {
        self.param(self.normal(shape, mean, std, device))
    }

    /// A parameter of independent values uniform in `[lo, hi)`.
    pub fn uniform_param<B: Backend, const D: usize>(&self, shape: [usize; D], lo: f64, hi: f64, device: &B::Device) -> Param<Tensor<B, D>> {
        self.param(self.uniform(shape, lo, hi, device))
    }

    /// A tensor of independent `N(mean, std²)` values.
    pub fn normal<B: Backend, const D: usize>(&self, shape: [usize; D], mean: f64, std: f64, device: &B::Device) -> Tensor<B, D> {
        let mut rng = self.rng();
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| (mean + std * rng.normal()) as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// A tensor of independent values uniform in `[lo, hi)`.
    pub fn uniform<B: Backend, const D: usize>(&self, shape: [usize; D], lo: f64, hi: f64, device: &B::Device) -> Tensor<B, D> {
        let mut rng = self.rng();
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.uniform_range(lo, hi) as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    fn values(t: Tensor<Cpu, 2>) -> Vec<f32> {
        t.into_data().into_vec::<f32>().expect("f32")
    }

    #[test]
    fn streams_depend_on_seed_and_path_only() {
        let device = Default::default();
        let a = Init::new(7).at("backbone").at("conv").normal::<Cpu, 2>([4, 5], 0.0, 1.0, &device);
        let b = Init::new(7).at("backbone").at("conv").normal::<Cpu, 2>([4, 5], 0.0, 1.0, &device);
        let other_seed = Init::new(8).at("backbone").at("conv").normal::<Cpu, 2>([4, 5], 0.0, 1.0, &device);
        let other_path = Init::new(7).at("backbone").at("conv2").normal::<Cpu, 2>([4, 5], 0.0, 1.0, &device);
        let (a, b) = (values(a), values(b));
        assert_eq!(a, b);
        assert_ne!(a, values(other_seed));
        assert_ne!(a, values(other_path));
        // "a.bc" and "ab.c" are different paths.
        assert_ne!(Init::new(1).at("a").at("bc").rng(), Init::new(1).at("ab").at("c").rng());
        assert_eq!(Init::new(1).at("a").at("bc").path(), "a.bc");
    }

    #[test]
    fn distributions_have_their_moments() {
        let device = Default::default();
        let n = values(Init::new(3).at("w").normal::<Cpu, 2>([100, 100], 0.5, 2.0, &device));
        let mean = n.iter().map(|v| *v as f64).sum::<f64>() / n.len() as f64;
        let var = n.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n.len() as f64;
        assert!((mean - 0.5).abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05, "mean {mean}, std {}", var.sqrt());
        let u = values(Init::new(3).at("u").uniform::<Cpu, 2>([100, 100], -0.25, 0.25, &device));
        assert!(u.iter().all(|v| (-0.25..0.25).contains(v)));
        let mean = u.iter().map(|v| *v as f64).sum::<f64>() / u.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
    }
}
