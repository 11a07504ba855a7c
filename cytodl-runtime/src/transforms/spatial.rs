//! Spatial dictionary transforms with MONAI's semantics: channel handling, zoom, centre crop,
//! padding, plus the flip / rot90 / pad / crop kernels the random transforms reuse.
//!
//! All arrays are channel-first (`[C, spatial...]`); spatial axes are numbered from 0 after the
//! channel, as in MONAI.

use crate::array::{strides_of, Array};
use crate::rng::Rng;
use crate::sample::Sample;

use super::{for_each_key, Transform, TransformError};

/// Builds the `TransformError::Invalid` of a transform.
pub(crate) fn invalid(transform: &'static str, message: impl Into<String>) -> TransformError {
    TransformError::Invalid { transform, message: message.into() }
}

pub(crate) fn to_keys<I, S>(keys: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    keys.into_iter().map(Into::into).collect()
}

/// The spatial shape of a channel-first array (MONAI transforms need `[C, spatial...]`).
pub(crate) fn spatial_shape<'a>(a: &'a Array, transform: &'static str) -> Result<&'a [usize], TransformError> {
    if a.ndim() < 2 {
        return Err(invalid(transform, format!("expects a channel-first array [C, spatial...], got shape {:?}", a.shape())));
    }
    Ok(&a.shape()[1..])
}

/// MONAI's `ensure_tuple_rep`: one value is repeated for every spatial axis, otherwise one per axis.
pub(crate) fn per_axis<T: Copy + std::fmt::Debug>(values: &[T], nd: usize, transform: &'static str, what: &str) -> Result<Vec<T>, TransformError> {
    match values.len() {
        1 => Ok(vec![values[0]; nd]),
        n if n == nd => Ok(values.to_vec()),
        _ => Err(invalid(transform, format!("{what} {values:?} needs 1 or {nd} values for {nd} spatial dims"))),
    }
}

/// MONAI's `fall_back_tuple`: non-positive entries take the image's size on that axis.
pub(crate) fn fall_back(user: &[i64], spatial: &[usize], transform: &'static str, what: &str) -> Result<Vec<usize>, TransformError> {
    let v = per_axis(user, spatial.len(), transform, what)?;
    Ok(v.iter().zip(spatial).map(|(&u, &s)| if u > 0 { u as usize } else { s }).collect())
}

/// Maps a MONAI spatial axis (negative counts from the end) to the array axis (channel = 0).
pub(crate) fn array_axis(axis: i64, ndim: usize, transform: &'static str) -> Result<usize, TransformError> {
    // MONAI's map_spatial_axes: a<0 -> a % ndim (an array axis), else a+1.
    let n = ndim as i64;
    let ax = if axis < 0 { axis + n } else { axis + 1 };
    if ax < 1 || ax >= n {
        return Err(invalid(transform, format!("spatial axis {axis} is out of range for an array of shape [C, {} spatial dims]", ndim - 1)));
    }
    Ok(ax as usize)
}

// ---------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------

/// Padding modes: MONAI accepts numpy's and torch's names for the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Fill with a constant (`"constant"`, `"zeros"`).
    Constant,
    /// Repeat the border value (`"edge"`, `"replicate"`, `"border"`).
    Edge,
    /// Mirror without repeating the border (`"reflect"`, `"reflection"`).
    Reflect,
    /// Mirror repeating the border (numpy `"symmetric"`).
    Symmetric,
    /// Periodic (`"wrap"`, `"circular"`).
    Wrap,
}

impl PadMode {
    pub fn parse(s: &str) -> Option<PadMode> {
        Some(match s {
            "constant" | "zeros" => PadMode::Constant,
            "edge" | "replicate" | "border" => PadMode::Edge,
            "reflect" | "reflection" => PadMode::Reflect,
            "symmetric" => PadMode::Symmetric,
            "wrap" | "circular" => PadMode::Wrap,
            _ => return None,
        })
    }

