//! Metrics beyond the loss (`model.metrics`), computed as torchmetrics computes them: each
//! metric accumulates its state over the batches of an epoch (Lightning's `on_epoch=True`) and
//! is computed once at the end. Predictions and targets arrive as host arrays
//! `[N, C, (Z,) Y, X]`; the oracle is `tests/fixtures/metrics/make_metric_fixtures.py`.

use cytodl_schema::{MetricConfig, MetricKey};
use thiserror::Error;

use crate::array::Array;

/// Why a metric could not take a batch.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    #[error("prediction {pred:?} and target {target:?} differ in shape")]
    Shape { pred: Vec<usize>, target: Vec<usize> },
    #[error("expected images [N, C, Y, X] or volumes [N, C, Z, Y, X], found shape {0:?}")]
    Rank(Vec<usize>),
    #[error("the target has value {0}; a classification metric expects only 0 and 1")]
    NotBinary(f32),
    #[error("the SSIM window pads axis {axis} by {pad}, which needs more than {pad} voxels along it (the image has {size})")]
    TooSmall { axis: usize, pad: usize, size: usize },
    #[error("`{0}` averages a loss, not a prediction: it belongs under a `<split>/loss/...` key")]
    NotAComparison(String),
}

/// One metric of `model.metrics` that compares a head's prediction with its target (the
/// `<split>/loss/...` entries average losses, which the trainer logs anyway).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// the logged name, the key of `model.metrics` (`val/ssim/fluor`)
    pub name: String,
    /// the stage it is logged in: `train`, `val` or `test`
    pub stage: &'static str,
    /// the head whose prediction and target it compares
    pub head: String,
    pub config: MetricConfig,
}

impl MetricSpec {
    /// The comparing metrics of `model.metrics` (keys the checker accepted: a stage, a type and a
    /// head; loss averages are left out).
    pub fn from_config(metrics: Option<&cytodl_schema::Map<MetricConfig>>) -> Vec<MetricSpec> {
        metrics
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, c)| !c.averages_loss())
            .filter_map(|(name, config)| {
                let key = MetricKey::parse(name)?;
                Some(MetricSpec { name: name.clone(), stage: key.stage()?, head: key.part?.to_string(), config: config.clone() })
            })
            .collect()
    }
}

/// Confusion counts of a thresholded prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Confusion {
    tp: u64,
    fp: u64,
    fn_: u64,
}

/// Sums of a Pearson correlation (f64: an epoch of voxels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    yy: f64,
    xy: f64,
}

/// What a metric has accumulated so far in an epoch.
#[derive(Debug, Clone, PartialEq)]
enum State {
    F1(Confusion),
    Jaccard(Confusion),
    Psnr { sse: f64, n: u64, min_target: f64, max_target: f64 },
    Ssim { sum: f64, samples: u64 },
    Pearson(Moments),
    SquaredError { sum: f64, n: u64 },
    AbsoluteError { sum: f64, n: u64 },
}

/// One metric's epoch state.
#[derive(Debug, Clone, PartialEq)]
pub struct Accumulator {
    config: MetricConfig,
    state: State,
    updates: u64,
}

impl Accumulator {
    /// An empty state for `config`; a loss average is [`MetricError::NotAComparison`].
    pub fn new(config: &MetricConfig) -> Result<Self, MetricError> {
        let state = match config {
            MetricConfig::MeanMetric(_) => return Err(MetricError::NotAComparison("torchmetrics.MeanMetric".into())),
            MetricConfig::BinaryF1Score(_) | MetricConfig::F1Score(_) => State::F1(Confusion::default()),
            MetricConfig::BinaryJaccardIndex(_) | MetricConfig::JaccardIndex(_) => State::Jaccard(Confusion::default()),
            MetricConfig::PeakSignalNoiseRatio(_) => State::Psnr { sse: 0.0, n: 0, min_target: f64::INFINITY, max_target: f64::NEG_INFINITY },
            MetricConfig::StructuralSimilarityIndexMeasure(_) => State::Ssim { sum: 0.0, samples: 0 },
            MetricConfig::PearsonCorrCoef(_) => State::Pearson(Moments::default()),
            MetricConfig::MeanSquaredError(_) => State::SquaredError { sum: 0.0, n: 0 },
            MetricConfig::MeanAbsoluteError(_) => State::AbsoluteError { sum: 0.0, n: 0 },
        };
        Ok(Accumulator { config: config.clone(), state, updates: 0 })
    }

