//! cyto_dl's postprocessing of predictions: activation, threshold, labels, rescaling.
//!
//! Ports `cyto_dl/models/im2im/utils/postprocessing/` (`ActThreshLabel`, `AutoThreshold`) and the
//! older function targets still named by stale configs (`rescale`, `sigmoid_rescale`,
//! `sigmoid_thresh`, `postprocess_label`), with numpy/skimage semantics where they decide the
//! saved pixel values:
//!
//! - the threshold is compared as `f32 > f32` (numpy casts the Python float to the array's
//!   float32);
//! - `skimage.measure.label`: background 0, full (ndim) connectivity, equal-valued neighbours
//!   join, labels numbered by the raster position of each component's first pixel;
//! - `skimage.exposure.rescale_intensity(out_range=dtype)`: min -> dtype min (0 for signed
//!   types when the image is non-negative), max -> dtype max, in `f32` for float images and
//!   `f64` for boolean/label images (numpy's promotion), constant images clipped into range;
//! - `astype`: truncation toward zero, integers wrap, and out-of-range floats cast as numpy
//!   does on x86 (see [`cast`]).
//!
//! Images stay [`Array`]s of `f32` values; the result says which [`DType`] to write them as.

use thiserror::Error;

use crate::array::{strides_of, Array};
use crate::io::DType;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum PostprocessError {
    #[error("channel {ch} selected from an image with {channels} channels")]
    Channel { ch: i64, channels: usize },
    #[error("softmax dim {dim} out of range for an image with {ndim} axes")]
    SoftmaxDim { dim: i64, ndim: usize },
    #[error("cannot postprocess an empty or zero-dimensional image {0:?}")]
    Empty(Vec<usize>),
    #[error("skimage labels non-thresholded images of 1-3 axes only, got shape {0:?} (threshold first, or select a channel with ch > 0)")]
    LabelDims(Vec<usize>),
    #[error("Otsu's threshold needs finite values; the image has NaN or infinity")]
    NonFinite,
    #[error("{0}")]
    Cluster(String),
}

/// The image after postprocessing and the sample type cyto_dl would save it as.
#[derive(Debug, Clone, PartialEq)]
pub struct Postprocessed {
    pub array: Array,
    pub dtype: DType,
}

/// Element-wise or per-axis activation, as torch applies it to the float32 prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `torch.nn.Identity` (cyto_dl's default).
    Identity,
    Sigmoid,
    Tanh,
    ReLU,
    /// `torch.nn.Softmax(dim)`; negative dims count from the end of the (selected) image.
    Softmax {
        dim: i64,
    },
}

/// cyto_dl's `ActThreshLabel`, applied to one image `[C, spatial...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActThreshLabel {
    pub activation: Activation,
    /// Keep `value > threshold`.
    pub threshold: Option<f32>,
    /// Connected-component labelling after thresholding.
    pub label: bool,
    /// Output type when `rescale_dtype` is unset (cyto_dl's default `uint8`).
    pub dtype: DType,
    /// Channel to keep (dropping the channel axis). cyto_dl's quirk: only `ch > 0` selects,
    /// so 0 and the default -1 both keep every channel.
    pub ch: i64,
    /// Stretch min..max to this type's full range (then also the output type).
    pub rescale_dtype: Option<DType>,
}

impl Default for ActThreshLabel {
    /// cyto_dl's `ActThreshLabel()`, as `cytodl-schema` declares its defaults.
    fn default() -> Self {
        ActThreshLabel::from(&cytodl_schema::component::declared_defaults::<cytodl_schema::ActThreshLabel>())
    }
}

impl From<&cytodl_schema::ActThreshLabel> for ActThreshLabel {
    fn from(a: &cytodl_schema::ActThreshLabel) -> Self {
        ActThreshLabel {
            activation: a.activation.as_ref().map_or(Activation::Identity, Activation::from),
            threshold: a.threshold.map(|t| t as f32),
            label: a.label,
            dtype: dtype(a.dtype),
            ch: a.ch,
            rescale_dtype: a.rescale_dtype.map(dtype),
        }
    }
}

/// A postprocessing step as configs name it: cyto_dl's `ActThreshLabel` (per head,
/// `postprocess: {input, prediction}`), or the seed document's model-level functions
/// `postprocessing.rescale` and `postprocessing.sigmoid_rescale`.
#[derive(Debug, Clone, PartialEq)]
pub enum Postprocess {
    ActThreshLabel(ActThreshLabel),
    AutoThreshold(AutoThreshold),
    Rescale,
    SigmoidRescale,
    /// cyto_dl's `InstanceSegCluster`: instance labels, uint16.
    InstanceSegCluster(crate::instance_seg::InstanceSegCluster),
}

