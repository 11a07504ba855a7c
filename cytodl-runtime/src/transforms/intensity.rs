//! Deterministic intensity transforms with MONAI's (and cyto_dl's `Clipd`) semantics.
//!
//! Statistics (mean, std, percentiles) are accumulated in f64; MONAI/torch use f32 reductions,
//! which differ by rounding only.

use crate::array::Array;
use crate::rng::Rng;
use crate::sample::Sample;

use super::spatial::{invalid, to_keys};
use super::{for_each_key, Transform, TransformError};

/// Percentiles (`q` in [0, 100]) as MONAI's `percentile` computes them: linear interpolation
/// between the neighbouring order statistics at rank `q/100 * (n-1)` (two-sided lerp, exact at
/// both ends). Up to 1e6 values MONAI calls torch.quantile with `q` cast to the image's f32
/// (the rank itself is then computed in double, as measured against torch); beyond that
/// np.percentile with `q` in f64. Any NaN makes every result NaN, as in torch.
/// `None` for an empty input.
pub fn percentiles(values: &[f32], qs: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    if values.iter().any(|v| v.is_nan()) {
        return Some(vec![f64::NAN; qs.len()]);
    }
    let mut v = values.to_vec();
    let n = v.len();
    let mut out = Vec::with_capacity(qs.len());
    for &q in qs {
        let q = if n <= 1_000_000 { (q / 100.0) as f32 as f64 } else { q / 100.0 };
        let rank = q * (n - 1) as f64;
        let lo = (rank.floor().max(0.0) as usize).min(n - 1);
        let hi = (rank.ceil().max(0.0) as usize).min(n - 1);
        let w = rank - lo as f64;
        let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f32::total_cmp);
        let a = a as f64;
        let b = if hi == lo { a } else { rest.iter().copied().fold(f32::INFINITY, f32::min) as f64 };
        out.push(if w < 0.5 { a + w * (b - a) } else { b - (b - a) * (1.0 - w) });
    }
    Some(out)
}

fn check_q(q: f64, transform: &'static str) -> Result<(), TransformError> {
    if !(0.0..=100.0).contains(&q) {
        return Err(invalid(transform, format!("percentiles must be in [0, 100], got {q}")));
    }
    Ok(())
}

/// torch.clamp with tensor bounds: `min(max(x, lo), hi)`, NaN stays NaN, `lo > hi` gives `hi`.
fn clamp(x: f32, lo: Option<f32>, hi: Option<f32>) -> f32 {
    if x.is_nan() {
        return x;
    }
    let mut y = x;
    if let Some(l) = lo {
        y = if y < l { l } else { y };
    }
    if let Some(h) = hi {
        y = if y > h { h } else { y };
    }
    y
}

/// Mean and population std (torch.std(unbiased=False)) of the values passing `keep`, in f64.
pub(crate) fn mean_std(values: &[f32], keep: impl Fn(f32) -> bool) -> Option<(f64, f64)> {
    let (mut n, mut s) = (0usize, 0.0f64);
    for &v in values {
        if keep(v) {
            n += 1;
            s += v as f64;
        }
    }
    if n == 0 {
        return None;
    }
    let mean = s / n as f64;
    let ss: f64 = values.iter().filter(|&&v| keep(v)).map(|&v| (v as f64 - mean).powi(2)).sum();
    Some((mean, (ss / n as f64).sqrt()))
}

/// MONAI `NormalizeIntensityd(keys, subtrahend=None, divisor=None, nonzero=False, channel_wise=False)`.
///
/// `(x - subtrahend) / divisor`, defaulting to the mean and the *population* std
/// (`torch.std(unbiased=False)`) of the image / channel; with `nonzero` only nonzero voxels are
/// used and changed (all-zero data is returned unchanged). A divisor of 0 becomes 1.
/// `subtrahend` / `divisor` take one value per channel with `channel_wise`, otherwise one value.
#[derive(Debug, Clone)]
pub struct NormalizeIntensityd {
    pub keys: Vec<String>,
    pub subtrahend: Option<Vec<f64>>,
    pub divisor: Option<Vec<f64>>,
    pub nonzero: bool,
    pub channel_wise: bool,
    pub allow_missing_keys: bool,
}

impl NormalizeIntensityd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        NormalizeIntensityd { keys: to_keys(keys), subtrahend: None, divisor: None, nonzero: false, channel_wise: false, allow_missing_keys: false }
    }
}

fn normalize_slice(data: &mut [f32], sub: Option<f64>, div: Option<f64>, nonzero: bool) {
    let keep = |v: f32| !nonzero || v != 0.0;
    let stats = if sub.is_none() || div.is_none() { mean_std(data, keep) } else { Some((0.0, 1.0)) };
    let Some((mean, std)) = stats else {
        return; // nothing selected (nonzero on all-zero data, or an empty array)
    };
    let sub = sub.unwrap_or(mean);
    let mut div = div.unwrap_or(std);
    if div == 0.0 {
        div = 1.0;
    }
    for v in data.iter_mut() {
        if keep(*v) {
            *v = ((*v as f64 - sub) / div) as f32;
        }
    }
}