    /// Adds one batch: `pred` and `target` of the same shape `[N, C, (Z,) Y, X]`.
    pub fn update(&mut self, pred: &Array, target: &Array) -> Result<(), MetricError> {
        if pred.shape() != target.shape() {
            return Err(MetricError::Shape { pred: pred.shape().to_vec(), target: target.shape().to_vec() });
        }
        if !(4..=5).contains(&target.ndim()) {
            return Err(MetricError::Rank(target.shape().to_vec()));
        }
        let (p, t) = (pred.data(), target.data());
        match (&mut self.state, &self.config) {
            (State::F1(c), MetricConfig::BinaryF1Score(m)) => c.add(p, t, m.threshold)?,
            (State::F1(c), MetricConfig::F1Score(m)) => c.add(p, t, m.threshold)?,
            (State::Jaccard(c), MetricConfig::BinaryJaccardIndex(m)) => c.add(p, t, m.threshold)?,
            (State::Jaccard(c), MetricConfig::JaccardIndex(m)) => c.add(p, t, m.threshold)?,
            (State::Psnr { sse, n, min_target, max_target }, _) => {
                *sse += p.iter().zip(t).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>();
                *n += p.len() as u64;
                for v in t {
                    *min_target = min_target.min(f64::from(*v));
                    *max_target = max_target.max(f64::from(*v));
                }
            }
            (State::Ssim { sum, samples }, MetricConfig::StructuralSimilarityIndexMeasure(m)) => {
                for s in ssim_per_sample(m, pred, target)? {
                    *sum += s;
                    *samples += 1;
                }
            }
            (State::Pearson(m), _) => {
                for (a, b) in p.iter().zip(t) {
                    let (x, y) = (f64::from(*a), f64::from(*b));
                    m.n += 1.0;
                    m.x += x;
                    m.y += y;
                    m.xx += x * x;
                    m.yy += y * y;
                    m.xy += x * y;
                }
            }
            (State::SquaredError { sum, n }, _) => {
                *sum += p.iter().zip(t).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>();
                *n += p.len() as u64;
            }
            (State::AbsoluteError { sum, n }, _) => {
                *sum += p.iter().zip(t).map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs()).sum::<f64>();
                *n += p.len() as u64;
            }
            (state, config) => unreachable!("state {state:?} was made for {config:?}"),
        }
        self.updates += 1;
        Ok(())
    }

    /// The epoch's value; `None` before any batch.
    pub fn compute(&self) -> Option<f64> {
        if self.updates == 0 {
            return None;
        }
        let ratio = |num: f64, den: f64, zero: f64| if den == 0.0 { zero } else { num / den };
        Some(match (&self.state, &self.config) {
            (State::F1(c), MetricConfig::BinaryF1Score(m)) => ratio(2.0 * c.tp as f64, (2 * c.tp + c.fp + c.fn_) as f64, m.zero_division),
            (State::F1(c), MetricConfig::F1Score(m)) => ratio(2.0 * c.tp as f64, (2 * c.tp + c.fp + c.fn_) as f64, m.zero_division),
            (State::Jaccard(c), MetricConfig::BinaryJaccardIndex(m)) => ratio(c.tp as f64, (c.tp + c.fp + c.fn_) as f64, m.zero_division),
            (State::Jaccard(c), MetricConfig::JaccardIndex(m)) => ratio(c.tp as f64, (c.tp + c.fp + c.fn_) as f64, m.zero_division),
            (State::Psnr { sse, n, min_target, max_target }, MetricConfig::PeakSignalNoiseRatio(m)) => {
                let range = m.data_range.unwrap_or(max_target - min_target);
                (2.0 * range.ln() - (sse / *n as f64).ln()) * 10.0 / m.base.ln()
            }
            (State::Ssim { sum, samples }, _) => sum / *samples as f64,
            (State::Pearson(m), _) => {
                let cov = m.xy - m.x * m.y / m.n;
                let (vx, vy) = (m.xx - m.x * m.x / m.n, m.yy - m.y * m.y / m.n);
                cov / (vx * vy).sqrt()
            }
            (State::SquaredError { sum, n }, MetricConfig::MeanSquaredError(m)) => {
                let mse = sum / *n as f64;
                if m.squared {
                    mse
                } else {
                    mse.sqrt()
                }
            }
            (State::AbsoluteError { sum, n }, _) => sum / *n as f64,
            (state, config) => unreachable!("state {state:?} was made for {config:?}"),
        })
    }
}