    /// The source index of (possibly outside) position `i` on an axis of length `n`;
    /// `None` means the constant fill. Periodic formulas equal numpy's repeated padding.
    fn source(self, i: i64, n: usize) -> Option<usize> {
        let n = n as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        if n == 0 {
            return None;
        }
        let j = match self {
            PadMode::Constant => return None,
            PadMode::Edge => i.clamp(0, n - 1),
            PadMode::Reflect => {
                if n == 1 {
                    0
                } else {
                    let p = 2 * (n - 1);
                    let m = i.rem_euclid(p);
                    if m >= n {
                        p - m
                    } else {
                        m
                    }
                }
            }
            PadMode::Symmetric => {
                let p = 2 * n;
                let m = i.rem_euclid(p);
                if m >= n {
                    p - 1 - m
                } else {
                    m
                }
            }
            PadMode::Wrap => i.rem_euclid(n),
        };
        Some(j as usize)
    }
}

/// `out[c, i0, i1, ...] = a[c, maps[0][i0], maps[1][i1], ...]`, or `fill` where a map says `None`.
/// One routine for crop, pad and crop-then-pad (ResizeWithPadOrCrop).
pub fn gather_spatial(a: &Array, maps: &[Vec<Option<usize>>], fill: f32) -> Array {
    let shape = a.shape();
    let strides = strides_of(shape);
    let mut out_shape = vec![shape[0]];
    out_shape.extend(maps.iter().map(Vec::len));
    let total: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(total);
    if total > 0 {
        for c in 0..shape[0] {
            gather_rec(a.data(), &strides[1..], maps, 0, c * strides[0], fill, &mut out);
        }
    }
    Array::new(out_shape, out).unwrap_or_else(|_| unreachable!("gather fills the full output shape"))
}

fn gather_rec(src: &[f32], strides: &[usize], maps: &[Vec<Option<usize>>], axis: usize, base: usize, fill: f32, out: &mut Vec<f32>) {
    let map = &maps[axis];
    if axis + 1 == maps.len() {
        out.extend(map.iter().map(|m| match m {
            Some(i) => src[base + i],
            None => fill,
        }));
        return;
    }
    let block: usize = maps[axis + 1..].iter().map(Vec::len).product();
    for m in map {
        match m {
            Some(i) => gather_rec(src, strides, maps, axis + 1, base + i * strides[axis], fill, out),
            None => out.extend(std::iter::repeat_n(fill, block)),
        }
    }
}

