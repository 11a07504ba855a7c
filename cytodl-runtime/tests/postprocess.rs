//! cyto_dl postprocessing ([`ActThreshLabel`], [`AutoThreshold`], the legacy functions) against
//! values numpy 2.4 / scikit-image 0.26 / torch 2.5 computed with cyto_dl's code (script below).
//! Integer outputs must match exactly.
//!
//! Oracle: `scripts/oracles/postprocess_numpy.py` prints every expected array below; `--check`
//! compares them with this file.

use cytodl_runtime::io::DType;
use cytodl_runtime::postprocess::*;
use cytodl_runtime::Array;

/// The inputs of the reference script: `((i*i*31 + i*7919 + seed*104729) % 1009) / 100 - 5`.
fn gen(shape: &[usize], seed: i64) -> Array {
    let n: usize = shape.iter().product();
    let v = (0..n as i64).map(|i| (((i * i * 31 + i * 7919 + seed * 104729) % 1009) as f64 / 100.0 - 5.0) as f32).collect();
    Array::new(shape.to_vec(), v).unwrap()
}

fn scaled(a: &Array, k: f32) -> Array {
    Array::new(a.shape().to_vec(), a.data().iter().map(|v| v * k).collect()).unwrap()
}

#[track_caller]
fn check(name: &str, got: &Postprocessed, dtype: DType, shape: &[usize], want: &[i64]) {
    assert_eq!(got.dtype, dtype, "{name}");
    assert_eq!(got.array.shape(), shape, "{name}");
    assert_eq!(got.array.data().len(), want.len(), "{name}: the expected values do not cover the image");
    let bad: Vec<(usize, f32, i64)> =
        got.array.data().iter().zip(want).enumerate().filter(|(_, (g, w))| **g as i64 != **w || g.fract() != 0.0).map(|(i, (g, w))| (i, *g, *w)).collect();
    assert!(bad.is_empty(), "{name}: {} of {} differ, first (index, got, want): {:?}", bad.len(), want.len(), &bad[..bad.len().min(5)]);
}

fn atl(activation: Activation) -> ActThreshLabel {
    ActThreshLabel { activation, ..Default::default() }
}

