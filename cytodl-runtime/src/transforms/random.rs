//! Random dictionary transforms with MONAI's distributions and sharing rules.
//!
//! torch/numpy streams cannot be reproduced, so each transform documents what it draws, from
//! which distribution, and whether the draw is shared by all keys (MONAI's dictionary versions
//! share every draw across keys). `prob` is clamped to [0, 1] as MONAI does and is drawn first:
//! `rng.chance(prob)` (MONAI: `R.rand() < prob`); nothing else is drawn when it fails.
//! MONAI's `randint(lo, hi)` (hi exclusive) is `lo + rng.below(hi - lo)`; `uniform(lo, hi)` is
//! `rng.uniform_range(lo, hi)`.

use crate::array::Array;
use crate::rng::Rng;
use crate::sample::{Field, Sample};

use super::intensity::mean_std;
use super::spatial::{array_axis, fall_back, flip_axes, invalid, rot90_axes, spatial_shape, to_keys};
use super::{for_each_key, Transform, TransformError};

fn check_prob(prob: f64, transform: &'static str) -> Result<f64, TransformError> {
    if prob.is_nan() {
        return Err(invalid(transform, "prob is NaN"));
    }
    Ok(prob.clamp(0.0, 1.0))
}

/// `lo + below(hi - lo)`: numpy's `randint(lo, hi)`, `hi` exclusive, `hi > lo`.
fn randint(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    lo + rng.below((hi - lo) as u64) as i64
}

/// A (min, max) range from one value or a pair, MONAI-style.
fn range_of(v: &[f64], transform: &'static str, what: &str, single: impl Fn(f64) -> Result<(f64, f64), TransformError>) -> Result<(f64, f64), TransformError> {
    match v {
        [x] => single(*x),
        [a, b] => Ok((a.min(*b), a.max(*b))),
        _ => Err(invalid(transform, format!("{what} should be a number or a pair of numbers, got {v:?}"))),
    }
}

/// MONAI `RandFlipd(keys, prob=0.1, spatial_axis=None)`: one coin per sample; when it lands,
/// every key is flipped along `spatial_axis` (None = all spatial axes; negative counts from the
/// end). No other draw.
#[derive(Debug, Clone)]
pub struct RandFlipd {
    pub keys: Vec<String>,
    pub prob: f64,
    pub spatial_axis: Option<Vec<i64>>,
    pub allow_missing_keys: bool,
}

impl RandFlipd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        RandFlipd { keys: to_keys(keys), prob: 0.1, spatial_axis: None, allow_missing_keys: false }
    }
}