/// A transposition with reversals: output axis `i` walks source axis `perm[i]`, backwards where
/// `flip[i]`. Covers torch.flip, torch.rot90 and moveaxis in one strided copy.
pub fn permute_flip(a: &Array, perm: &[usize], flip: &[bool]) -> Array {
    let shape = a.shape();
    let src_strides = strides_of(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let total: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(total);
    if total > 0 {
        // Per output axis: start offset and signed step into the source.
        let steps: Vec<(isize, isize)> = perm
            .iter()
            .zip(flip)
            .map(|(&p, &f)| {
                let s = src_strides[p] as isize;
                if f {
                    ((shape[p] as isize - 1) * s, -s)
                } else {
                    (0, s)
                }
            })
            .collect();
        permute_rec(a.data(), &out_shape, &steps, 0, 0, &mut out);
    }
    Array::new(out_shape, out).unwrap_or_else(|_| unreachable!("permute fills the full output shape"))
}

fn permute_rec(src: &[f32], shape: &[usize], steps: &[(isize, isize)], axis: usize, base: isize, out: &mut Vec<f32>) {
    let (start, step) = steps[axis];
    let mut off = base + start;
    if axis + 1 == shape.len() {
        if step == 1 {
            let o = off as usize;
            out.extend_from_slice(&src[o..o + shape[axis]]);
        } else {
            for _ in 0..shape[axis] {
                out.push(src[off as usize]);
                off += step;
            }
        }
        return;
    }
    for _ in 0..shape[axis] {
        permute_rec(src, shape, steps, axis + 1, off, out);
        off += step;
    }
}

/// torch.flip over the given array axes.
pub fn flip_axes(a: &Array, axes: &[usize]) -> Array {
    let perm: Vec<usize> = (0..a.ndim()).collect();
    let mut fl = vec![false; a.ndim()];
    for &ax in axes {
        // torch.flip rejects repeated dims; flipping twice would be a no-op, so toggling is safe.
        fl[ax] = !fl[ax];
    }
    permute_flip(a, &perm, &fl)
}

/// torch.rot90(a, k, [ax0, ax1]) over array axes: rotates from `ax0` towards `ax1`.
pub fn rot90_axes(a: &Array, k: i64, ax0: usize, ax1: usize) -> Array {
    let mut perm: Vec<usize> = (0..a.ndim()).collect();
    let mut fl = vec![false; a.ndim()];
    match k.rem_euclid(4) {
        // k=1: flip(ax1) then transpose: out[u, v] = in[v, n1-1-u].
        1 => {
            perm.swap(ax0, ax1);
            fl[ax0] = true;
        }
        2 => {
            fl[ax0] = true;
            fl[ax1] = true;
        }
        // k=3: flip(ax0) then transpose: out[u, v] = in[n0-1-v, u].
        3 => {
            perm.swap(ax0, ax1);
            fl[ax1] = true;
        }
        _ => return a.clone(),
    }
    permute_flip(a, &perm, &fl)
}

/// Start and length of MONAI's centre crop on one axis (`Crop.compute_slices` with
/// `center = size // 2`, slice end clamped to the axis as Python slicing does).
fn center_crop_range(size: usize, roi: usize) -> (usize, usize) {
    let start = (size / 2).saturating_sub(roi / 2);
    let end = (start + roi).min(size);
    (start, end.saturating_sub(start))
}

/// MONAI's `CenterSpatialCrop` with an already resolved roi.
pub fn center_crop(a: &Array, roi: &[usize]) -> Array {
    let mut start = vec![0];
    let mut size = vec![a.shape()[0]];
    for (&s, &r) in a.shape()[1..].iter().zip(roi) {
        let (st, len) = center_crop_range(s, r);
        start.push(st);
        size.push(len);
    }
    a.crop(&start, &size)
}

/// Padding of one axis: `(before, after)`, as `SpatialPad.compute_pad_width`.
fn pad_width(size: usize, target: usize, symmetric: bool) -> (usize, usize) {
    let w = target.saturating_sub(size);
    if symmetric {
        (w / 2, w - w / 2)
    } else {
        (0, w)
    }
}

/// MONAI's `SpatialPad` with a resolved target size.
pub fn spatial_pad(a: &Array, target: &[usize], symmetric: bool, mode: PadMode, value: f32) -> Array {
    let sp = &a.shape()[1..];
    if sp.iter().zip(target).all(|(s, t)| s >= t) {
        return a.clone();
    }
    let maps: Vec<Vec<Option<usize>>> = sp
        .iter()
        .zip(target)
        .map(|(&s, &t)| {
            let (before, after) = pad_width(s, t, symmetric);
            (0..before + s + after).map(|i| mode.source(i as i64 - before as i64, s)).collect()
        })
        .collect();
    gather_spatial(a, &maps, value)
}

/// MONAI's `ResizeWithPadOrCrop` (centre crop, then symmetric pad) to `target`.
pub fn resize_with_pad_or_crop(a: &Array, target: &[usize], mode: PadMode, value: f32) -> Array {
    let sp = &a.shape()[1..];
    let maps: Vec<Vec<Option<usize>>> = sp
        .iter()
        .zip(target)
        .map(|(&s, &t)| {
            if s >= t {
                let (start, len) = center_crop_range(s, t);
                (start..start + len).map(Some).collect()
            } else {
                let (before, after) = pad_width(s, t, true);
                (0..before + s + after).map(|i| mode.source(i as i64 - before as i64, s)).collect()
            }
        })
        .collect();
    gather_spatial(a, &maps, value)
}

// ---------------------------------------------------------------------------------------------
// Resampling (torch.nn.functional.interpolate as MONAI's Zoom calls it)
// ---------------------------------------------------------------------------------------------

/// Interpolation modes of `torch.nn.functional.interpolate` that Zoom supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterpMode {
    /// `adaptive_avg_pool`: each output averages the input box `[floor(i*in/out), ceil((i+1)*in/out))`.
    Area,
    /// torch's legacy nearest: `floor(i * in/out)` (in f32).
    Nearest,
    /// Pillow / scipy nearest: `floor((i + 0.5) * in/out)`.
    NearestExact,
    /// Separable n-linear. MONAI maps linear/bilinear/trilinear to the array's spatial rank.
    Linear,
}