impl Accumulator {
    /// The state as numbers (updates first), for adding the peers' states of a data-parallel
    /// run ([`Accumulator::merge`]); f64 holds every count exactly up to 2⁵³.
    pub fn to_numbers(&self) -> Vec<f64> {
        let mut v = vec![self.updates as f64];
        match &self.state {
            State::F1(c) | State::Jaccard(c) => v.extend([c.tp as f64, c.fp as f64, c.fn_ as f64]),
            State::Psnr { sse, n, min_target, max_target } => v.extend([*sse, *n as f64, *min_target, *max_target]),
            State::Ssim { sum, samples } => v.extend([*sum, *samples as f64]),
            State::Pearson(m) => v.extend([m.n, m.x, m.y, m.xx, m.yy, m.xy]),
            State::SquaredError { sum, n } | State::AbsoluteError { sum, n } => v.extend([*sum, *n as f64]),
        }
        v
    }

    /// Adds another peer's state ([`Accumulator::to_numbers`] of the same metric): sums add,
    /// PSNR's target range widens.
    pub fn merge(&mut self, other: &[f64]) {
        let Some((updates, o)) = other.split_first() else { return };
        let count = |x: f64| x.max(0.0) as u64;
        self.updates += count(*updates);
        match &mut self.state {
            State::F1(c) | State::Jaccard(c) if o.len() == 3 => {
                c.tp += count(o[0]);
                c.fp += count(o[1]);
                c.fn_ += count(o[2]);
            }
            State::Psnr { sse, n, min_target, max_target } if o.len() == 4 => {
                *sse += o[0];
                *n += count(o[1]);
                *min_target = min_target.min(o[2]);
                *max_target = max_target.max(o[3]);
            }
            State::Ssim { sum, samples } if o.len() == 2 => {
                *sum += o[0];
                *samples += count(o[1]);
            }
            State::Pearson(m) if o.len() == 6 => {
                m.n += o[0];
                m.x += o[1];
                m.y += o[2];
                m.xx += o[3];
                m.yy += o[4];
                m.xy += o[5];
            }
            State::SquaredError { sum, n } | State::AbsoluteError { sum, n } if o.len() == 2 => {
                *sum += o[0];
                *n += count(o[1]);
            }
            // Layouts differ only between different binaries; the trainer checks lengths first.
            _ => {}
        }
    }
}

impl Confusion {
    /// Counts one batch. As torchmetrics' binary metrics: a batch with any prediction outside
    /// [0, 1] is logits (sigmoid first); a voxel is foreground above `threshold`; the target must
    /// be 0 or 1.
    fn add(&mut self, pred: &[f32], target: &[f32], threshold: f64) -> Result<(), MetricError> {
        if let Some(v) = target.iter().find(|v| **v != 0.0 && **v != 1.0) {
            return Err(MetricError::NotBinary(*v));
        }
        let logits = pred.iter().any(|v| !(0.0..=1.0).contains(v));
        for (p, t) in pred.iter().zip(target) {
            let p = if logits { 1.0 / (1.0 + (-f64::from(*p)).exp()) } else { f64::from(*p) };
            match (p > threshold, *t == 1.0) {
                (true, true) => self.tp += 1,
                (true, false) => self.fp += 1,
                (false, true) => self.fn_ += 1,
                (false, false) => {}
            }
        }
        Ok(())
    }
}