impl Transform for RandFlipd {
    fn name(&self) -> &'static str {
        "RandFlipd"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        let prob = check_prob(self.prob, name)?;
        let go = rng.chance(prob);
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            spatial_shape(a, name)?;
            let axes: Vec<usize> = match &self.spatial_axis {
                None => (1..a.ndim()).collect(),
                Some(v) => v.iter().map(|&s| array_axis(s, a.ndim(), name)).collect::<Result<_, _>>()?,
            };
            if go {
                *a = flip_axes(a, &axes);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `RandRotate90d(keys, prob=0.1, max_k=3, spatial_axes=(0, 1))`: one coin per sample,
/// then (when it lands) `k = randint(max_k) + 1`, uniform in `1..=max_k`; every key is rotated
/// by `k` quarter turns in the `spatial_axes` plane (torch.rot90, from the first axis towards the
/// second). MONAI draws `k` even when the coin fails; that changes no distribution.
#[derive(Debug, Clone)]
pub struct RandRotate90d {
    pub keys: Vec<String>,
    pub prob: f64,
    pub max_k: i64,
    pub spatial_axes: (i64, i64),
    pub allow_missing_keys: bool,
}

impl RandRotate90d {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        RandRotate90d { keys: to_keys(keys), prob: 0.1, max_k: 3, spatial_axes: (0, 1), allow_missing_keys: false }
    }
}

impl Transform for RandRotate90d {
    fn name(&self) -> &'static str {
        "RandRotate90d"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        let prob = check_prob(self.prob, name)?;
        if self.max_k < 1 {
            return Err(invalid(name, format!("max_k must be at least 1, got {}", self.max_k)));
        }
        let k = if rng.chance(prob) { Some(randint(rng, 0, self.max_k) + 1) } else { None };
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            spatial_shape(a, name)?;
            let ax0 = array_axis(self.spatial_axes.0, a.ndim(), name)?;
            let ax1 = array_axis(self.spatial_axes.1, a.ndim(), name)?;
            if ax0 == ax1 {
                return Err(invalid(name, format!("spatial_axes {:?} must name two different axes", self.spatial_axes)));
            }
            if let Some(k) = k {
                *a = rot90_axes(a, k, ax0, ax1);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// The intensity mapping of MONAI `RandHistogramShift` for given control points (`reference`
/// and `floating` in [0, 1]): both are scaled to the image's global [min, max] and voxels are
/// mapped piecewise-linearly, in f32 as MONAI's torch path does (searchsorted-left segment,
/// ends clamped). A constant image (or mismatched point lists) is returned unchanged.
pub fn histogram_shift(a: &mut Array, reference: &[f64], floating: &[f64]) {
    let (mn, mx) = (a.min(), a.max());
    if reference.len() < 2 || floating.len() != reference.len() || mn.partial_cmp(&mx) != Some(std::cmp::Ordering::Less) {
        return;
    }
    let range = mx - mn;
    let xp: Vec<f32> = reference.iter().map(|&r| r as f32 * range + mn).collect();
    let fp: Vec<f32> = floating.iter().map(|&r| r as f32 * range + mn).collect();
    let n = xp.len();
    let m: Vec<f32> = (0..n - 1).map(|i| (fp[i + 1] - fp[i]) / (xp[i + 1] - xp[i])).collect();
    let b: Vec<f32> = (0..n - 1).map(|i| fp[i] - m[i] * xp[i]).collect();
    for v in a.data_mut() {
        let x = *v;
        *v = if x < xp[0] {
            fp[0]
        } else if x > xp[n - 1] {
            fp[n - 1]
        } else {
            let i = xp.partition_point(|&p| p < x).saturating_sub(1).min(n - 2);
            m[i] * x + b[i]
        };
    }
}

/// MONAI `RandHistogramShiftd(keys, num_control_points=10, prob=0.1)`. One coin per sample;
/// when it lands: the number of control points `n = randint(min, max + 1)` (uniform in
/// `[min, max]`; one value = fixed), reference points `linspace(0, 1, n)`, and for
/// `i = 1..n-1` in order `floating[i] = uniform(floating[i-1], reference[i+1])` (the left
/// neighbour already moved). The same points serve every key; each key uses its own [min, max].
#[derive(Debug, Clone)]
pub struct RandHistogramShiftd {
    pub keys: Vec<String>,
    /// One count, or `[min, max]`; every value must be at least 3.
    pub num_control_points: Vec<i64>,
    pub prob: f64,
    pub allow_missing_keys: bool,
}

impl RandHistogramShiftd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        RandHistogramShiftd { keys: to_keys(keys), num_control_points: vec![10], prob: 0.1, allow_missing_keys: false }
    }
}

impl Transform for RandHistogramShiftd {
    fn name(&self) -> &'static str {
        "RandHistogramShiftd"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        let prob = check_prob(self.prob, name)?;
        let (lo, hi) = match self.num_control_points.as_slice() {
            [n] => (*n, *n),
            [a, b] => ((*a).min(*b), (*a).max(*b)),
            v => return Err(invalid(name, format!("num_control_points should be a number or a pair of numbers, got {v:?}"))),
        };
        if lo <= 2 {
            return Err(invalid(name, "num_control_points should be greater than or equal to 3"));
        }
        let points = if rng.chance(prob) {
            let n = randint(rng, lo, hi + 1) as usize;
            let reference: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
            let mut floating = reference.clone();
            for i in 1..n - 1 {
                floating[i] = rng.uniform_range(floating[i - 1], floating[i + 1]);
            }
            Some((reference, floating))
        } else {
            None
        };
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            if let Some((r, f)) = &points {
                histogram_shift(a, r, f);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `StdShiftIntensity`: `x += factor * std(x)` with the population std of the image or of
/// each channel (`channel_wise`), over nonzero voxels only and changing only those (`nonzero`).
pub fn std_shift(a: &mut Array, factor: f64, nonzero: bool, channel_wise: bool) {
    let shift = |d: &mut [f32]| {
        let keep = |v: f32| !nonzero || v != 0.0;
        if let Some((_, std)) = mean_std(d, keep) {
            let off = (factor * std) as f32;
            for v in d.iter_mut() {
                if keep(*v) {
                    *v += off;
                }
            }
        }
    };
    if channel_wise && a.ndim() >= 1 {
        for i in 0..a.shape()[0] {
            shift(a.slab_mut(i));
        }
    } else {
        shift(a.data_mut());
    }
}

/// MONAI `RandStdShiftIntensityd(keys, factors, prob=0.1, nonzero=False, channel_wise=False)`.
/// One coin per sample; when it lands, one `factor = uniform(min, max)` (a single number `f`
/// means `(-f, f)`) is shared by all keys (and all channels); see [`std_shift`].
#[derive(Debug, Clone)]
pub struct RandStdShiftIntensityd {
    pub keys: Vec<String>,
    pub factors: Vec<f64>,
    pub prob: f64,
    pub nonzero: bool,
    pub channel_wise: bool,
    pub allow_missing_keys: bool,
}

impl RandStdShiftIntensityd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, factors: Vec<f64>) -> Self {
        RandStdShiftIntensityd { keys: to_keys(keys), factors, prob: 0.1, nonzero: false, channel_wise: false, allow_missing_keys: false }
    }
}

impl Transform for RandStdShiftIntensityd {
    fn name(&self) -> &'static str {
        "RandStdShiftIntensityd"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        let prob = check_prob(self.prob, name)?;
        let (lo, hi) = range_of(&self.factors, name, "factors", |f| Ok((f.min(-f), f.max(-f))))?;
        let factor = if rng.chance(prob) { Some(rng.uniform_range(lo, hi)) } else { None };
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            if let Some(f) = factor {
                std_shift(a, f, self.nonzero, self.channel_wise);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `AdjustContrast` on the whole array (all channels together):
/// `((x - min) / (range + 1e-7))^gamma * range + min`; `invert_image` negates before and after;
/// `retain_stats` restores the input's mean and *unbiased* std (torch's `Tensor.std()` default).
pub fn adjust_contrast(a: &mut Array, gamma: f64, invert_image: bool, retain_stats: bool) {
    let d = a.data_mut();
    if d.is_empty() {
        return;
    }
    if invert_image {
        d.iter_mut().for_each(|v| *v = -*v);
    }
    let unbiased = |d: &[f32]| -> (f64, f64) {
        let n = d.len() as f64;
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / n;
        let ss: f64 = d.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        (mean, (ss / (n - 1.0)).sqrt())
    };
    let stats = if retain_stats { Some(unbiased(d)) } else { None };
    let mn = d.iter().copied().fold(f32::INFINITY, f32::min);
    let mx = d.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = mx - mn;
    let denom = range + 1e-7;
    let g = gamma as f32;
    for v in d.iter_mut() {
        *v = ((*v - mn) / denom).powf(g) * range + mn;
    }
    if let Some((mean0, sd0)) = stats {
        let (mean1, sd1) = unbiased(d);
        for v in d.iter_mut() {
            *v = (sd0 * ((*v as f64 - mean1) / (sd1 + 1e-8)) + mean0) as f32;
        }
    }
    if invert_image {
        d.iter_mut().for_each(|v| *v = -*v);
    }
}

/// MONAI `RandAdjustContrastd(keys, prob=0.1, gamma=(0.5, 4.5), invert_image=False,
/// retain_stats=False)`. One coin per sample; when it lands, one `gamma = uniform(min, max)`
/// (a single number `g > 0.5` means `(0.5, g)`) shared by all keys; see [`adjust_contrast`].
#[derive(Debug, Clone)]
pub struct RandAdjustContrastd {
    pub keys: Vec<String>,
    pub prob: f64,
    pub gamma: Vec<f64>,
    pub invert_image: bool,
    pub retain_stats: bool,
    pub allow_missing_keys: bool,
}

impl RandAdjustContrastd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        RandAdjustContrastd { keys: to_keys(keys), prob: 0.1, gamma: vec![0.5, 4.5], invert_image: false, retain_stats: false, allow_missing_keys: false }
    }
}

impl Transform for RandAdjustContrastd {
    fn name(&self) -> &'static str {
        "RandAdjustContrastd"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        let prob = check_prob(self.prob, name)?;
        let (lo, hi) = range_of(&self.gamma, name, "gamma", |g| {
            if g <= 0.5 {
                Err(invalid(name, format!("if gamma is a number, must greater than 0.5 and value is picked from (0.5, gamma), got {g}")))
            } else {
                Ok((0.5, g))
            }
        })?;
        let gamma = if rng.chance(prob) { Some(rng.uniform_range(lo, hi)) } else { None };
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            if let Some(g) = gamma {
                adjust_contrast(a, g, self.invert_image, self.retain_stats);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `RandGaussianNoised(keys, prob=0.1, mean=0.0, std=0.1, sample_std=True)`. One coin
/// per sample; when it lands, `std' = uniform(0, std)` if `sample_std` (else `std`), then one
/// noise field `normal(mean, std')` (f64, stored as f32) of the first present key's shape,
/// added to every key (keys must share that shape).
#[derive(Debug, Clone)]
pub struct RandGaussianNoised {
    pub keys: Vec<String>,
    pub prob: f64,
    pub mean: f64,
    pub std: f64,
    pub sample_std: bool,
    pub allow_missing_keys: bool,
}

impl RandGaussianNoised {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        RandGaussianNoised { keys: to_keys(keys), prob: 0.1, mean: 0.0, std: 0.1, sample_std: true, allow_missing_keys: false }
    }
}

impl Transform for RandGaussianNoised {
    fn name(&self) -> &'static str {
        "RandGaussianNoised"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        let prob = check_prob(self.prob, name)?;
        if self.std.is_nan() || self.std < 0.0 || !self.mean.is_finite() {
            return Err(invalid(name, format!("std must be >= 0 and mean finite, got std={} mean={}", self.std, self.mean)));
        }
        let first_shape = self.keys.iter().find_map(|k| match sample.fields.get(k) {
            Some(Field::Array(a)) => Some(a.shape().to_vec()),
            _ => None,
        });
        let noise = match (rng.chance(prob), first_shape) {
            (true, Some(shape)) => {
                let std = if self.sample_std { rng.uniform_range(0.0, self.std) } else { self.std };
                let n: usize = shape.iter().product();
                let v: Vec<f32> = (0..n).map(|_| (self.mean + std * rng.normal()) as f32).collect();
                Some((shape, v))
            }
            _ => None,
        };
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            if let Some((shape, v)) = &noise {
                if a.shape() != shape.as_slice() {
                    return Err(invalid(name, format!("keys must share one shape: {:?} vs {:?}", a.shape(), shape)));
                }
                a.data_mut().iter_mut().zip(v).for_each(|(x, n)| *x += n);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// Start and size per spatial axis.
type CropBox = (Vec<usize>, Vec<usize>);

/// MONAI `RandSpatialCropSamplesd(keys, roi_size, num_samples, max_roi_size=None,
/// random_center=True, random_size=False)`: returns `num_samples` copies of the sample, each
/// with every key cropped. Crops are drawn independently, in order; per crop: with
/// `random_size`, each axis' size is `randint(roi, max_roi + 1)` (max defaults to the image);
/// with `random_center`, each axis' start is `randint(0, size - roi + 1)` (0 when the roi
/// covers the axis), else MONAI's centre crop. As in MONAI, one sub-seed is drawn per sample
/// and every key replays the same stream from it, so keys of one shape get identical boxes.
/// Non-positive roi entries take the image size; rois larger than the image keep the axis.
#[derive(Debug, Clone)]
pub struct RandSpatialCropSamplesd {
    pub keys: Vec<String>,
    pub roi_size: Vec<i64>,
    pub num_samples: usize,
    pub max_roi_size: Option<Vec<i64>>,
    pub random_center: bool,
    pub random_size: bool,
    pub allow_missing_keys: bool,
}

impl RandSpatialCropSamplesd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, roi_size: Vec<i64>, num_samples: usize) -> Self {
        RandSpatialCropSamplesd {
            keys: to_keys(keys),
            roi_size,
            num_samples,
            max_roi_size: None,
            random_center: true,
            random_size: false,
            allow_missing_keys: false,
        }
    }