/// Each head's (input, prediction) postprocessing, as the image saver and the experiment use it.
pub type HeadPostprocess = indexmap::IndexMap<String, (Postprocess, Postprocess)>;

impl Default for Postprocess {
    fn default() -> Self {
        Postprocess::ActThreshLabel(ActThreshLabel::default())
    }
}

impl From<ActThreshLabel> for Postprocess {
    fn from(a: ActThreshLabel) -> Self {
        Postprocess::ActThreshLabel(a)
    }
}

impl Postprocess {
    pub fn apply(&self, img: &Array) -> Result<Postprocessed, PostprocessError> {
        match self {
            Postprocess::ActThreshLabel(a) => a.apply(img),
            Postprocess::AutoThreshold(a) => a.apply(img),
            Postprocess::Rescale => Ok(rescale(img)),
            Postprocess::SigmoidRescale => Ok(sigmoid_rescale(img)),
            Postprocess::InstanceSegCluster(c) => {
                let array = c.apply(img).map_err(|e| PostprocessError::Cluster(e.to_string()))?;
                Ok(Postprocessed { array, dtype: DType::U16 })
            }
        }
    }
}

/// What numpy holds between steps; it decides rescale arithmetic and casts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Float32,
    Bool,
    Int64,
}

impl ActThreshLabel {
    pub fn apply(&self, img: &Array) -> Result<Postprocessed, PostprocessError> {
        if img.ndim() == 0 || img.is_empty() {
            return Err(PostprocessError::Empty(img.shape().to_vec()));
        }
        let mut shape = img.shape().to_vec();
        let mut data: Vec<f32> = if self.ch > 0 {
            let c = self.ch as usize;
            if c >= shape[0] {
                return Err(PostprocessError::Channel { ch: self.ch, channels: shape[0] });
            }
            let v = img.slab(c).to_vec();
            shape.remove(0);
            v
        } else {
            img.data().to_vec()
        };
        if shape.is_empty() {
            shape.push(1);
        }
        activate(&mut data, &shape, self.activation)?;
        let mut kind = Kind::Float32;
        let mut vals: Vec<f64> = data.iter().map(|&v| v as f64).collect();
        if let Some(t) = self.threshold {
            vals = data.iter().map(|&v| if v > t { 1.0 } else { 0.0 }).collect();
            kind = Kind::Bool;
        }
        if self.label {
            if kind == Kind::Float32 {
                // skimage labels non-boolean images with its own 1-3-D code, on integers.
                if shape.len() > 3 {
                    return Err(PostprocessError::LabelDims(shape));
                }
                vals.iter_mut().for_each(|v| *v = v.trunc());
            }
            vals = label(&vals, &shape).into_iter().map(|v| v as f64).collect();
            kind = Kind::Int64;
        }
        let dtype = self.rescale_dtype.unwrap_or(self.dtype);
        if let Some(rd) = self.rescale_dtype {
            vals = rescale_intensity(&vals, kind, rd);
        }
        let out: Vec<f32> = vals.iter().map(|&v| cast(v, dtype) as f32).collect();
        Ok(Postprocessed { array: Array::new(shape, out).expect("same element count"), dtype })
    }
}

/// cyto_dl's `AutoThreshold`: a fixed value or `skimage.filters.threshold_otsu`, giving a 0/1
/// uint8 mask; with no method the float32 image passes through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AutoThreshold {
    None,
    Value(f32),
    Otsu,
}

impl AutoThreshold {
    pub fn apply(&self, img: &Array) -> Result<Postprocessed, PostprocessError> {
        let t = match *self {
            AutoThreshold::None => return Ok(Postprocessed { array: img.clone(), dtype: DType::F32 }),
            AutoThreshold::Value(t) => t,
            AutoThreshold::Otsu => threshold_otsu(img.data())?,
        };
        let mask = img.data().iter().map(|&v| if v > t { 1.0 } else { 0.0 }).collect();
        Ok(Postprocessed { array: Array::new(img.shape().to_vec(), mask).expect("same element count"), dtype: DType::U8 })
    }
}

/// Legacy `postprocessing.rescale`: `rescale_intensity(img, out_range=uint8).astype(uint8)`.
pub fn rescale(img: &Array) -> Postprocessed {
    let vals: Vec<f64> = img.data().iter().map(|&v| v as f64).collect();
    let out = rescale_intensity(&vals, Kind::Float32, DType::U8);
    let out = out.iter().map(|&v| cast(v, DType::U8) as f32).collect();
    Postprocessed { array: Array::new(img.shape().to_vec(), out).expect("same element count"), dtype: DType::U8 }
}