/// torchmetrics' 1-D Gaussian window: `size` taps at `(1 - size) / 2 ..`, normalised.
fn gaussian(size: usize, sigma: f64) -> Vec<f64> {
    let g: Vec<f64> = (0..size).map(|i| (1.0 - size as f64) / 2.0 + i as f64).map(|d| (-(d / sigma).powi(2) / 2.0).exp()).collect();
    let total: f64 = g.iter().sum();
    g.into_iter().map(|v| v / total).collect()
}

/// A volume `[Z, Y, X]` of f64 (2-D images have Z = 1 and are never convolved along it).
#[derive(Debug, Clone)]
struct Volume {
    dims: [usize; 3],
    data: Vec<f64>,
}

impl Volume {
    fn at(&self, z: usize, y: usize, x: usize) -> f64 {
        self.data[(z * self.dims[1] + y) * self.dims[2] + x]
    }

    /// Reflect-padded by `pad[axis]` on both sides of each axis (torch's `reflect`: the edge
    /// voxel is not repeated).
    fn reflect_pad(&self, pad: [usize; 3]) -> Volume {
        let reflect = |i: isize, n: usize| -> usize {
            let n = n as isize;
            let i = if i < 0 { -i } else { i };
            (if i >= n { 2 * (n - 1) - i } else { i }) as usize
        };
        let dims = [self.dims[0] + 2 * pad[0], self.dims[1] + 2 * pad[1], self.dims[2] + 2 * pad[2]];
        let mut data = Vec::with_capacity(dims.iter().product());
        for z in 0..dims[0] {
            let sz = reflect(z as isize - pad[0] as isize, self.dims[0]);
            for y in 0..dims[1] {
                let sy = reflect(y as isize - pad[1] as isize, self.dims[1]);
                for x in 0..dims[2] {
                    data.push(self.at(sz, sy, reflect(x as isize - pad[2] as isize, self.dims[2])));
                }
            }
        }
        Volume { dims, data }
    }

    /// A "valid" correlation with `taps` along `axis` (the separable window, one axis at a time).
    fn correlate(&self, axis: usize, taps: &[f64]) -> Volume {
        let mut dims = self.dims;
        dims[axis] = self.dims[axis] + 1 - taps.len();
        let mut data = Vec::with_capacity(dims.iter().product());
        let stride = [self.dims[1] * self.dims[2], self.dims[2], 1][axis];
        for z in 0..dims[0] {
            for y in 0..dims[1] {
                for x in 0..dims[2] {
                    let base = (z * self.dims[1] + y) * self.dims[2] + x;
                    data.push(taps.iter().enumerate().map(|(k, w)| w * self.data[base + k * stride]).sum());
                }
            }
        }
        Volume { dims, data }
    }
}