impl InterpMode {
    pub fn parse(s: &str) -> Option<InterpMode> {
        Some(match s {
            "area" => InterpMode::Area,
            "nearest" => InterpMode::Nearest,
            "nearest-exact" => InterpMode::NearestExact,
            "linear" | "bilinear" | "trilinear" => InterpMode::Linear,
            _ => return None,
        })
    }
}

/// Sparse 1-D resampling weights: output `j` reads `idx[ptr[j]..ptr[j+1]]` weighted by `w`.
struct Taps {
    ptr: Vec<usize>,
    idx: Vec<usize>,
    w: Vec<f32>,
}

fn taps(mode: InterpMode, n_in: usize, n_out: usize, align_corners: bool) -> Taps {
    let mut t = Taps { ptr: vec![0], idx: Vec::new(), w: Vec::new() };
    match mode {
        InterpMode::Area => {
            for j in 0..n_out {
                // torch's start_index / end_index of adaptive pooling.
                let s = (j * n_in) / n_out;
                let e = ((j + 1) * n_in).div_ceil(n_out);
                let w = 1.0 / (e - s) as f32;
                for i in s..e {
                    t.idx.push(i);
                    t.w.push(w);
                }
                t.ptr.push(t.idx.len());
            }
        }
        InterpMode::Nearest | InterpMode::NearestExact => {
            // torch computes the scale in f32 (compute_scales_value<float>).
            let scale = n_in as f32 / n_out as f32;
            for j in 0..n_out {
                let i = if mode == InterpMode::Nearest {
                    if n_out == n_in {
                        j
                    } else if n_out == 2 * n_in {
                        j >> 1
                    } else {
                        ((j as f32 * scale).floor() as usize).min(n_in - 1)
                    }
                } else {
                    ((((j as f64 + 0.5) * scale as f64) as f32).floor() as usize).min(n_in - 1)
                };
                t.idx.push(i);
                t.w.push(1.0);
                t.ptr.push(t.idx.len());
            }
        }
        InterpMode::Linear => {
            // area_pixel_compute_scale / _source_index in opmath (f32), guard_index_and_lambda.
            let scale = if align_corners {
                if n_out > 1 {
                    (n_in - 1) as f32 / (n_out - 1) as f32
                } else {
                    0.0
                }
            } else {
                n_in as f32 / n_out as f32
            };
            for j in 0..n_out {
                let (i0, i1, l0, l1) = if n_in == n_out {
                    (j, j, 1.0f32, 0.0f32)
                } else {
                    let src = if align_corners {
                        scale * j as f32
                    } else {
                        let s = scale * (j as f32 + 0.5) - 0.5;
                        if s < 0.0 {
                            0.0
                        } else {
                            s
                        }
                    };
                    let i0 = (src.floor() as usize).min(n_in - 1);
                    let l1 = (src - i0 as f32).clamp(0.0, 1.0);
                    let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
                    (i0, i1, 1.0 - l1, l1)
                };
                t.idx.extend([i0, i1]);
                t.w.extend([l0, l1]);
                t.ptr.push(t.idx.len());
            }
        }
    }
    t
}

/// Resamples the block `src` of shape `dims` (axis 0 first) with `taps[d]` per axis (`None` =
/// unchanged axis), appending the result to `out`. Axis 0 is combined one output slab at a
/// time into a reused scratch buffer (first tap written, further taps multiply-added over whole
/// contiguous rows), then the slab recurses into the remaining axes; only the final output is
/// freshly written, and nothing is allocated per voxel.
fn resample_block(src: &[f32], dims: &[usize], taps: &[Option<Taps>], out: &mut Vec<f32>, scratch: &mut [Vec<f32>]) {
    let inner: usize = dims[1..].iter().product();
    let (buf, rest) = match scratch.split_first_mut() {
        Some(x) => x,
        None => return,
    };
    match &taps[0] {
        None if dims.len() == 1 => out.extend_from_slice(src),
        None => {
            for i in 0..dims[0] {
                resample_block(&src[i * inner..(i + 1) * inner], &dims[1..], &taps[1..], out, rest);
            }
        }
        Some(t) if dims.len() == 1 => {
            for j in 0..t.ptr.len() - 1 {
                let (k0, k1) = (t.ptr[j], t.ptr[j + 1]);
                let mut acc = t.w[k0] * src[t.idx[k0]];
                for k in k0 + 1..k1 {
                    acc += t.w[k] * src[t.idx[k]];
                }
                out.push(acc);
            }
        }
        Some(t) => {
            for j in 0..t.ptr.len() - 1 {
                let (k0, k1) = (t.ptr[j], t.ptr[j + 1]);
                let (i0, w0) = (t.idx[k0], t.w[k0]);
                buf.clear();
                buf.extend(src[i0 * inner..(i0 + 1) * inner].iter().map(|&v| w0 * v));
                for k in k0 + 1..k1 {
                    let (i, w) = (t.idx[k], t.w[k]);
                    for (d, &v) in buf.iter_mut().zip(&src[i * inner..(i + 1) * inner]) {
                        *d += w * v;
                    }
                }
                resample_block(buf, &dims[1..], &taps[1..], out, rest);
            }
        }
    }
}