#[test]
fn act_thresh_label_matches_cyto_dl() {
    let x = gen(&[2, 3, 4, 5], 1);
    let p = ActThreshLabel { rescale_dtype: Some(DType::U8), ..atl(Activation::Sigmoid) };
    check("sigmoid rescale u8", &p.apply(&x).unwrap(), DType::U8, &[2, 3, 4, 5], &SIGMOID_RESCALE_U8);
    let p = ActThreshLabel { rescale_dtype: Some(DType::U16), ..atl(Activation::Identity) };
    check("identity rescale u16", &p.apply(&x).unwrap(), DType::U16, &[2, 3, 4, 5], &IDENTITY_RESCALE_U16);
    // ch = 1 selects (and drops) the channel axis; signed range -32768.. when values go negative,
    // 0.. when they do not (skimage's clip_negative).
    let p = ActThreshLabel { ch: 1, rescale_dtype: Some(DType::I16), ..atl(Activation::Tanh) };
    check("ch1 tanh rescale i16", &p.apply(&x).unwrap(), DType::I16, &[3, 4, 5], &CH1_TANH_RESCALE_I16);
    let p = ActThreshLabel { ch: 1, rescale_dtype: Some(DType::I16), ..atl(Activation::ReLU) };
    check("ch1 relu rescale i16", &p.apply(&x).unwrap(), DType::I16, &[3, 4, 5], &CH1_RELU_RESCALE_I16);
    // ch = 0 keeps every channel (cyto_dl's `if self.ch > 0`).
    let p = ActThreshLabel { ch: 0, threshold: Some(0.5), ..atl(Activation::Softmax { dim: 0 }) };
    check("softmax threshold", &p.apply(&x).unwrap(), DType::U8, &[2, 3, 4, 5], &SOFTMAX0_THRESH);
    // astype without rescaling: truncation and wrap-around.
    let x70 = scaled(&x, 70.0);
    check("cast u8", &atl(Activation::Identity).apply(&x70).unwrap(), DType::U8, &[2, 3, 4, 5], &IDENTITY_CAST_U8);
    let p = ActThreshLabel { dtype: DType::I8, ..atl(Activation::Identity) };
    check("cast i8", &p.apply(&x70).unwrap(), DType::I8, &[2, 3, 4, 5], &IDENTITY_CAST_I8);

    let y = gen(&[1, 6, 7, 8], 2);
    let p = ActThreshLabel { threshold: Some(0.98), label: true, dtype: DType::U16, ..atl(Activation::Sigmoid) };
    let got = p.apply(&y).unwrap();
    check("sigmoid label u16", &got, DType::U16, &[1, 6, 7, 8], &SIGMOID_LABEL_U16);
    assert_eq!(got.array.max(), 10.0, "full connectivity: 10 components (25 with faces only)");
    let p = ActThreshLabel { threshold: Some(0.98), label: true, rescale_dtype: Some(DType::U8), ..atl(Activation::Sigmoid) };
    check("label rescale u8", &p.apply(&y).unwrap(), DType::U8, &[1, 6, 7, 8], &LABEL_RESCALE_U8);
    let p = ActThreshLabel { threshold: Some(1.0), rescale_dtype: Some(DType::U8), ..atl(Activation::Identity) };
    check("threshold rescale u8", &p.apply(&y).unwrap(), DType::U8, &[1, 6, 7, 8], &THRESH_RESCALE_U8);
    // Labelling a float image: truncated to integers, equal values join.
    let mut yy = y.data().to_vec();
    yy.extend_from_slice(y.data());
    let yy = scaled(&Array::new(vec![2, 6, 7, 8], yy).unwrap(), 1.0 / 3.0);
    let p = ActThreshLabel { ch: 1, label: true, ..atl(Activation::Identity) };
    check("raw label u8", &p.apply(&yy).unwrap(), DType::U8, &[6, 7, 8], &RAW_LABEL_U8);
    let p = ActThreshLabel { label: true, ..atl(Activation::Identity) };
    assert!(matches!(p.apply(&yy), Err(PostprocessError::LabelDims(_))));
    // 400 labels written as uint8 wrap around.
    let mut m = Array::zeros(vec![1, 40, 40]);
    for yx in 0..1600 {
        if (yx / 40) % 2 == 0 && yx % 2 == 0 {
            m.data_mut()[yx] = 1.0;
        }
    }
    let p = ActThreshLabel { threshold: Some(0.5), label: true, ..atl(Activation::Identity) };
    check("many labels u8", &p.apply(&m).unwrap(), DType::U8, &[1, 40, 40], &MANY_LABELS_U8);
    // A constant image is clipped into the output range.
    let p = ActThreshLabel { rescale_dtype: Some(DType::U8), ..atl(Activation::Identity) };
    check("constant rescale", &p.apply(&Array::filled(vec![1, 2, 2], 300.0)).unwrap(), DType::U8, &[1, 2, 2], &CONST_RESCALE_U8);
}

#[test]
fn auto_threshold_matches_skimage() {
    let z = gen(&[1, 6, 7, 8], 3);
    let z = Array::new(z.shape().to_vec(), z.data().iter().map(|v| v * v).collect()).unwrap();
    assert_eq!(threshold_otsu(z.data()).unwrap(), OTSU_T);
    check("otsu mask", &AutoThreshold::Otsu.apply(&z).unwrap(), DType::U8, &[1, 6, 7, 8], &OTSU_MASK);
    let fixed = AutoThreshold::Value(OTSU_T).apply(&z).unwrap();
    check("fixed mask", &fixed, DType::U8, &[1, 6, 7, 8], &OTSU_MASK);
    let same = AutoThreshold::None.apply(&z).unwrap();
    assert_eq!((same.dtype, &same.array), (DType::F32, &z));
    // Constant image: the threshold is the value, so the mask is empty.
    assert_eq!(threshold_otsu(&[2.5; 4]).unwrap(), 2.5);
    assert!(matches!(threshold_otsu(&[1.0, f32::NAN]), Err(PostprocessError::NonFinite)));
}

#[test]
fn legacy_functions_match_cyto_dl() {
    let x = gen(&[2, 3, 4, 5], 1);
    check("rescale", &rescale(&x), DType::U8, &[2, 3, 4, 5], &LEGACY_RESCALE);
    check("sigmoid_rescale", &sigmoid_rescale(&x), DType::U8, &[2, 3, 4, 5], &LEGACY_SIGMOID_RESCALE);
    // cyto_dl's quirk (a probability compared with 123): an empty uint8 mask of the input's shape.
    let t = sigmoid_thresh(&x);
    assert_eq!((t.dtype, t.array.shape(), t.array.max(), t.array.min()), (DType::U8, x.shape(), 0.0, 0.0));
    let y = gen(&[1, 6, 7, 8], 2);
    check("postprocess_label", &postprocess_label(&y), DType::U16, &[1, 6, 7, 8], &LEGACY_LABEL);
}