/// Legacy `postprocessing.sigmoid_rescale`: `(sigmoid(img) * 255).astype(uint8)` (f32 product).
pub fn sigmoid_rescale(img: &Array) -> Postprocessed {
    let out = img.data().iter().map(|&v| cast((sigmoid(v) * 255.0) as f64, DType::U8) as f32).collect();
    Postprocessed { array: Array::new(img.shape().to_vec(), out).expect("same element count"), dtype: DType::U8 }
}

/// Legacy `postprocessing.sigmoid_thresh`: `(sigmoid(img) > 123).astype(uint8)`. The original
/// compares a probability with 123, so the mask is always empty; kept for fidelity.
pub fn sigmoid_thresh(img: &Array) -> Postprocessed {
    let out = img.data().iter().map(|&v| if sigmoid(v) > 123.0 { 1.0 } else { 0.0 }).collect();
    Postprocessed { array: Array::new(img.shape().to_vec(), out).expect("same element count"), dtype: DType::U8 }
}

/// Legacy `postprocessing.postprocess_label`: `label(sigmoid(img) > 0.5).astype(uint16)`.
pub fn postprocess_label(img: &Array) -> Postprocessed {
    let mask: Vec<f64> = img.data().iter().map(|&v| if sigmoid(v) > 0.5 { 1.0 } else { 0.0 }).collect();
    let out = label(&mask, img.shape()).into_iter().map(|v| cast(v as f64, DType::U16) as f32).collect();
    Postprocessed { array: Array::new(img.shape().to_vec(), out).expect("same element count"), dtype: DType::U16 }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

fn activate(data: &mut [f32], shape: &[usize], act: Activation) -> Result<(), PostprocessError> {
    match act {
        Activation::Identity => {}
        Activation::Sigmoid => data.iter_mut().for_each(|v| *v = sigmoid(*v)),
        Activation::Tanh => data.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::ReLU => data.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Softmax { dim } => {
            let nd = shape.len() as i64;
            let d = if dim < 0 { dim + nd } else { dim };
            if !(0..nd).contains(&d) {
                return Err(PostprocessError::SoftmaxDim { dim, ndim: shape.len() });
            }
            let d = d as usize;
            let n = shape[d];
            let inner: usize = shape[d + 1..].iter().product();
            let outer: usize = shape[..d].iter().product();
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| o * n * inner + k * inner + i;
                    let m = (0..n).map(|k| data[at(k)]).fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f32;
                    for k in 0..n {
                        let e = (data[at(k)] - m).exp();
                        data[at(k)] = e;
                        sum += e;
                    }
                    for k in 0..n {
                        data[at(k)] /= sum;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `skimage.measure.label(img)`: 0 is background, neighbours across faces, edges and corners
/// (connectivity = ndim) with equal values join, labels 1.. in raster order of first pixels.
pub fn label(vals: &[f64], shape: &[usize]) -> Vec<i64> {
    let nd = shape.len();
    let n = vals.len();
    let strides = strides_of(shape);
    // Offsets of neighbours earlier in raster order: the first nonzero step is negative.
    let mut back: Vec<Vec<i64>> = Vec::new();
    for code in 0..3usize.pow(nd as u32) {
        let mut c = code;
        let mut off = vec![0i64; nd];
        for d in (0..nd).rev() {
            off[d] = (c % 3) as i64 - 1;
            c /= 3;
        }
        if off.iter().find(|&&o| o != 0) == Some(&-1) {
            back.push(off);
        }
    }
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut idx = vec![0usize; nd];
    for flat in 0..n {
        let v = vals[flat];
        if v != 0.0 {
            'nb: for off in &back {
                let mut nflat = flat as i64;
                for d in 0..nd {
                    let j = idx[d] as i64 + off[d];
                    if j < 0 || j >= shape[d] as i64 {
                        continue 'nb;
                    }
                    nflat += off[d] * strides[d] as i64;
                }
                let nflat = nflat as usize;
                if vals[nflat] == v {
                    let (a, b) = (find(&mut parent, flat), find(&mut parent, nflat));
                    // Keep the earliest pixel as root.
                    if a != b {
                        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                        parent[hi] = lo;
                    }
                }
            }
        }
        for d in (0..nd).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let mut labels = vec![0i64; n];
    let mut next = 0i64;
    for flat in 0..n {
        if vals[flat] != 0.0 {
            let r = find(&mut parent, flat);
            if r == flat {
                next += 1;
                labels[flat] = next;
            } else {
                labels[flat] = labels[r];
            }
        }
    }
    labels
}

/// skimage's `DTYPE_RANGE` for a dtype.
fn dtype_range(d: DType) -> (f64, f64) {
    match d {
        DType::U8 => (0.0, 255.0),
        DType::U16 => (0.0, 65535.0),
        DType::U32 => (0.0, 4294967295.0),
        DType::I8 => (-128.0, 127.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::I32 => (-2147483648.0, 2147483647.0),
        DType::F32 | DType::F64 => (-1.0, 1.0),
    }
}

/// `skimage.exposure.rescale_intensity(img, out_range=dtype)` before the final cast.
fn rescale_intensity(vals: &[f64], kind: Kind, to: DType) -> Vec<f64> {
    let imin = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let imax = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut omin, omax) = dtype_range(to);
    if imin >= 0.0 {
        omin = 0.0;
    }
    if imin == imax {
        return vals.iter().map(|&v| v.clamp(omin, omax)).collect();
    }
    match kind {
        // float32 array with Python-float scalars: numpy stays in float32.
        Kind::Float32 => {
            let (lo, span, ospan, o0) = (imin as f32, (imax - imin) as f32, (omax - omin) as f32, omin as f32);
            vals.iter().map(|&v| ((((v as f32) - lo) / span) * ospan + o0) as f64).collect()
        }
        // bool / int64 arrays are promoted to float64 by np.clip with float bounds.
        Kind::Bool | Kind::Int64 => vals.iter().map(|&v| (v - imin) / (imax - imin) * (omax - omin) + omin).collect(),
    }
}

/// numpy `astype(dtype)` of a float array, as it behaves on x86 (its vectorised loops, which an
/// image goes through): truncation toward zero, wrap-around into narrow integers, and for
/// values no `int32` holds (or NaN) 0 in 8/16-bit types and `i32::MIN` in int32; uint32 wraps
/// from `-2^31` up to `2^32`, gives 0 from `2^32` and `2^31` below `-2^31` or for NaN
/// (`scripts/oracles/postprocess_numpy.py`). Floats are returned unchanged.
pub fn cast(v: f64, to: DType) -> f64 {
    let t = v.trunc();
    let in_i32 = (-2147483648.0..=2147483647.0).contains(&t);
    match to {
        DType::F32 | DType::F64 => v,
        DType::U8 => {
            if in_i32 {
                (t as i32) as u8 as f64
            } else {
                0.0
            }
        }
        DType::I8 => {
            if in_i32 {
                (t as i32) as i8 as f64
            } else {
                0.0
            }
        }
        DType::U16 => {
            if in_i32 {
                (t as i32) as u16 as f64
            } else {
                0.0
            }
        }
        DType::I16 => {
            if in_i32 {
                (t as i32) as i16 as f64
            } else {
                0.0
            }
        }
        DType::I32 => {
            if in_i32 {
                t
            } else {
                i32::MIN as f64
            }
        }
        DType::U32 => {
            if (-2147483648.0..4294967296.0).contains(&t) {
                (t as i64) as u32 as f64
            } else if t >= 4294967296.0 {
                0.0
            } else {
                2147483648.0
            }
        }
    }
}

/// `skimage.filters.threshold_otsu(img)` on a float32 image: 256-bin `np.histogram` over
/// min..max (float32 edges), float32 class weights and means, first maximum of the
/// between-class variance, the bin centre returned; a constant image returns its value.
pub fn threshold_otsu(img: &[f32]) -> Result<f32, PostprocessError> {
    let Some(&first) = img.first() else {
        return Err(PostprocessError::Empty(vec![0]));
    };
    if img.iter().all(|&v| v == first) {
        return Ok(first);
    }
    if img.iter().any(|v| !v.is_finite()) {
        return Err(PostprocessError::NonFinite);
    }
    const NB: usize = 256;
    let lo = img.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = img.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // np.linspace over float32 scalars computes in float32: arange * step + start.
    let step = (hi - lo) / NB as f32;
    let mut edges: Vec<f32> = (0..=NB).map(|k| k as f32 * step + lo).collect();
    edges[NB] = hi;
    // numpy's uniform-bin fast path, then its +-1 corrections against the edges.
    let denom = hi - lo;
    let mut counts = [0f32; NB];
    for &v in img {
        let mut i = (((v - lo) / denom) * NB as f32) as usize;
        if i >= NB {
            i = NB - 1;
        }
        if v < edges[i] {
            i -= 1;
        }
        if v >= edges[i + 1] && i != NB - 1 {
            i += 1;
        }
        counts[i] += 1.0;
    }
    let centers: Vec<f32> = (0..NB).map(|i| (edges[i] + edges[i + 1]) / 2.0).collect();
    let mut w1 = [0f32; NB];
    let mut m1 = [0f32; NB];
    let (mut cw, mut cm) = (0f32, 0f32);
    for i in 0..NB {
        cw += counts[i];
        cm += counts[i] * centers[i];
        w1[i] = cw;
        m1[i] = cm / cw;
    }
    let mut w2 = [0f32; NB];
    let mut m2 = [0f32; NB];
    let (mut cw, mut cm) = (0f32, 0f32);
    for i in (0..NB).rev() {
        cw += counts[i];
        cm += counts[i] * centers[i];
        w2[i] = cw;
        m2[i] = cm / cw;
    }
    let mut best = (0usize, f32::NEG_INFINITY);
    for i in 0..NB - 1 {
        let d = m1[i] - m2[i + 1];
        let var = w1[i] * w2[i + 1] * (d * d);
        // np.argmax: first maximum; NaN (empty classes) wins as numpy's argmax does.
        if var.is_nan() {
            if !best.1.is_nan() {
                best = (i, var);
            }
        } else if !best.1.is_nan() && var > best.1 {
            best = (i, var);
        }
    }
    Ok(centers[best.0])
}

/// The activation a config names (`cytodl-schema`).
impl From<&cytodl_schema::ActivationConfig> for Activation {
    fn from(c: &cytodl_schema::ActivationConfig) -> Self {
        use cytodl_schema::ActivationConfig as C;
        match c {
            C::Sigmoid(_) => Activation::Sigmoid,
            C::Identity(_) => Activation::Identity,
            C::Tanh(_) => Activation::Tanh,
            C::ReLU(_) => Activation::ReLU,
            C::Softmax(s) => Activation::Softmax { dim: s.dim },
        }
    }
}

fn dtype(d: cytodl_schema::NumpyDType) -> DType {
    use cytodl_schema::NumpyDType as N;
    match d {
        N::U8 => DType::U8,
        N::U16 => DType::U16,
        N::U32 => DType::U32,
        N::I8 => DType::I8,
        N::I16 => DType::I16,
        N::I32 => DType::I32,
        N::F32 => DType::F32,
        N::F64 => DType::F64,
    }
}

/// The postprocessing a config names (`cytodl-schema`).
impl From<&cytodl_schema::PostprocessConfig> for Postprocess {
    fn from(c: &cytodl_schema::PostprocessConfig) -> Self {
        use cytodl_schema::PostprocessConfig as C;
        match c {
            C::ActThreshLabel(a) => Postprocess::ActThreshLabel(a.into()),
            C::AutoThreshold(a) => Postprocess::AutoThreshold(match a.method {
                None => AutoThreshold::None,
                Some(cytodl_schema::ThresholdArg::Value(v)) => AutoThreshold::Value(v as f32),
                Some(cytodl_schema::ThresholdArg::Method(cytodl_schema::ThresholdMethod::Otsu)) => AutoThreshold::Otsu,
            }),
            C::Rescale(_) => Postprocess::Rescale,
            C::SigmoidRescale(_) => Postprocess::SigmoidRescale,
            C::InstanceSegCluster(c) => Postprocess::InstanceSegCluster(crate::instance_seg::InstanceSegCluster {
                dim: if c.dim == 2 { 2 } else { 3 },
                anisotropy: c.anisotropy,
                skel_threshold: c.skel_threshold,
                semantic_threshold: c.semantic_threshold,
                min_size: c.min_size,
                distance_threshold: c.distance_threshold,
            }),
        }
    }
}

/// Each head's (input, prediction) postprocessing from a model config; a head without one gets
/// cyto_dl's default: `ActThreshLabel()` (identity cast to uint8), and for a GAN head `detach`
/// (the float32 values as they are).
pub fn head_postprocess(heads: &cytodl_schema::Map<cytodl_schema::HeadConfig>) -> HeadPostprocess {
    heads
        .iter()
        .map(|(name, head)| {
            let post = head.postprocess();
            let default = || match head.adversarial() {
                Some(_) => Postprocess::ActThreshLabel(ActThreshLabel { dtype: DType::F32, ..ActThreshLabel::default() }),
                None => Postprocess::default(),
            };
            let step = |c: Option<&cytodl_schema::PostprocessConfig>| c.map_or_else(default, Postprocess::from);
            (name.clone(), (step(post.and_then(|p| p.input.as_ref())), step(post.and_then(|p| p.prediction.as_ref()))))
        })
        .collect()
}
