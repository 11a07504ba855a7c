//! Sliding-window inference over whole images (MONAI's `sliding_window_inference`).
//!
//! cyto_dl's `MultiTaskIm2Im` runs test/predict on the whole field of view through
//! `monai.inferers.sliding_window_inference`; this is a line-by-line port of MONAI 1.5's
//! non-buffered path so predictions (and the window seams in them) match the Python code:
//!
//! 1. pad each spatial axis up to the roi (`diff // 2` before, the rest after);
//! 2. scan interval `int(roi * (1 - overlap))` (at least 1; the roi itself where roi == image);
//! 3. window starts as `dense_patch_slices` (last window pulled back inside, raster order);
//! 4. windows of all images taken `sw_batch_size` at a time, image-major
//!    (`idx // num_win`, `idx % num_win`), so batches may straddle images;
//! 5. each output weighted by the importance map (`compute_importance_map`), summed into the
//!    output, divided by the summed weights, padding cropped away.
//!
//! Outputs may be any integer-compatible multiple of the roi (super-resolution heads): the
//! weight map is resized with `nearest-exact` and window boxes scaled by `int(start * z)`,
//! as MONAI does. Several outputs (cyto_dl's dict of heads) come back in the predictor's order.
//! Arithmetic is `f32` throughout, in MONAI's order (the `sw_*` fixtures match bit for bit).
//!
//! Not ported: `roi_weight_map`, `process_fn`, `buffer_steps`, `with_coord`, `condition`.
//! One deliberate difference: MONAI resizes the weight map in place, so a second resized head
//! gets the first head's resized map (and fails if the sizes disagree); here every head's
//! map is resized from the roi-sized one (the same maps for integer scales).

use thiserror::Error;

use crate::array::{strides_of, Array};

/// How overlapping window outputs are weighted (MONAI `BlendMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlendMode {
    /// Every window position counts the same.
    Constant,
    /// A separable Gaussian centred in the window (sigma = `sigma_scale * roi`), so window
    /// borders, where the network sees padding, count less.
    Gaussian,
}

/// How images smaller than the roi are padded (torch `F.pad` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Fill with `cval`.
    Constant,
    /// Mirror without repeating the edge (`reflect`); the pad must be shorter than the axis.
    Reflect,
    /// Repeat the edge value (`replicate`).
    Replicate,
    /// Wrap around (`circular`).
    Circular,
}

/// Sliding-window inference settings (MONAI's `sliding_window_inference` arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingWindow {
    /// Window size per spatial axis; 0 means the whole axis (MONAI's non-positive fallback).
    pub roi_size: Vec<usize>,
    /// Windows per predictor call.
    pub sw_batch_size: usize,
    /// Overlap fraction in [0, 1): one value for all axes or one per spatial axis.
    pub overlap: Vec<f64>,
    pub mode: BlendMode,
    /// Gaussian sigma as a fraction of the roi: one value or one per spatial axis.
    pub sigma_scale: Vec<f64>,
    pub padding_mode: PadMode,
    /// Fill value for [`PadMode::Constant`].
    pub cval: f32,
}

#[derive(Debug, Error)]
pub enum InferError<E> {
    #[error("input must be [N, C, spatial...] with {spatial} spatial axes (the roi's), got shape {shape:?}")]
    InputShape { spatial: usize, shape: Vec<usize> },
    #[error("input has an empty axis: shape {0:?}")]
    EmptyInput(Vec<usize>),
    #[error("{what} has {got} values for {spatial} spatial axes (give 1 or {spatial})")]
    AxisCount { what: &'static str, got: usize, spatial: usize },
    #[error("overlap must be >= 0 and < 1, got {0}")]
    Overlap(f64),
    #[error("sigma_scale must be > 0, got {0}")]
    Sigma(f64),
    #[error("sw_batch_size must be at least 1")]
    BatchSize,
    #[error("reflect padding by {pad} needs an axis longer than {pad}, got {size}")]
    ReflectPad { pad: usize, size: usize },
    #[error("predictor failed: {0}")]
    Predictor(E),
    #[error("predictor returned no outputs")]
    NoOutputs,
    #[error("predictor returned {got} outputs, earlier {expected}")]
    OutputCount { expected: usize, got: usize },
    #[error("output {head}: shape {shape:?} is not [{batch}, C, spatial...] with {spatial} spatial axes")]
    OutputShape { head: usize, shape: Vec<usize>, batch: usize, spatial: usize },
    #[error("output {head}: shape {shape:?} changed from {expected:?} between window batches")]
    OutputChanged { head: usize, shape: Vec<usize>, expected: Vec<usize> },
    #[error("output {head}: spatial size {shape:?} is not an integer scaling of the roi {roi:?} at every window")]
    OutputScale { head: usize, shape: Vec<usize>, roi: Vec<usize> },
}

/// One output head's accumulators.
struct Head {
    /// Spatial size of one window's output.
    patch: Vec<usize>,
    /// out / roi per spatial axis (MONAI's `z_scale`).
    scale: Vec<f64>,
    /// Importance map resized to `patch`.
    weight: Vec<f32>,
    /// [N, C_out, out spatial...]
    out: Array,
    /// [out spatial...], summed weights (shared by batch items and channels).
    count: Vec<f32>,
}

impl SlidingWindow {
    /// MONAI's defaults: batch 1, overlap 0.25, constant blending, sigma 0.125, zero padding.
    pub fn new(roi_size: Vec<usize>) -> Self {
        SlidingWindow {
            roi_size,
            sw_batch_size: 1,
            overlap: vec![0.25],
            mode: BlendMode::Constant,
            sigma_scale: vec![0.125],
            padding_mode: PadMode::Constant,
            cval: 0.0,
        }
    }