#[test]
fn numpy_casts() {
    let u8s: Vec<f64> = [300.5, -1.5, 255.9, 70000.7, -70000.2, 3e9, f64::NAN].iter().map(|&v| cast(v, DType::U8)).collect();
    assert_eq!(u8s[..6], [44.0, 255.0, 255.0, 112.0, 144.0, 0.0]);
    assert_eq!(u8s[6], 0.0);
    assert_eq!(cast(-1.5, DType::U16), 65535.0);
    assert_eq!(cast(3e9, DType::I32), i32::MIN as f64);
    // numpy's vectorised uint32 cast (scripts/oracles/postprocess_numpy.py prints both of
    // numpy's behaviours; an image takes this one).
    let u32s: Vec<f64> = [3e9, 5e9, -3e9, -5.0, f64::NAN, -2147483649.0].iter().map(|&v| cast(v, DType::U32)).collect();
    assert_eq!(u32s, [3e9, 0.0, 2147483648.0, 4294967291.0, 2147483648.0, 2147483648.0]);
}

#[test]
fn errors_are_typed() {
    let x = gen(&[2, 3, 4], 1);
    let p = ActThreshLabel { ch: 2, ..Default::default() };
    assert!(matches!(p.apply(&x), Err(PostprocessError::Channel { ch: 2, channels: 2 })));
    let p = ActThreshLabel { activation: Activation::Softmax { dim: 3 }, ..Default::default() };
    assert!(matches!(p.apply(&x), Err(PostprocessError::SoftmaxDim { .. })));
    let p = ActThreshLabel { activation: Activation::Softmax { dim: -3 }, ..Default::default() };
    assert!(p.apply(&x).is_ok());
    assert!(matches!(ActThreshLabel::default().apply(&Array::zeros(vec![0, 3])), Err(PostprocessError::Empty(_))));
}