/// `torch.nn.functional.interpolate(size=out_size)` on a channel-first array, separably (a box
/// mean and n-linear weights factor per axis; torch's fused kernels differ only in rounding).
/// Nearest modes are one n-d gather. Axes whose size does not change are identities in every
/// mode and are skipped.
pub fn interpolate(a: &Array, out_size: &[usize], mode: InterpMode, align_corners: bool) -> Array {
    let sp = &a.shape()[1..];
    if sp == out_size {
        return a.clone();
    }
    if matches!(mode, InterpMode::Nearest | InterpMode::NearestExact) {
        // Nearest picks one source index per axis: a single n-d gather touches only the output.
        let maps: Vec<Vec<Option<usize>>> =
            sp.iter().zip(out_size).map(|(&n_in, &n_out)| taps(mode, n_in, n_out, false).idx.into_iter().map(Some).collect()).collect();
        return gather_spatial(a, &maps, 0.0);
    }
    let mut all_taps: Vec<Option<Taps>> = vec![None];
    all_taps.extend(sp.iter().zip(out_size).map(|(&n_in, &n_out)| (n_in != n_out).then(|| taps(mode, n_in, n_out, align_corners))));
    let mut shape = vec![a.shape()[0]];
    shape.extend_from_slice(out_size);
    let mut out = Vec::with_capacity(shape.iter().product());
    let mut scratch = vec![Vec::new(); shape.len()];
    resample_block(a.data(), a.shape(), &all_taps, &mut out, &mut scratch);
    Array::new(shape, out).unwrap_or_else(|_| unreachable!("resampling fills the output shape"))
}

// ---------------------------------------------------------------------------------------------
// Transforms
// ---------------------------------------------------------------------------------------------

/// `channel_dim` of `EnsureChannelFirstd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelDim {
    /// `"no_channel"`: add a leading axis of length 1.
    NoChannel,
    /// Move this axis (negative counts from the end) to the front.
    Axis(i64),
}

/// MONAI `EnsureChannelFirstd(keys, strict_check=True, allow_missing_keys=False, channel_dim=None)`.
/// Arrays here carry no `original_channel_dim` metadata, so `channel_dim=None` is an error under
/// `strict_check` (as MONAI's is without metadata) and a no-op otherwise.
#[derive(Debug, Clone)]
pub struct EnsureChannelFirstd {
    pub keys: Vec<String>,
    pub strict_check: bool,
    pub allow_missing_keys: bool,
    pub channel_dim: Option<ChannelDim>,
}

impl EnsureChannelFirstd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, channel_dim: Option<ChannelDim>) -> Self {
        EnsureChannelFirstd { keys: to_keys(keys), strict_check: true, allow_missing_keys: false, channel_dim }
    }
}

impl Transform for EnsureChannelFirstd {
    fn name(&self) -> &'static str {
        "EnsureChannelFirstd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            match self.channel_dim {
                None if self.strict_check => {
                    return Err(invalid(name, "channel_dim=None needs original_channel_dim metadata, which arrays here do not carry; set channel_dim"))
                }
                None => {}
                Some(ChannelDim::NoChannel) => *a = std::mem::replace(a, Array::zeros(vec![0])).with_leading_axis(),
                Some(ChannelDim::Axis(k)) => {
                    let n = a.ndim() as i64;
                    let ax = if k < 0 { k + n } else { k };
                    if ax < 0 || ax >= n {
                        return Err(invalid(name, format!("channel_dim {k} is out of range for shape {:?}", a.shape())));
                    }
                    let ax = ax as usize;
                    if ax != 0 {
                        let mut perm: Vec<usize> = (0..a.ndim()).filter(|&i| i != ax).collect();
                        perm.insert(0, ax);
                        *a = permute_flip(a, &perm, &vec![false; perm.len()]);
                    }
                }
            }
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `ToTensord`: arrays already are what batching consumes, so values and shapes stay;
/// it still checks that the keys exist and are loaded.
#[derive(Debug, Clone)]
pub struct ToTensord {
    pub keys: Vec<String>,
    pub allow_missing_keys: bool,
}