    /// Runs `predictor` over windows of `input` (`[N, C, spatial...]`) and stitches each of its
    /// outputs (`[B, C_out, roi * scale...]` per call) into `[N, C_out, spatial * scale...]`.
    pub fn infer<E, F>(&self, input: &Array, mut predictor: F) -> Result<Vec<Array>, InferError<E>>
    where
        F: FnMut(&Array) -> Result<Vec<Array>, E>,
    {
        let nsp = self.roi_size.len();
        let shape = input.shape();
        if nsp == 0 || shape.len() != nsp + 2 {
            return Err(InferError::InputShape { spatial: nsp, shape: shape.to_vec() });
        }
        if shape.contains(&0) {
            return Err(InferError::EmptyInput(shape.to_vec()));
        }
        if self.sw_batch_size == 0 {
            return Err(InferError::BatchSize);
        }
        let overlap = per_axis("overlap", &self.overlap, nsp)?;
        if let Some(&o) = overlap.iter().find(|o| !(0.0..1.0).contains(*o)) {
            return Err(InferError::Overlap(o));
        }
        let sigma_scale = per_axis("sigma_scale", &self.sigma_scale, nsp)?;
        if self.mode == BlendMode::Gaussian {
            if let Some(&s) = sigma_scale.iter().find(|s| s.is_nan() || **s <= 0.0) {
                return Err(InferError::Sigma(s));
            }
        }
        let (batch, channels) = (shape[0], shape[1]);
        let image_in = &shape[2..];
        let roi: Vec<usize> = self.roi_size.iter().zip(image_in).map(|(&r, &s)| if r == 0 { s } else { r }).collect();

        // Pad up to the roi, `diff // 2` before (MONAI's pad_size).
        let image: Vec<usize> = image_in.iter().zip(&roi).map(|(&s, &r)| s.max(r)).collect();
        let pad_before: Vec<usize> = image_in.iter().zip(&roi).map(|(&s, &r)| r.saturating_sub(s) / 2).collect();
        let padded;
        let input = if image.as_slice() != image_in {
            padded = pad(input, &pad_before, &image, self.padding_mode, self.cval)?;
            &padded
        } else {
            input
        };

        let interval = scan_interval(&image, &roi, &overlap);
        let starts = dense_patch_starts(&image, &roi, &interval);
        let num_win = starts.len();
        let total = num_win * batch;
        let importance = importance_map(&roi, self.mode, &sigma_scale);

        let mut heads: Vec<Head> = Vec::new();
        let mut first = 0;
        while first < total {
            let range = first..(first + self.sw_batch_size).min(total);
            first = range.end;
            let b = range.len();
            // Gather [b, C, roi...] windows.
            let mut win_shape = vec![b, channels];
            win_shape.extend_from_slice(&roi);
            let mut data = Vec::with_capacity(win_shape.iter().product());
            let mut box_size = vec![1, channels];
            box_size.extend_from_slice(&roi);
            for idx in range.clone() {
                let mut box_start = vec![idx / num_win, 0];
                box_start.extend_from_slice(&starts[idx % num_win]);
                data.extend_from_slice(input.crop(&box_start, &box_size).data());
            }
            let windows = Array::new(win_shape, data).expect("window data matches its shape");
            let outs = predictor(&windows).map_err(InferError::Predictor)?;
            if outs.is_empty() {
                return Err(InferError::NoOutputs);
            }
            if heads.is_empty() {
                for (h, o) in outs.iter().enumerate() {
                    heads.push(new_head(h, o, b, batch, &roi, &image, &importance, &starts)?);
                }
            } else if heads.len() != outs.len() {
                return Err(InferError::OutputCount { expected: heads.len(), got: outs.len() });
            }
            for (h, (head, o)) in heads.iter_mut().zip(&outs).enumerate() {
                let os = o.shape();
                if os.len() != nsp + 2 || os[0] != b || os[1] != head.out.shape()[1] || os[2..] != head.patch[..] {
                    let mut expected = vec![b, head.out.shape()[1]];
                    expected.extend_from_slice(&head.patch);
                    return Err(InferError::OutputChanged { head: h, shape: os.to_vec(), expected });
                }
                let per_item: usize = os[1..].iter().product();
                let per_chan: usize = head.patch.iter().product();
                for (k, idx) in range.clone().enumerate() {
                    // MONAI multiplies the window output by the weight, then adds it.
                    let weighted: Vec<f32> =
                        o.data()[k * per_item..(k + 1) * per_item].iter().enumerate().map(|(i, &v)| v * head.weight[i % per_chan]).collect();
                    // Box [all channels, scaled window] of image idx / num_win.
                    let mut box_start = vec![0];
                    box_start.extend(scaled_start(&starts[idx % num_win], &head.scale));
                    let n = idx / num_win;
                    let out_shape = head.out.shape().to_vec();
                    let item_len: usize = out_shape[1..].iter().product();
                    let item = &mut head.out.data_mut()[n * item_len..(n + 1) * item_len];
                    add_box(item, &out_shape[1..], &box_start, &weighted, os[1..].to_vec());
                }
            }
        }

        // Divide by the summed weights and crop the padding away.
        let mut result = Vec::with_capacity(heads.len());
        for head in heads {
            let Head { scale, mut out, count, .. } = head;
            let per_chan = count.len();
            for (i, v) in out.data_mut().iter_mut().enumerate() {
                *v /= count[i % per_chan];
            }
            if image.as_slice() != image_in {
                let osh = out.shape().to_vec();
                let mut start = vec![0, 0];
                let mut size = vec![osh[0], osh[1]];
                for d in 0..nsp {
                    let lo = round_half_even(pad_before[d] as f64 * scale[d]) as usize;
                    let hi = (round_half_even((pad_before[d] + image_in[d]) as f64 * scale[d]) as usize).min(osh[d + 2]);
                    start.push(lo.min(hi));
                    size.push(hi - lo.min(hi));
                }
                out = out.crop(&start, &size);
            }
            result.push(out);
        }
        Ok(result)
    }
}

/// `ensure_tuple_rep`: one value for every axis, or one per axis.
fn per_axis<E>(what: &'static str, v: &[f64], nsp: usize) -> Result<Vec<f64>, InferError<E>> {
    match v.len() {
        1 => Ok(vec![v[0]; nsp]),
        n if n == nsp => Ok(v.to_vec()),
        got => Err(InferError::AxisCount { what, got, spatial: nsp }),
    }
}

/// MONAI's `_get_scan_interval`.
pub fn scan_interval(image: &[usize], roi: &[usize], overlap: &[f64]) -> Vec<usize> {
    image
        .iter()
        .zip(roi)
        .zip(overlap)
        .map(|((&s, &r), &o)| {
            if r == s {
                r
            } else {
                // Python's int() truncates toward zero.
                let i = (r as f64 * (1.0 - o)) as usize;
                i.max(1)
            }
        })
        .collect()
}

/// MONAI's `dense_patch_slices`: window start corners in raster order (last axis fastest).
/// `roi` must not exceed `image` (sliding-window inference pads first).
pub fn dense_patch_starts(image: &[usize], roi: &[usize], interval: &[usize]) -> Vec<Vec<usize>> {
    let patch: Vec<usize> = image.iter().zip(roi).map(|(&s, &r)| if r == 0 { s } else { r.min(s) }).collect();
    let per_axis: Vec<Vec<usize>> = (0..image.len())
        .map(|d| {
            let num = if interval[d] == 0 {
                1
            } else {
                let candidates = image[d].div_ceil(interval[d]);
                (0..candidates).find(|&k| k * interval[d] + patch[d] >= image[d]).map_or(1, |k| k + 1)
            };
            (0..num)
                .map(|k| {
                    let s = k * interval[d];
                    s - (s + patch[d]).saturating_sub(image[d])
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let mut idx = vec![0usize; image.len()];
    loop {
        out.push(idx.iter().enumerate().map(|(d, &i)| per_axis[d][i]).collect());
        let mut d = image.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < per_axis[d].len() {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// MONAI's `compute_importance_map` in `f32`, flattened row-major over `patch`.
/// Gaussian: per-axis `exp(x^2 / (-2 sigma^2))` at `x = -(n-1)/2 ..= (n-1)/2`, outer product
/// (not renormalised: the peak is below 1 for even sizes), then clamped below by
/// `max(min, 1e-3)` so no position has zero weight.
pub fn importance_map(patch: &[usize], mode: BlendMode, sigma_scale: &[f64]) -> Vec<f32> {
    let n: usize = patch.iter().product();
    let mut map = match mode {
        BlendMode::Constant => vec![1.0f32; n],
        BlendMode::Gaussian => {
            let mut map = vec![1.0f32];
            for (d, &len) in patch.iter().enumerate() {
                let sigma = len as f64 * sigma_scale.get(d).or(sigma_scale.last()).copied().unwrap_or(0.125);
                let denom = (-2.0 * sigma * sigma) as f32;
                let start = -((len as f32 - 1.0) / 2.0);
                let g: Vec<f32> = (0..len)
                    .map(|i| {
                        let x = start + i as f32;
                        (x * x / denom).exp()
                    })
                    .collect();
                map = if d == 0 { g } else { map.iter().flat_map(|&m| g.iter().map(move |&v| m * v)).collect() };
            }
            map
        }
    };
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    let floor = (min as f64).max(1e-3) as f32;
    for v in &mut map {
        *v = v.max(floor);
    }
    map
}

/// Resizes a row-major map with torch's `nearest-exact`: source `floor((i + 0.5) * in / out)`.
fn nearest_exact(map: &[f32], from: &[usize], to: &[usize]) -> Vec<f32> {
    let index: Vec<Vec<usize>> = from
        .iter()
        .zip(to)
        .map(|(&f, &t)| {
            let s = f as f64 / t as f64;
            (0..t).map(|i| (((i as f64 + 0.5) * s).floor() as usize).min(f - 1)).collect()
        })
        .collect();
    let fs = strides_of(from);
    let n: usize = to.iter().product();
    let ts = strides_of(to);
    (0..n)
        .map(|flat| {
            let off: usize = (0..to.len()).map(|d| index[d][(flat / ts[d]) % to[d]] * fs[d]).sum();
            map[off]
        })
        .collect()
}

/// `int(start * z)` per axis, as MONAI scales window boxes for resized outputs.
fn scaled_start(start: &[usize], scale: &[f64]) -> Vec<usize> {
    start.iter().zip(scale).map(|(&s, &z)| (s as f64 * z) as usize).collect()
}

#[allow(clippy::too_many_arguments)]
fn new_head<E>(
    h: usize,
    o: &Array,
    b: usize,
    batch: usize,
    roi: &[usize],
    image: &[usize],
    importance: &[f32],
    starts: &[Vec<usize>],
) -> Result<Head, InferError<E>> {
    let nsp = roi.len();
    let os = o.shape();
    if os.len() != nsp + 2 || os[0] != b || os[2..].contains(&0) {
        return Err(InferError::OutputShape { head: h, shape: os.to_vec(), batch: b, spatial: nsp });
    }
    let patch = os[2..].to_vec();
    let scale: Vec<f64> = patch.iter().zip(roi).map(|(&p, &r)| p as f64 / r as f64).collect();
    let weight = if patch.as_slice() == roi { importance.to_vec() } else { nearest_exact(importance, roi, &patch) };
    let out_sp: Vec<usize> = image.iter().zip(&scale).map(|(&s, &z)| (s as f64 * z) as usize).collect();
    let mut count = vec![0.0f32; out_sp.iter().product()];
    for s in starts {
        let lo = scaled_start(s, &scale);
        let end: Vec<usize> = s.iter().zip(roi).map(|(&a, &r)| a + r).collect();
        let hi = scaled_start(&end, &scale);
        // MONAI would fail to broadcast a patch into a box of another size.
        let bad_size = lo.iter().zip(&hi).zip(&patch).any(|((&l, &u), &p)| u - l != p);
        if bad_size || hi.iter().zip(&out_sp).any(|(&u, &m)| u > m) {
            return Err(InferError::OutputScale { head: h, shape: patch.clone(), roi: roi.to_vec() });
        }
        add_box(&mut count, &out_sp, &lo, &weight, patch.clone());
    }
    let mut out_shape = vec![batch, os[1]];
    out_shape.extend_from_slice(&out_sp);
    Ok(Head { patch, scale, weight, out: Array::zeros(out_shape), count })
}

/// `dst[start .. start + shape] += src` for row-major `dst` of shape `dst_shape`.
fn add_box(dst: &mut [f32], dst_shape: &[usize], start: &[usize], src: &[f32], shape: Vec<usize>) {
    let nd = shape.len();
    let ds = strides_of(dst_shape);
    let row = shape[nd - 1];
    let rows: usize = shape[..nd - 1].iter().product();
    let mut idx = vec![0usize; nd - 1];
    for r in 0..rows {
        let mut off = start[nd - 1];
        for d in 0..nd - 1 {
            off += (start[d] + idx[d]) * ds[d];
        }
        for (a, &v) in dst[off..off + row].iter_mut().zip(&src[r * row..(r + 1) * row]) {
            *a += v;
        }
        for d in (0..nd - 1).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Python's `round` (ties to even), used by MONAI to crop padding from resized outputs.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// Pads the spatial axes of `[N, C, spatial...]` to `target`, `before[d]` in front (torch `F.pad`).
fn pad<E>(input: &Array, before: &[usize], target: &[usize], mode: PadMode, cval: f32) -> Result<Array, InferError<E>> {
    let shape = input.shape();
    let nsp = target.len();
    // Per spatial axis: output index -> source index (None = fill).
    let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(nsp);
    for d in 0..nsp {
        let size = shape[d + 2];
        let b = before[d];
        if mode == PadMode::Reflect {
            let after = target[d] - size - b;
            let p = b.max(after);
            if p >= size && p > 0 {
                return Err(InferError::ReflectPad { pad: p, size });
            }
        }
        maps.push(
            (0..target[d])
                .map(|j| {
                    let i = j as isize - b as isize;
                    let n = size as isize;
                    if (0..n).contains(&i) {
                        return Some(i as usize);
                    }
                    match mode {
                        PadMode::Constant => None,
                        PadMode::Replicate => Some(i.clamp(0, n - 1) as usize),
                        PadMode::Circular => Some(i.rem_euclid(n) as usize),
                        PadMode::Reflect => {
                            let r = if i < 0 { -i } else { 2 * (n - 1) - i };
                            Some(r.clamp(0, n - 1) as usize)
                        }
                    }
                })
                .collect(),
        );
    }
    let mut out_shape = shape[..2].to_vec();
    out_shape.extend_from_slice(target);
    let src_strides = strides_of(&shape[2..]);
    let src_len: usize = shape[2..].iter().product();
    let out_len: usize = target.iter().product();
    let tstrides = strides_of(target);
    let mut data = Vec::with_capacity(shape[0] * shape[1] * out_len);
    for nc in 0..shape[0] * shape[1] {
        let src = &input.data()[nc * src_len..(nc + 1) * src_len];
        for flat in 0..out_len {
            let mut off = Some(0usize);
            for d in 0..nsp {
                let j = (flat / tstrides[d]) % target[d];
                off = match (off, maps[d][j]) {
                    (Some(o), Some(i)) => Some(o + i * src_strides[d]),
                    _ => None,
                };
            }
            data.push(off.map_or(cval, |o| src[o]));
        }
    }
    Ok(Array::new(out_shape, data).expect("padded data matches its shape"))
}

/// Sliding-window inference as a config gives it (`cytodl-schema`, `model.inference_args`).
impl From<&cytodl_schema::SlidingWindowArgs> for SlidingWindow {
    fn from(a: &cytodl_schema::SlidingWindowArgs) -> Self {
        let roi: Vec<usize> = a.roi_size.iter().flatten().map(|v| (*v).max(0) as usize).collect();
        SlidingWindow {
            sw_batch_size: a.sw_batch_size.max(1) as usize,
            overlap: a.overlap.clone(),
            mode: match a.mode {
                cytodl_schema::BlendMode::Constant => BlendMode::Constant,
                cytodl_schema::BlendMode::Gaussian => BlendMode::Gaussian,
            },
            sigma_scale: a.sigma_scale.clone(),
            padding_mode: match a.padding_mode {
                cytodl_schema::WindowPadMode::Constant => PadMode::Constant,
                cytodl_schema::WindowPadMode::Reflect => PadMode::Reflect,
                cytodl_schema::WindowPadMode::Replicate => PadMode::Replicate,
                cytodl_schema::WindowPadMode::Circular => PadMode::Circular,
            },
            cval: a.cval as f32,
            ..SlidingWindow::new(roi)
        }
    }
}