    /// The `num_samples` boxes (start, size per spatial axis) for one spatial shape.
    fn boxes(&self, sp: &[usize], rng: &mut Rng) -> Result<Vec<CropBox>, TransformError> {
        let name = "RandSpatialCropSamplesd";
        let roi = fall_back(&self.roi_size, sp, name, "roi_size")?;
        let max = match &self.max_roi_size {
            Some(m) => fall_back(m, sp, name, "max_roi_size")?,
            None => sp.to_vec(),
        };
        if self.random_size && roi.iter().zip(&max).any(|(r, m)| r > m) {
            return Err(invalid(name, format!("min ROI size: {roi:?} is larger than max ROI size: {max:?}")));
        }
        let mut out = Vec::with_capacity(self.num_samples);
        for _ in 0..self.num_samples {
            let size: Vec<usize> =
                if self.random_size { roi.iter().zip(&max).map(|(&r, &m)| randint(rng, r as i64, m as i64 + 1) as usize).collect() } else { roi.clone() };
            let (start, len): (Vec<usize>, Vec<usize>) = if self.random_center {
                sp.iter()
                    .zip(&size)
                    .map(|(&s, &p)| {
                        let p = if p == 0 { s } else { p.min(s) };
                        let st = if s > p { randint(rng, 0, (s - p + 1) as i64) as usize } else { 0 };
                        (st, p)
                    })
                    .unzip()
            } else {
                sp.iter()
                    .zip(&size)
                    .map(|(&s, &p)| {
                        let st = (s / 2).saturating_sub(p / 2);
                        (st, (st + p).min(s).saturating_sub(st))
                    })
                    .unzip()
            };
            out.push((start, len));
        }
        Ok(out)
    }
}

impl Transform for RandSpatialCropSamplesd {
    fn name(&self) -> &'static str {
        "RandSpatialCropSamplesd"
    }
    fn is_random(&self) -> bool {
        true
    }
    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        if self.num_samples < 1 {
            return Err(invalid(name, format!("num_samples must be positive, got {}", self.num_samples)));
        }
        let sub_seed = rng.next_u64();
        // Move the key arrays out (placeholders keep the field order), so the copies made for
        // each crop do not duplicate the full-size images.
        let mut skeleton = sample;
        let mut taken: Vec<(String, Array)> = Vec::new();
        for key in &self.keys {
            match skeleton.fields.get_mut(key) {
                Some(Field::Array(a)) => taken.push((key.clone(), std::mem::replace(a, Array::zeros(vec![0])))),
                Some(Field::Text(_)) => return Err(TransformError::NotLoaded { transform: name, key: key.clone() }),
                None if self.allow_missing_keys => {}
                None => return Err(TransformError::MissingKey { transform: name, key: key.clone() }),
            }
        }
        let mut out = vec![skeleton; self.num_samples];
        for (key, a) in &taken {
            let sp = spatial_shape(a, name)?;
            // Every key replays the same stream, as MONAI reseeds its cropper per key.
            let mut r = Rng::seed_from(sub_seed);
            for ((start, size), s) in self.boxes(sp, &mut r)?.into_iter().zip(out.iter_mut()) {
                let mut st = vec![0];
                st.extend(start);
                let mut sz = vec![a.shape()[0]];
                sz.extend(size);
                s.set_array(key, a.crop(&st, &sz));
            }
        }
        Ok(out)
    }
}