/// Each sample's structural similarity, as torchmetrics' `_ssim_update`: the images
/// reflect-padded, five local means (of p, t, p², t², pt) under the window, the SSIM map over
/// every channel and position of the padded-then-windowed grid, averaged per sample.
fn ssim_per_sample(m: &cytodl_schema::StructuralSimilarityIndexMeasure, pred: &Array, target: &Array) -> Result<Vec<f64>, MetricError> {
    let shape = target.shape();
    let volume = shape.len() == 5;
    let (n, c) = (shape[0], shape[1]);
    let spatial: [usize; 3] = if volume { [shape[2], shape[3], shape[4]] } else { [1, shape[2], shape[3]] };
    let kernel_size = m.kernel_size.max(1) as usize;
    // torchmetrics sizes a Gaussian window from sigma (kernel_size is then only the padding of
    // a volume's last axis) and a uniform one from kernel_size.
    let window = if m.gaussian_kernel { 2 * (3.5 * m.sigma + 0.5) as usize + 1 } else { kernel_size };
    let taps = if m.gaussian_kernel { gaussian(window, m.sigma) } else { vec![1.0 / kernel_size as f64; kernel_size] };
    let half = (window - 1) / 2;
    let pad = if volume { [half, half, (kernel_size - 1) / 2] } else { [0, half, half] };
    for axis in 0..3 {
        if pad[axis] > 0 && pad[axis] >= spatial[axis] {
            return Err(MetricError::TooSmall { axis: axis + shape.len() - 3, pad: pad[axis], size: spatial[axis] });
        }
        if spatial[axis] + 2 * pad[axis] < window && (volume || axis > 0) {
            return Err(MetricError::TooSmall { axis: axis + shape.len() - 3, pad: pad[axis], size: spatial[axis] });
        }
    }
    let range = |a: &[f32]| {
        let (lo, hi) = a.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        f64::from(hi) - f64::from(lo)
    };
    let data_range = m.data_range.unwrap_or_else(|| range(pred.data()).max(range(target.data())));
    let (c1, c2) = ((m.k1 * data_range).powi(2), (m.k2 * data_range).powi(2));
    let voxels: usize = spatial.iter().product();
    let mut out = Vec::with_capacity(n);
    for sample in 0..n {
        let mut total = 0.0;
        let mut count = 0usize;
        for channel in 0..c {
            let offset = (sample * c + channel) * voxels;
            let take = |a: &Array, f: &dyn Fn(f64, f64) -> f64, b: &Array| Volume {
                dims: spatial,
                data: a.data()[offset..offset + voxels].iter().zip(&b.data()[offset..offset + voxels]).map(|(x, y)| f(f64::from(*x), f64::from(*y))).collect(),
            };
            let maps = [
                take(pred, &|x, _| x, target),
                take(pred, &|_, y| y, target),
                take(pred, &|x, _| x * x, target),
                take(pred, &|_, y| y * y, target),
                take(pred, &|x, y| x * y, target),
            ];
            let means: Vec<Volume> = maps
                .iter()
                .map(|v| {
                    let mut v = v.reflect_pad(pad);
                    for axis in if volume { 0..3 } else { 1..3 } {
                        v = v.correlate(axis, &taps);
                    }
                    v
                })
                .collect();
            for i in 0..means[0].data.len() {
                let (mp, mt) = (means[0].data[i], means[1].data[i]);
                let (mp2, mt2, mpt) = (mp * mp, mt * mt, mp * mt);
                let sp = (means[2].data[i] - mp2).max(0.0);
                let st = (means[3].data[i] - mt2).max(0.0);
                let spt = means[4].data[i] - mpt;
                total += ((2.0 * mpt + c1) * (2.0 * spt + c2)) / ((mp2 + mt2 + c1) * (sp + st + c2));
                count += 1;
            }
        }
        out.push(total / count.max(1) as f64);
    }
    Ok(out)
}

/// The metrics of one stage over one epoch, by logged name.
#[derive(Debug, Clone, Default)]
pub struct EpochMetrics {
    metrics: Vec<(MetricSpec, Accumulator)>,
}