impl ToTensord {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        ToTensord { keys: to_keys(keys), allow_missing_keys: false }
    }
}

impl Transform for ToTensord {
    fn name(&self) -> &'static str {
        "ToTensord"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, self.name(), |_| Ok(()))?;
        Ok(vec![sample])
    }
}

/// MONAI `Zoomd(keys, zoom, mode="area", padding_mode="edge", align_corners=None, keep_size=True)`.
///
/// Output size per axis is `floor(size * zoom)` in f64, exactly as MONAI and
/// `interpolate(scale_factor=..., recompute_scale_factor=True)` compute it; the kernels then use
/// the recomputed ratio `in/out`, not the zoom. With `keep_size` the result is centre-cropped /
/// symmetrically padded (`padding_mode`) back to the input size. `mode` and `align_corners` take
/// one value for all keys or one per key, as MONAI's dictionary version does.
#[derive(Debug, Clone)]
pub struct Zoomd {
    pub keys: Vec<String>,
    /// One factor for all spatial axes, or one per axis.
    pub zoom: Vec<f64>,
    pub mode: Vec<InterpMode>,
    pub padding_mode: PadMode,
    pub align_corners: Vec<Option<bool>>,
    pub keep_size: bool,
    pub allow_missing_keys: bool,
}

impl Zoomd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, zoom: Vec<f64>) -> Self {
        Zoomd {
            keys: to_keys(keys),
            zoom,
            mode: vec![InterpMode::Area],
            padding_mode: PadMode::Edge,
            align_corners: vec![None],
            keep_size: true,
            allow_missing_keys: false,
        }
    }

    /// Zooms one channel-first array (the array transform `Zoom`).
    pub fn zoom_array(&self, a: &Array, mode: InterpMode, align_corners: Option<bool>) -> Result<Array, TransformError> {
        let name = "Zoomd";
        let sp = spatial_shape(a, name)?.to_vec();
        let zoom = per_axis(&self.zoom, sp.len(), name, "zoom")?;
        if let Some(z) = zoom.iter().find(|z| !(z.is_finite() && **z > 0.0)) {
            return Err(invalid(name, format!("zoom factors must be positive and finite, got {z}")));
        }
        if align_corners.is_some() && mode != InterpMode::Linear {
            // torch: "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"
            return Err(invalid(name, format!("align_corners can only be set with linear modes, not {mode:?}")));
        }
        let out: Vec<usize> = sp.iter().zip(&zoom).map(|(&s, &z)| (s as f64 * z).floor() as usize).collect();
        if out.contains(&0) || sp.contains(&0) {
            return Err(invalid(name, format!("zoom {zoom:?} of spatial shape {sp:?} gives empty output {out:?}")));
        }
        let zoomed = interpolate(a, &out, mode, align_corners.unwrap_or(false));
        if self.keep_size && out != sp {
            return Ok(resize_with_pad_or_crop(&zoomed, &sp, self.padding_mode, 0.0));
        }
        Ok(zoomed)
    }
}

impl Transform for Zoomd {
    fn name(&self) -> &'static str {
        "Zoomd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let n = self.keys.len();
        let modes = if self.mode.len() == 1 { vec![self.mode[0]; n] } else { self.mode.clone() };
        let acs = if self.align_corners.len() == 1 { vec![self.align_corners[0]; n] } else { self.align_corners.clone() };
        if modes.len() != n || acs.len() != n {
            return Err(invalid(self.name(), format!("mode / align_corners need 1 or {n} (one per key) values")));
        }
        for (i, key) in self.keys.iter().enumerate() {
            let one = [key.clone()];
            for_each_key(&mut sample, &one, self.allow_missing_keys, self.name(), |a| {
                *a = self.zoom_array(a, modes[i], acs[i])?;
                Ok(())
            })?;
        }
        Ok(vec![sample])
    }
}