impl Transform for NormalizeIntensityd {
    fn name(&self) -> &'static str {
        "NormalizeIntensityd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            if self.channel_wise {
                if a.ndim() < 1 {
                    return Err(invalid(name, "channel_wise needs a channel axis"));
                }
                let c = a.shape()[0];
                for (what, v) in [("subtrahend", &self.subtrahend), ("divisor", &self.divisor)] {
                    if let Some(v) = v {
                        if v.len() != c {
                            return Err(invalid(name, format!("img has {c} channels, but {what} has {} components", v.len())));
                        }
                    }
                }
                for i in 0..c {
                    let sub = self.subtrahend.as_ref().map(|v| v[i]);
                    let div = self.divisor.as_ref().map(|v| v[i]);
                    normalize_slice(a.slab_mut(i), sub, div, self.nonzero);
                }
            } else {
                let one = |v: &Option<Vec<f64>>, what: &str| -> Result<Option<f64>, TransformError> {
                    match v {
                        None => Ok(None),
                        Some(v) if v.len() == 1 => Ok(Some(v[0])),
                        Some(v) => Err(invalid(name, format!("{what} needs one value without channel_wise, got {}", v.len()))),
                    }
                };
                let (sub, div) = (one(&self.subtrahend, "subtrahend")?, one(&self.divisor, "divisor")?);
                normalize_slice(a.data_mut(), sub, div, self.nonzero);
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// The arithmetic of MONAI `ScaleIntensityRange`: `(x - a_min) / (a_max - a_min)`, then
/// `* (b_max - b_min) + b_min` when both are given, then clip to the given b bounds.
/// `a_min == a_max` gives `x - a_min (+ b_min)`, MONAI's divide-by-zero fallback.
pub fn scale_intensity_range(data: &mut [f32], a_min: f64, a_max: f64, b_min: Option<f64>, b_max: Option<f64>, clip: bool) {
    if a_max - a_min == 0.0 {
        let off = b_min.unwrap_or(0.0) - a_min;
        for v in data.iter_mut() {
            *v = (*v as f64 + off) as f32;
        }
        return;
    }
    let scale = 1.0 / (a_max - a_min);
    let (lo, hi) = (b_min.map(|v| v as f32), b_max.map(|v| v as f32));
    for v in data.iter_mut() {
        let mut x = (*v as f64 - a_min) * scale;
        if let (Some(b0), Some(b1)) = (b_min, b_max) {
            x = x * (b1 - b0) + b0;
        }
        let x = x as f32;
        *v = if clip { clamp(x, lo, hi) } else { x };
    }
}

/// MONAI `ScaleIntensityRanged(keys, a_min, a_max, b_min=None, b_max=None, clip=False)`.
#[derive(Debug, Clone)]
pub struct ScaleIntensityRanged {
    pub keys: Vec<String>,
    pub a_min: f64,
    pub a_max: f64,
    pub b_min: Option<f64>,
    pub b_max: Option<f64>,
    pub clip: bool,
    pub allow_missing_keys: bool,
}

impl ScaleIntensityRanged {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, a_min: f64, a_max: f64, b_min: Option<f64>, b_max: Option<f64>) -> Self {
        ScaleIntensityRanged { keys: to_keys(keys), a_min, a_max, b_min, b_max, clip: false, allow_missing_keys: false }
    }
}

impl Transform for ScaleIntensityRanged {
    fn name(&self) -> &'static str {
        "ScaleIntensityRanged"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        if self.clip && self.b_min.is_none() && self.b_max.is_none() && self.a_max != self.a_min {
            return Err(invalid(name, "clip=True needs b_min or b_max (torch.clamp needs a bound)"));
        }
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            scale_intensity_range(a.data_mut(), self.a_min, self.a_max, self.b_min, self.b_max, self.clip);
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `ScaleIntensityRangePercentilesd(keys, lower, upper, b_min, b_max, clip=False,
/// relative=False, channel_wise=False)`: `ScaleIntensityRange` from the `lower`/`upper`
/// percentiles (linear interpolation, see [`percentiles`]) of the whole image or each channel.
/// `relative` maps to the same percentiles of `[b_min, b_max]` instead of its ends.
#[derive(Debug, Clone)]
pub struct ScaleIntensityRangePercentilesd {
    pub keys: Vec<String>,
    pub lower: f64,
    pub upper: f64,
    pub b_min: Option<f64>,
    pub b_max: Option<f64>,
    pub clip: bool,
    pub relative: bool,
    pub channel_wise: bool,
    pub allow_missing_keys: bool,
}

impl ScaleIntensityRangePercentilesd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, lower: f64, upper: f64, b_min: Option<f64>, b_max: Option<f64>) -> Self {
        ScaleIntensityRangePercentilesd {
            keys: to_keys(keys),
            lower,
            upper,
            b_min,
            b_max,
            clip: false,
            relative: false,
            channel_wise: false,
            allow_missing_keys: false,
        }
    }

    fn scale(&self, data: &mut [f32], b_min: Option<f64>, b_max: Option<f64>) -> Result<(), TransformError> {
        let p = percentiles(data, &[self.lower, self.upper]).ok_or_else(|| invalid("ScaleIntensityRangePercentilesd", "percentile of an empty array"))?;
        scale_intensity_range(data, p[0], p[1], b_min, b_max, self.clip);
        Ok(())
    }
}