impl EpochMetrics {
    /// Fresh states for the metrics of `specs` logged in `stage`.
    pub fn new(specs: &[MetricSpec], stage: &str) -> Result<Self, MetricError> {
        let metrics = specs.iter().filter(|s| s.stage == stage).map(|s| Accumulator::new(&s.config).map(|a| (s.clone(), a))).collect::<Result<_, _>>()?;
        Ok(EpochMetrics { metrics })
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The heads any metric reads.
    pub fn heads(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().map(|(s, _)| s.head.as_str())
    }

    /// Adds a batch: for each metric, `pair(head)` gives that head's (prediction, target), or
    /// `None` when the batch has no target for it.
    pub fn update(&mut self, mut pair: impl FnMut(&str) -> Option<(Array, Array)>) -> Result<(), (String, MetricError)> {
        let mut cache: Vec<(String, Option<(Array, Array)>)> = Vec::new();
        for (spec, acc) in &mut self.metrics {
            let i = match cache.iter().position(|(h, _)| *h == spec.head) {
                Some(i) => i,
                None => {
                    cache.push((spec.head.clone(), pair(&spec.head)));
                    cache.len() - 1
                }
            };
            if let Some((p, t)) = &cache[i].1 {
                acc.update(p, t).map_err(|e| (spec.name.clone(), e))?;
            }
        }
        Ok(())
    }

    /// Every metric's state as numbers, one after another ([`Accumulator::to_numbers`]).
    pub fn to_numbers(&self) -> Vec<f64> {
        self.metrics.iter().flat_map(|(_, a)| a.to_numbers()).collect()
    }

    /// Adds another peer's [`EpochMetrics::to_numbers`] (the same metrics, so the same layout).
    pub fn merge(&mut self, other: &[f64]) {
        let mut rest = other;
        for (_, acc) in &mut self.metrics {
            let n = acc.to_numbers().len();
            let (mine, tail) = rest.split_at(n.min(rest.len()));
            acc.merge(mine);
            rest = tail;
        }
    }

    /// Every metric's epoch value (metrics that saw no batch are left out).
    pub fn compute(&self) -> Vec<(String, f64)> {
        self.metrics.iter().filter_map(|(s, a)| a.compute().map(|v| (s.name.clone(), v))).collect()
    }
}

/// `pred` and `target` cut to their common spatial size, from the origin (cyto_dl's
/// `GANHead_resize._ensure_same_shape`, for a super-resolving head one voxel larger).
pub fn crop_to_common(pred: Array, target: Array) -> (Array, Array) {
    if pred.shape() == target.shape() || pred.ndim() != target.ndim() || pred.shape()[..2] != target.shape()[..2] {
        return (pred, target);
    }
    let common: Vec<usize> = pred.shape().iter().zip(target.shape()).map(|(a, b)| *a.min(b)).collect();
    let cut = |a: Array| -> Array {
        if a.shape() == common.as_slice() {
            return a;
        }
        let strides = a.strides();
        let total: usize = common.iter().product();
        let mut data = Vec::with_capacity(total);
        let mut index = vec![0usize; common.len()];
        for _ in 0..total {
            data.push(a.data()[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
            for axis in (0..common.len()).rev() {
                index[axis] += 1;
                if index[axis] < common[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        Array::new(common.clone(), data).unwrap_or(a)
    };
    (cut(pred), cut(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_window_is_torchmetrics() {
        // torchmetrics' docstring: _gaussian(3, 1) = [0.2741, 0.4519, 0.2741]
        let g = gaussian(3, 1.0);
        assert!((g[0] - 0.2741).abs() < 1e-4 && (g[1] - 0.4519).abs() < 1e-4 && (g[2] - 0.2741).abs() < 1e-4);
    }

    #[test]
    fn reflect_padding_skips_the_edge() {
        let v = Volume { dims: [1, 1, 4], data: vec![1.0, 2.0, 3.0, 4.0] };
        assert_eq!(v.reflect_pad([0, 0, 2]).data, vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn non_binary_targets_are_an_error() {
        let mut a = Accumulator::new(&MetricConfig::BinaryF1Score(cytodl_schema::BinaryF1Score { threshold: 0.5, zero_division: 0.0 })).unwrap();
        let p = Array::new(vec![1, 1, 2, 2], vec![0.1, 0.9, 0.2, 0.8]).unwrap();
        let t = Array::new(vec![1, 1, 2, 2], vec![0.0, 255.0, 0.0, 1.0]).unwrap();
        assert_eq!(a.update(&p, &t), Err(MetricError::NotBinary(255.0)));
        assert_eq!(a.compute(), None);
    }

    #[test]
    fn crops_to_the_common_size_from_the_origin() {
        let p = Array::new(vec![1, 1, 3, 3], (0..9).map(|v| v as f32).collect()).unwrap();
        let t = Array::new(vec![1, 1, 2, 2], vec![0.0; 4]).unwrap();
        let (p, t) = crop_to_common(p, t);
        assert_eq!(p.shape(), t.shape());
        assert_eq!(p.data(), &[0.0, 1.0, 3.0, 4.0]);
    }
}