/// MONAI `CenterSpatialCropd(keys, roi_size)`: the box starts at `max(size//2 - roi//2, 0)`;
/// non-positive roi entries (`-1`) keep the full axis; an roi larger than the image keeps the axis.
#[derive(Debug, Clone)]
pub struct CenterSpatialCropd {
    pub keys: Vec<String>,
    pub roi_size: Vec<i64>,
    pub allow_missing_keys: bool,
}

impl CenterSpatialCropd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, roi_size: Vec<i64>) -> Self {
        CenterSpatialCropd { keys: to_keys(keys), roi_size, allow_missing_keys: false }
    }
}

impl Transform for CenterSpatialCropd {
    fn name(&self) -> &'static str {
        "CenterSpatialCropd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            let roi = fall_back(&self.roi_size, spatial_shape(a, name)?, name, "roi_size")?;
            *a = center_crop(a, &roi);
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

/// MONAI `SpatialPadd(keys, spatial_size, method="symmetric", mode="constant", value=0)`.
/// Symmetric puts `w//2` before and the rest after; `end` pads after only; axes already at
/// least `spatial_size` (or with a non-positive entry) are left alone.
#[derive(Debug, Clone)]
pub struct SpatialPadd {
    pub keys: Vec<String>,
    pub spatial_size: Vec<i64>,
    /// `true` = `method="symmetric"`, `false` = `method="end"`.
    pub symmetric: bool,
    pub mode: PadMode,
    /// Fill of `mode=constant` (the `value` keyword MONAI passes to the pad function).
    pub value: f32,
    pub allow_missing_keys: bool,
}

impl SpatialPadd {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I, spatial_size: Vec<i64>) -> Self {
        SpatialPadd { keys: to_keys(keys), spatial_size, symmetric: true, mode: PadMode::Constant, value: 0.0, allow_missing_keys: false }
    }
}

impl Transform for SpatialPadd {
    fn name(&self) -> &'static str {
        "SpatialPadd"
    }
    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
        let name = self.name();
        for_each_key(&mut sample, &self.keys, self.allow_missing_keys, name, |a| {
            let sp = spatial_shape(a, name)?;
            let target = fall_back(&self.spatial_size, sp, name, "spatial_size")?;
            if self.mode != PadMode::Constant && sp.iter().zip(&target).any(|(&s, &t)| s == 0 && t > 0) {
                return Err(invalid(name, format!("cannot pad an empty axis with mode {:?}", self.mode)));
            }
            *a = spatial_pad(a, &target, self.symmetric, self.mode, self.value);
            Ok(())
        })?;
        Ok(vec![sample])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(shape: &[usize]) -> Array {
        let n = shape.iter().product();
        Array::new(shape.to_vec(), (0..n).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn rot90_matches_torch_layout() {
        // torch.rot90(arange(6).reshape(1,2,3), 1, [1,2]) = [[[2,5],[1,4],[0,3]]]
        let a = arr(&[1, 2, 3]);
        assert_eq!(rot90_axes(&a, 1, 1, 2).data(), &[2.0, 5.0, 1.0, 4.0, 0.0, 3.0]);
        assert_eq!(rot90_axes(&a, 2, 1, 2).data(), &[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
        assert_eq!(rot90_axes(&a, 3, 1, 2).data(), &[3.0, 0.0, 4.0, 1.0, 5.0, 2.0]);
        assert_eq!(rot90_axes(&a, 3, 1, 2).shape(), &[1, 3, 2]);
    }

    #[test]
    fn pad_modes_match_numpy() {
        let a = Array::new(vec![1, 3], vec![1.0, 2.0, 3.0]).unwrap();
        let p = |m| spatial_pad(&a, &[9], true, m, -1.0).into_data();
        assert_eq!(p(PadMode::Constant), vec![-1.0, -1.0, -1.0, 1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
        assert_eq!(p(PadMode::Edge), vec![1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]);
        assert_eq!(p(PadMode::Reflect), vec![2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]);
        assert_eq!(p(PadMode::Symmetric), vec![3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 3.0, 2.0, 1.0]);
        assert_eq!(p(PadMode::Wrap), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    }
}