impl Transform for ScaleIntensityRangePercentilesd {
    fn name(&self) -> &'static str {
        "ScaleIntensityRangePercentilesd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        check_q(self.lower, name)?;
        check_q(self.upper, name)?;
        let (b_min, b_max) = if self.relative {
            let (Some(b0), Some(b1)) = (self.b_min, self.b_max) else {
                return Err(invalid(name, "If it is relative, b_min and b_max should not be None."));
            };
            (Some((b1 - b0) * (self.lower / 100.0) + b0), Some((b1 - b0) * (self.upper / 100.0) + b0))
        } else {
            (self.b_min, self.b_max)
        };
        if self.clip && b_min.is_none() && b_max.is_none() {
            return Err(invalid(name, "clip=True needs b_min or b_max (torch.clamp needs a bound)"));
        }
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            if self.channel_wise {
                if a.ndim() < 1 {
                    return Err(invalid(name, "channel_wise needs a channel axis"));
                }
                for i in 0..a.shape()[0] {
                    self.scale(a.slab_mut(i), b_min, b_max)?;
                }
                Ok(())
            } else {
                self.scale(a.data_mut(), b_min, b_max)
            }
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `ThresholdIntensityd(keys, threshold, above=True, cval=0)`: keeps values `> threshold`
/// (`< threshold` when `above=False`) and sets the rest (NaN included) to `cval`. The comparison
/// is in f32, as torch compares a float32 tensor with a Python scalar.
#[derive(Debug, Clone)]
pub struct ThresholdIntensityd {
    pub keys: Vec<String>,
    pub threshold: f64,
    pub above: bool,
    pub cval: f64,
    pub allow_missing_keys: bool,
}

impl ThresholdIntensityd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, threshold: f64) -> Self {
        ThresholdIntensityd { keys: to_keys(keys), threshold, above: true, cval: 0.0, allow_missing_keys: false }
    }
}

impl Transform for ThresholdIntensityd {
    fn name(&self) -> &'static str {
        "ThresholdIntensityd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let (t, c) = (self.threshold as f32, self.cval as f32);
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, self.name(), |a| {
            for v in a.data_mut() {
                let keep = if self.above { *v > t } else { *v < t };
                if !keep {
                    *v = c;
                }
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// cyto_dl `Clipd(keys, low=0.01, high=99.99, percentile=True, per_channel=True)`
/// (cyto_dl/image/transforms/clip.py): clamps to the `low`/`high` percentiles of each channel
/// (or of the whole array), or to `low`/`high` themselves when `percentile=False`.
#[derive(Debug, Clone)]
pub struct Clipd {
    pub keys: Vec<String>,
    pub low: f64,
    pub high: f64,
    pub percentile: bool,
    pub per_channel: bool,
    pub allow_missing_keys: bool,
}

impl Clipd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        Clipd { keys: to_keys(keys), low: 0.01, high: 99.99, percentile: true, per_channel: true, allow_missing_keys: false }
    }

    fn clip(&self, data: &mut [f32]) -> Result<(), TransformError> {
        let (lo, hi) = if self.percentile {
            let p = percentiles(data, &[self.low, self.high]).ok_or_else(|| invalid("Clipd", "percentile of an empty array"))?;
            (p[0], p[1])
        } else {
            (self.low, self.high)
        };
        let (lo, hi) = (lo as f32, hi as f32);
        for v in data.iter_mut() {
            *v = clamp(*v, Some(lo), Some(hi));
        }
        Ok(())
    }
}

impl Transform for Clipd {
    fn name(&self) -> &'static str {
        "Clipd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        if self.percentile {
            check_q(self.low, name)?;
            check_q(self.high, name)?;
        }
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a: &mut Array| {
            if self.per_channel && a.ndim() >= 1 {
                for i in 0..a.shape()[0] {
                    self.clip(a.slab_mut(i))?;
                }
                Ok(())
            } else {
                self.clip(a.data_mut())
            }
        })?;
        Ok(vec![sample])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_linearly() {
        let v: Vec<f32> = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        let p = percentiles(&v, &[0.0, 10.0, 50.0, 90.0, 100.0]).unwrap();
        assert_eq!(p.len(), 5);
        for (g, e) in p.iter().zip([1.0, 1.4, 3.0, 4.6, 5.0]) {
            assert!((g - e).abs() < 1e-6, "{g} vs {e}"); // q is cast to f32 as MONAI does
        }
        assert!(percentiles(&[], &[50.0]).is_none());
        assert!(percentiles(&[1.0, f32::NAN], &[50.0]).unwrap()[0].is_nan());
    }
}