/// Reference script (cyto_dl's `ActThreshLabel.__call__` inlined as `atl`):
/// ```python
/// # Expected values for tests/postprocess.rs (cyto_dl ActThreshLabel/AutoThreshold semantics).
/// import numpy as np, torch
/// from skimage.exposure import rescale_intensity
/// from skimage.measure import label
/// from skimage.filters import threshold_otsu
///
/// def gen(shape, seed):
///     n = int(np.prod(shape))
///     i = np.arange(n, dtype=np.int64)
///     return ((((i * i * 31 + i * 7919 + seed * 104729)) % 1009) / 100.0 - 5.0).astype(np.float32).reshape(shape)
///
/// def atl(img, activation=torch.nn.Identity(), threshold=None, lab=False, dtype=np.uint8, ch=-1, rescale_dtype=None):
///     if rescale_dtype is not None:
///         dtype = rescale_dtype
///     img = torch.from_numpy(img)
///     if ch > 0:
///         img = img[ch]
///     img = activation(img.detach().cpu().float()).numpy()
///     if threshold is not None:
///         img = img > threshold
///     if lab:
///         img = label(img)
///     if rescale_dtype is not None:
///         img = rescale_intensity(img, out_range=rescale_dtype).astype(rescale_dtype)
///     return img.astype(dtype)
///
/// def out(name, a):
///     print(f"const {name}: [i64; {a.size}] = [{', '.join(str(int(v)) for v in a.ravel())}];")
///
/// x = gen((2, 3, 4, 5), 1)
/// out("SIGMOID_RESCALE_U8", atl(x, torch.nn.Sigmoid(), rescale_dtype=np.uint8))
/// out("IDENTITY_RESCALE_U16", atl(x, rescale_dtype=np.uint16))
/// out("CH1_TANH_RESCALE_I16", atl(x, torch.nn.Tanh(), ch=1, rescale_dtype=np.int16))
/// out("CH1_RELU_RESCALE_I16", atl(x, torch.nn.ReLU(), ch=1, rescale_dtype=np.int16))
/// out("SOFTMAX0_THRESH", atl(x, torch.nn.Softmax(dim=0), threshold=0.5, ch=0))
/// out("IDENTITY_CAST_U8", atl(x * 70, dtype=np.uint8))
/// out("IDENTITY_CAST_I8", atl(x * 70, dtype=np.int8))
/// y = gen((1, 6, 7, 8), 2)
/// out("SIGMOID_LABEL_U16", atl(y, torch.nn.Sigmoid(), threshold=0.98, lab=True, dtype=np.uint16))
/// out("LABEL_RESCALE_U8", atl(y, torch.nn.Sigmoid(), threshold=0.98, lab=True, rescale_dtype=np.uint8))
/// out("THRESH_RESCALE_U8", atl(y, threshold=1.0, rescale_dtype=np.uint8))
/// out("RAW_LABEL_U8", atl(y / 3, lab=True, ch=0) if False else atl(np.concatenate([y, y]) / 3, lab=True, ch=1))
/// m = np.zeros((1, 40, 40), np.float32); m[0, ::2, ::2] = 1
/// out("MANY_LABELS_U8", atl(m, threshold=0.5, lab=True))
/// out("CONST_RESCALE_U8", atl(np.full((1, 2, 2), 300.0, np.float32), rescale_dtype=np.uint8))
/// z = gen((1, 6, 7, 8), 3) ** 2
/// t = threshold_otsu(z)
/// print(f"const OTSU_T: f32 = {float(t)!r};")
/// out("OTSU_MASK", (z > t).astype(np.uint8))
/// out("LEGACY_RESCALE", rescale_intensity(x, out_range=np.uint8).astype(np.uint8))
/// out("LEGACY_SIGMOID_RESCALE", (torch.nn.Sigmoid()(torch.from_numpy(x)).numpy() * 255).astype(np.uint8))
/// out("LEGACY_LABEL", label(torch.nn.Sigmoid()(torch.from_numpy(y)).numpy() > 0.5).astype(np.uint16))
/// print("// max labels:", label(torch.sigmoid(torch.from_numpy(y)).numpy() > 0.98).max(), label(y[0].astype(np.int64) // 3 if False else (np.concatenate([y, y]) / 3)[1]).max(), label(m > 0.5).max())
/// ```
const SIGMOID_RESCALE_U8: [i64; 120] = [
    244, 220, 196, 197, 221, 245, 255, 16, 160, 253, 46, 249, 69, 0, 225, 88, 15, 2, 0, 0, 1, 6, 38, 168, 249, 11, 200, 2, 206, 15, 252, 199, 71, 18, 6, 4, 6,
    17, 68, 195, 251, 13, 200, 2, 191, 9, 248, 153, 30, 4, 0, 254, 254, 1, 10, 66, 212, 254, 48, 244, 30, 250, 126, 8, 253, 237, 198, 163, 161, 193, 233, 252,
    5, 98, 246, 16, 234, 24, 251, 168, 28, 2, 254, 250, 249, 251, 254, 5, 56, 215, 0, 78, 251, 80, 0, 218, 62, 6, 0, 252, 250, 251, 254, 4, 39, 189, 253, 36,
    242, 27, 250, 135, 11, 254, 244, 220, 199, 202, 226, 247,
];
const IDENTITY_RESCALE_U16: [i64; 120] = [
    52520, 44500, 40556, 40688, 44895, 53177, 65535, 15644, 36152, 60736, 23072, 55806, 26292, 854, 45815, 28527, 15315, 6178, 1117, 131, 3220, 10385, 21625,
    36941, 56332, 13475, 41016, 6310, 42002, 15447, 59290, 40885, 26555, 16301, 10122, 8019, 9991, 16038, 26161, 40359, 58633, 14658, 41082, 5258, 39833,
    12160, 54886, 35363, 19916, 8545, 1248, 64351, 65206, 3812, 12817, 25898, 43054, 64286, 23269, 52651, 19785, 57318, 32603, 11963, 61722, 49233, 40819,
    36481, 36218, 40030, 47918, 59882, 9596, 29710, 53900, 15841, 48181, 18273, 58764, 37007, 19325, 5718, 62511, 57055, 55675, 58370, 65140, 9662, 24583,
    43580, 328, 27476, 58698, 27673, 723, 44172, 25372, 10648, 0, 59750, 57252, 58830, 64483, 7887, 21691, 39570, 61525, 21231, 51336, 19193, 57449, 33457,
    13540, 64023, 52257, 44566, 40951, 41411, 45946, 54557,
];
const CH1_TANH_RESCALE_I16: [i64; 60] = [
    -31496, 32734, -328, -32651, 32760, 32348, 27705, 17127, 16155, 26464, 32143, 32753, -32712, -13826, 32667, -32381, 32191, -31960, 32747, 18953, -31659,
    -32753, 32762, 32731, 32710, 32744, 32767, -32711, -27612, 30483, -32767, -21576, 32746, -21008, -32767, 30849, -26350, -32690, -32768, 32753, 32733,
    32747, 32766, -32736, -30528, 25619, 32760, -30812, 32547, -31702, 32735, 3913, -32577, 32765, 32601, 31060, 27889, 28485, 31636, 32686,
];
const CH1_RELU_RESCALE_I16: [i64; 60] = [
    0, 24873, 0, 0, 29317, 16715, 8224, 3847, 3581, 7428, 15388, 27460, 0, 0, 21424, 0, 15653, 0, 26332, 4377, 0, 0, 30113, 24608, 23215, 25935, 32767, 0, 0,
    11010, 0, 0, 26266, 0, 0, 11607, 0, 0, 0, 27327, 24807, 26399, 32103, 0, 0, 6964, 29118, 0, 18837, 0, 25006, 795, 0, 31639, 19766, 12005, 8357, 8821,
    13398, 22087,
];
const SOFTMAX0_THRESH: [i64; 120] = [
    1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1,
    1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1,
    0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1,
];
const IDENTITY_CAST_U8: [i64; 120] = [
    211, 126, 84, 85, 130, 218, 94, 75, 37, 42, 154, 246, 189, 174, 140, 212, 72, 230, 176, 166, 199, 19, 139, 45, 252, 52, 88, 232, 99, 73, 27, 87, 191, 82,
    16, 250, 15, 79, 187, 81, 20, 65, 89, 221, 76, 38, 236, 28, 121, 0, 178, 81, 90, 205, 45, 184, 110, 80, 156, 212, 119, 6, 0, 36, 53, 176, 86, 40, 37, 78,
    162, 33, 11, 225, 226, 77, 165, 103, 21, 46, 114, 225, 61, 3, 245, 17, 89, 11, 170, 116, 168, 201, 21, 203, 172, 122, 179, 22, 165, 32, 5, 22, 82, 249,
    140, 73, 51, 135, 198, 113, 7, 8, 53, 77, 208, 126, 88, 93, 141, 233,
];
const IDENTITY_CAST_I8: [i64; 120] = [
    -45, 126, 84, 85, -126, -38, 94, 75, 37, 42, -102, -10, -67, -82, -116, -44, 72, -26, -80, -90, -57, 19, -117, 45, -4, 52, 88, -24, 99, 73, 27, 87, -65,
    82, 16, -6, 15, 79, -69, 81, 20, 65, 89, -35, 76, 38, -20, 28, 121, 0, -78, 81, 90, -51, 45, -72, 110, 80, -100, -44, 119, 6, 0, 36, 53, -80, 86, 40, 37,
    78, -94, 33, 11, -31, -30, 77, -91, 103, 21, 46, 114, -31, 61, 3, -11, 17, 89, 11, -86, 116, -88, -55, 21, -53, -84, 122, -77, 22, -91, 32, 5, 22, 82, -7,
    -116, 73, 51, -121, -58, 113, 7, 8, 53, 77, -48, 126, 88, 93, -115, -23,
];
const SIGMOID_LABEL_U16: [i64; 336] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0,
    0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 7, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0,
];
const LABEL_RESCALE_U8: [i64; 336] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 51, 0, 0, 0, 0, 0, 25, 0, 0, 0, 0, 0, 0, 25, 25, 25, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0,
    25, 0, 0, 0, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 0, 0, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25,
    0, 0, 0, 0, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 102, 102, 102, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 102, 0, 102, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 102, 0, 0, 0, 0, 0, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 153, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 102, 102, 0, 0, 0, 0, 102, 0, 0, 0, 0, 0, 0, 102,
    0, 0, 0, 0, 0, 0, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 178, 0, 0, 0, 127, 0, 0, 0, 178, 0, 0, 0, 127, 0, 0, 0, 178, 0, 0, 0, 204, 0, 0, 0, 102, 0, 0, 0, 0,
    0, 0, 102, 0, 0, 0, 0, 0, 0, 102, 0, 0, 229, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 178, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 178, 0, 0,
];
const THRESH_RESCALE_U8: [i64; 336] = [
    0, 0, 0, 0, 0, 255, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0,
    255, 0, 0, 255, 0, 255, 255, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 0, 0, 0, 0, 0, 0, 255, 255, 0, 255, 0, 0, 0, 255, 0,
    0, 255, 255, 255, 255, 255, 255, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0,
    0, 255, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 255, 0, 255, 0,
    255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 255, 255, 0, 255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0,
    255, 255, 0, 255, 0, 255, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 255, 255, 0, 255, 0, 255, 0,
    0, 255, 255, 255, 0, 0, 255, 255, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 255, 255, 0, 255, 0, 255, 255, 0, 0, 255, 255,
    255, 255, 255, 0, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 0, 0, 255, 255, 255, 0, 0, 255, 0, 255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0,
    255, 0, 255, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 255,
];
const RAW_LABEL_U8: [i64; 336] = [
    0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 2, 3, 0, 0, 4, 3, 3, 3, 3, 3, 2, 0, 0, 4, 0, 3, 0, 2, 0, 0, 4, 4, 3, 3, 3, 2, 2, 0, 0, 4, 0, 3, 0, 3, 0, 0, 4, 3, 3, 0,
    0, 3, 3, 5, 0, 0, 2, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 2, 0, 2, 0, 0, 4, 3, 0, 0, 0, 0, 0, 3, 4, 0, 3, 0, 0, 0, 3, 0, 4, 3, 3, 0, 0, 0, 0, 3,
    4, 0, 0, 2, 0, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 2, 0, 0, 2, 0, 0, 3, 0, 0, 2, 3, 3, 3, 3, 2, 0, 0, 0, 2, 0, 2, 0, 2, 3, 0, 0, 0, 2, 2, 2, 0, 0, 0, 3, 0,
    0, 2, 0, 0, 3, 0, 0, 2, 2, 2, 2, 2, 0, 0, 0, 2, 0, 3, 0, 3, 0, 0, 2, 3, 0, 0, 0, 0, 3, 2, 0, 0, 3, 0, 3, 0, 2, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 3, 0, 0, 2, 0,
    0, 3, 0, 0, 0, 2, 2, 2, 0, 0, 0, 3, 0, 0, 2, 0, 0, 3, 0, 0, 2, 2, 3, 3, 2, 0, 0, 0, 3, 0, 3, 0, 3, 0, 2, 3, 0, 0, 0, 0, 0, 0, 3, 2, 0, 3, 0, 0, 0, 3, 0, 0,
    2, 3, 3, 3, 3, 3, 2, 0, 0, 3, 0, 3, 0, 3, 0, 0, 2, 3, 3, 3, 3, 3, 2, 0, 0, 3, 0, 0, 0, 3, 0, 2, 3, 0, 0, 0, 0, 0, 0, 3, 0, 0, 3, 0, 3, 0, 2, 0, 0, 0, 6, 6,
    2, 2, 2, 0, 0, 3, 0, 0, 2, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0,
];
const MANY_LABELS_U8: [i64; 1600] = [
    1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0, 16, 0, 17, 0, 18, 0, 19, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 21, 0, 22, 0, 23, 0, 24, 0, 25, 0, 26, 0, 27, 0, 28, 0, 29,
    0, 30, 0, 31, 0, 32, 0, 33, 0, 34, 0, 35, 0, 36, 0, 37, 0, 38, 0, 39, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 0, 42, 0, 43, 0, 44, 0, 45, 0, 46, 0, 47, 0, 48, 0, 49, 0, 50, 0, 51, 0, 52, 0, 53, 0, 54, 0, 55, 0, 56,
    0, 57, 0, 58, 0, 59, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 61,
    0, 62, 0, 63, 0, 64, 0, 65, 0, 66, 0, 67, 0, 68, 0, 69, 0, 70, 0, 71, 0, 72, 0, 73, 0, 74, 0, 75, 0, 76, 0, 77, 0, 78, 0, 79, 0, 80, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 81, 0, 82, 0, 83, 0, 84, 0, 85, 0, 86, 0, 87, 0, 88,
    0, 89, 0, 90, 0, 91, 0, 92, 0, 93, 0, 94, 0, 95, 0, 96, 0, 97, 0, 98, 0, 99, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 101, 0, 102, 0, 103, 0, 104, 0, 105, 0, 106, 0, 107, 0, 108, 0, 109, 0, 110, 0, 111, 0, 112, 0, 113,
    0, 114, 0, 115, 0, 116, 0, 117, 0, 118, 0, 119, 0, 120, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 121, 0, 122, 0, 123, 0, 124, 0, 125, 0, 126, 0, 127, 0, 128, 0, 129, 0, 130, 0, 131, 0, 132, 0, 133, 0, 134, 0, 135, 0, 136, 0,
    137, 0, 138, 0, 139, 0, 140, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    141, 0, 142, 0, 143, 0, 144, 0, 145, 0, 146, 0, 147, 0, 148, 0, 149, 0, 150, 0, 151, 0, 152, 0, 153, 0, 154, 0, 155, 0, 156, 0, 157, 0, 158, 0, 159, 0,
    160, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 161, 0, 162, 0, 163, 0,
    164, 0, 165, 0, 166, 0, 167, 0, 168, 0, 169, 0, 170, 0, 171, 0, 172, 0, 173, 0, 174, 0, 175, 0, 176, 0, 177, 0, 178, 0, 179, 0, 180, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 181, 0, 182, 0, 183, 0, 184, 0, 185, 0, 186, 0, 187,
    0, 188, 0, 189, 0, 190, 0, 191, 0, 192, 0, 193, 0, 194, 0, 195, 0, 196, 0, 197, 0, 198, 0, 199, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 201, 0, 202, 0, 203, 0, 204, 0, 205, 0, 206, 0, 207, 0, 208, 0, 209, 0, 210, 0,
    211, 0, 212, 0, 213, 0, 214, 0, 215, 0, 216, 0, 217, 0, 218, 0, 219, 0, 220, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 221, 0, 222, 0, 223, 0, 224, 0, 225, 0, 226, 0, 227, 0, 228, 0, 229, 0, 230, 0, 231, 0, 232, 0, 233, 0, 234,
    0, 235, 0, 236, 0, 237, 0, 238, 0, 239, 0, 240, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 241, 0, 242, 0, 243, 0, 244, 0, 245, 0, 246, 0, 247, 0, 248, 0, 249, 0, 250, 0, 251, 0, 252, 0, 253, 0, 254, 0, 255, 0, 0, 0, 1, 0, 2, 0, 3,
    0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9,
    0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0, 16, 0, 17, 0, 18, 0, 19, 0, 20, 0, 21, 0, 22, 0, 23, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0, 26, 0, 27, 0, 28, 0, 29, 0, 30, 0, 31, 0, 32, 0, 33, 0, 34, 0, 35, 0, 36, 0,
    37, 0, 38, 0, 39, 0, 40, 0, 41, 0, 42, 0, 43, 0, 44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 45, 0, 46, 0, 47, 0, 48, 0, 49, 0, 50, 0, 51, 0, 52, 0, 53, 0, 54, 0, 55, 0, 56, 0, 57, 0, 58, 0, 59, 0, 60, 0, 61, 0, 62, 0, 63, 0,
    64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 65, 0, 66, 0, 67, 0, 68, 0,
    69, 0, 70, 0, 71, 0, 72, 0, 73, 0, 74, 0, 75, 0, 76, 0, 77, 0, 78, 0, 79, 0, 80, 0, 81, 0, 82, 0, 83, 0, 84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 85, 0, 86, 0, 87, 0, 88, 0, 89, 0, 90, 0, 91, 0, 92, 0, 93, 0, 94, 0, 95, 0,
    96, 0, 97, 0, 98, 0, 99, 0, 100, 0, 101, 0, 102, 0, 103, 0, 104, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 105, 0, 106, 0, 107, 0, 108, 0, 109, 0, 110, 0, 111, 0, 112, 0, 113, 0, 114, 0, 115, 0, 116, 0, 117, 0, 118, 0, 119, 0,
    120, 0, 121, 0, 122, 0, 123, 0, 124, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 125, 0, 126, 0, 127, 0, 128, 0, 129, 0, 130, 0, 131, 0, 132, 0, 133, 0, 134, 0, 135, 0, 136, 0, 137, 0, 138, 0, 139, 0, 140, 0, 141, 0, 142, 0, 143,
    0, 144, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
const CONST_RESCALE_U8: [i64; 4] = [255, 255, 255, 255];
const OTSU_T: f32 = 10.292002;
const OTSU_MASK: [i64; 336] = [
    0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0,
    0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1,
    0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0,
    1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1,
    1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1,
    1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
];
const LEGACY_RESCALE: [i64; 120] = [
    204, 173, 157, 158, 174, 206, 255, 60, 140, 236, 89, 217, 102, 3, 178, 111, 59, 24, 4, 0, 12, 40, 84, 143, 219, 52, 159, 24, 163, 60, 230, 159, 103, 63,
    39, 31, 38, 62, 101, 157, 228, 57, 159, 20, 154, 47, 213, 137, 77, 33, 4, 250, 253, 14, 49, 100, 167, 250, 90, 204, 76, 223, 126, 46, 240, 191, 158, 141,
    140, 155, 186, 233, 37, 115, 209, 61, 187, 71, 228, 143, 75, 22, 243, 222, 216, 227, 253, 37, 95, 169, 1, 106, 228, 107, 2, 171, 98, 41, 0, 232, 222, 228,
    250, 30, 84, 153, 239, 82, 199, 74, 223, 130, 52, 249, 203, 173, 159, 161, 178, 212,
];
const LEGACY_SIGMOID_RESCALE: [i64; 120] = [
    243, 218, 195, 196, 220, 244, 253, 17, 160, 251, 48, 247, 70, 2, 224, 88, 16, 4, 2, 1, 2, 8, 40, 167, 248, 13, 199, 4, 205, 17, 250, 198, 72, 19, 7, 5, 7,
    18, 69, 194, 250, 15, 199, 3, 190, 10, 246, 153, 32, 6, 2, 252, 253, 3, 11, 67, 211, 252, 49, 243, 31, 249, 126, 10, 251, 236, 197, 163, 161, 192, 232,
    251, 7, 99, 245, 18, 233, 25, 250, 168, 29, 4, 252, 248, 247, 249, 253, 7, 57, 214, 1, 79, 250, 81, 1, 217, 63, 8, 1, 250, 249, 250, 252, 5, 40, 188, 251,
    38, 240, 29, 249, 135, 13, 252, 242, 219, 198, 201, 225, 246,
];
const LEGACY_LABEL: [i64; 336] = [
    1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1,
    1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0,
    1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1,
    0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0,
    0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0,
    0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1,
];

/// The seed document's legacy functions through the `Postprocess` step the generated code uses.
#[test]
fn legacy_functions_as_postprocess_steps() {
    let img = cytodl_runtime::Array::new(vec![1, 2, 2], vec![-2.0, 0.0, 1.0, 3.0]).unwrap();
    let s = Postprocess::SigmoidRescale.apply(&img).unwrap();
    let want: Vec<f32> = [-2.0f32, 0.0, 1.0, 3.0].iter().map(|v| ((1.0 / (1.0 + (-v).exp())) * 255.0).floor()).collect();
    assert_eq!(s.array.data(), &want[..]);
    assert_eq!(s.dtype, cytodl_runtime::io::DType::U8);
    let r = Postprocess::Rescale.apply(&img).unwrap();
    assert_eq!(r.array.data(), &[0.0, 102.0, 153.0, 255.0]);
    assert_eq!(Postprocess::default(), Postprocess::ActThreshLabel(ActThreshLabel::default()));
}

/// Heads without `postprocess` save cyto_dl's defaults: uint8 for a BaseHead (`ActThreshLabel()`),
/// float32 for a GANHead (its `detach`).
#[test]
fn default_postprocessing_depends_on_the_head() {
    use cytodl_runtime::config::component::declared_defaults;
    use cytodl_runtime::config::{BaseHead, GANHead, HeadConfig, LossConfig, MSELoss, Map};
    use cytodl_runtime::io::DType;
    use cytodl_runtime::postprocess::{head_postprocess, Postprocess};
    let mse = LossConfig::MSELoss(declared_defaults::<MSELoss>());
    let heads =
        Map::of([("base", HeadConfig::BaseHead(BaseHead { loss: mse, postprocess: None })), ("gan", HeadConfig::GANHead(declared_defaults::<GANHead>()))]);
    let post = head_postprocess(&heads);
    let dtype = |p: &Postprocess| match p {
        Postprocess::ActThreshLabel(a) => a.dtype,
        other => panic!("{other:?}"),
    };
    assert_eq!((dtype(&post["base"].0), dtype(&post["base"].1)), (DType::U8, DType::U8));
    assert_eq!((dtype(&post["gan"].0), dtype(&post["gan"].1)), (DType::F32, DType::F32));
}
