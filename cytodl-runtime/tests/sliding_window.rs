//! Parity of [`SlidingWindow`] with MONAI 1.5.2's `sliding_window_inference`.
//!
//! - The six `sw_*` cases of `fixtures/monai` (roi [8,16,16], sw_batch_size 3, overlap
//!   0/0.25/0.5, constant/gaussian) with the predictor `avg_pool3d(3, 1, 1, count_include_pad)`,
//!   whose zero padding at window borders makes every seam visible: max |diff| <= 1e-5.
//! - A small multi-head case (batch 2, padding, super-resolution head) against values MONAI
//!   printed (script in `multi_head_superres_padding_matches_monai`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cytodl_runtime::infer::{dense_patch_starts, importance_map, scan_interval, BlendMode, PadMode, SlidingWindow};
use cytodl_runtime::Array;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monai")
}

/// safetensors: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, raw LE data.
fn load_safetensors(path: &Path) -> HashMap<String, Array> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = HashMap::new();
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(info["dtype"], "F32", "{name}");
        let usizes = |v: &Value| -> Vec<usize> { v.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect() };
        let shape = usizes(&info["shape"]);
        let off = usizes(&info["data_offsets"]);
        let vals = data[off[0]..off[1]].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        out.insert(name.clone(), Array::new(shape, vals).unwrap());
    }
    out
}

/// torch `avg_pool3d(kernel 3, stride 1, padding 1, count_include_pad=True)` on [B, C, Z, Y, X].
fn avg_pool3d(a: &Array) -> Array {
    let s = a.shape();
    let (z, y, x) = (s[2] as isize, s[3] as isize, s[4] as isize);
    let vol = (z * y * x) as usize;
    let mut out = Vec::with_capacity(a.len());
    for bc in 0..s[0] * s[1] {
        let v = &a.data()[bc * vol..(bc + 1) * vol];
        for k in 0..z {
            for j in 0..y {
                for i in 0..x {
                    let mut sum = 0.0f32;
                    for dk in -1..=1 {
                        for dj in -1..=1 {
                            for di in -1..=1 {
                                let (kk, jj, ii) = (k + dk, j + dj, i + di);
                                if (0..z).contains(&kk) && (0..y).contains(&jj) && (0..x).contains(&ii) {
                                    sum += v[((kk * y + jj) * x + ii) as usize];
                                }
                            }
                        }
                    }
                    out.push(sum / 27.0);
                }
            }
        }
    }
    Array::new(s.to_vec(), out).unwrap()
}

fn max_abs_diff(a: &Array, b: &Array) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn monai_fixture_cases() {
    let t = load_safetensors(&fixtures().join("monai.safetensors"));
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap()).unwrap();
    let input = &t["sw_input"];
    let mut n = 0;
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !name.starts_with("sw_") {
            continue;
        }
        let p = &case["params"];
        let sw = SlidingWindow {
            roi_size: p["roi_size"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect(),
            sw_batch_size: p["sw_batch_size"].as_u64().unwrap() as usize,
            overlap: vec![p["overlap"].as_f64().unwrap()],
            mode: match p["mode"].as_str().unwrap() {
                "constant" => BlendMode::Constant,
                "gaussian" => BlendMode::Gaussian,
                m => panic!("mode {m}"),
            },
            sigma_scale: vec![p["sigma_scale"].as_f64().unwrap()],
            padding_mode: PadMode::Constant,
            cval: p["cval"].as_f64().unwrap() as f32,
        };
        let mut calls = 0;
        let out = sw
            .infer(input, |w: &Array| -> Result<Vec<Array>, std::convert::Infallible> {
                calls += 1;
                assert!(w.shape()[0] <= 3 && w.shape()[2..] == [8, 16, 16]);
                Ok(vec![avg_pool3d(w)])
            })
            .unwrap();
        assert_eq!(out.len(), 1);
        let want = &t[name];
        let err = max_abs_diff(&out[0], want);
        eprintln!("{name}: {calls} predictor calls, max |diff| = {err:e}");
        assert!(err <= 1e-5, "{name}: max |diff| {err}");
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn window_grid_matches_monai() {
    // dense_patch_slices((13, 37, 42), (8, 16, 16), interval) for overlap 0.25 -> interval (6, 12, 12).
    let iv = scan_interval(&[13, 37, 42], &[8, 16, 16], &[0.25; 3]);
    assert_eq!(iv, vec![6, 12, 12]);
    let s = dense_patch_starts(&[13, 37, 42], &[8, 16, 16], &iv);
    let z: Vec<usize> = s.iter().map(|v| v[0]).collect();
    assert_eq!(s.len(), 2 * 3 * 4);
    assert_eq!(&s[..5], &[vec![0, 0, 0], vec![0, 0, 12], vec![0, 0, 24], vec![0, 0, 26], vec![0, 12, 0]]);
    assert_eq!(s[s.len() - 1], vec![5, 21, 26]);
    assert_eq!(z.iter().filter(|&&v| v == 5).count(), 12);
    // roi == image -> one window; overlap 0 -> int(roi) steps.
    assert_eq!(scan_interval(&[8, 20], &[8, 16], &[0.5, 0.0]), vec![8, 16]);
    assert_eq!(dense_patch_starts(&[8, 20], &[8, 16], &[8, 16]), vec![vec![0, 0], vec![0, 4]]);
}

#[test]
fn gaussian_importance_map_matches_monai() {
    // monai.data.utils.compute_importance_map((3, 4), "gaussian", 0.125)
    let m = importance_map(&[3, 4], BlendMode::Gaussian, &[0.125]);
    let want = [
        0.0010000000474974513, 0.017325852066278458, 0.017325852066278458, 0.0010000000474974513,
        0.011108996346592903, 0.6065306663513184, 0.6065306663513184, 0.011108996346592903,
        0.0010000000474974513, 0.017325852066278458, 0.017325852066278458, 0.0010000000474974513f32,
    ];
    for (g, w) in m.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-7 * w, "{m:?}");
    }
}

/// MONAI values for `multi_head_superres_padding_matches_monai`, printed by:
/// ```python
/// import torch, torch.nn.functional as F
/// from monai.inferers import sliding_window_inference
/// x = (torch.arange(2*1*3*3*4, dtype=torch.float32).reshape(2,1,3,3,4) * 37 % 101) / 100
/// def pred(b):
///     a = F.avg_pool3d(b, 3, stride=1, padding=1, count_include_pad=True)
///     return {"seg": a, "sr": F.interpolate(a * 2 + 1, scale_factor=(1, 2, 2), mode="nearest")}
/// for pm in ["replicate", "reflect"]:
///     y = sliding_window_inference(x, roi_size=(3, 5, 3), sw_batch_size=3, predictor=pred, overlap=0.5, mode="gaussian", padding_mode=pm)
///     print(pm, {k: list(v.shape) for k, v in y.items()})
///     for k, v in y.items():
///         print(k, ", ".join(f"{t:.8e}" for t in v.flatten().tolist()))
/// ```
const REPLICATE_SEG: [f32; 72] = [
    2.03333348e-01, 2.88543969e-01, 3.08281124e-01, 1.95555553e-01, 2.30370358e-01, 3.15488636e-01,
    3.00817043e-01, 1.85185179e-01, 2.57407397e-01, 3.25040996e-01, 2.78329670e-01, 1.74814805e-01,
    3.07407409e-01, 4.73663390e-01, 5.06070912e-01, 3.51851821e-01, 3.29259247e-01, 4.86914635e-01,
    4.82953608e-01, 3.36296290e-01, 3.51111084e-01, 5.00165820e-01, 4.59836215e-01, 3.20740730e-01,
    2.31481478e-01, 3.25009108e-01, 3.44746232e-01, 2.61111110e-01, 2.21111104e-01, 3.19827437e-01,
    3.41298014e-01, 2.50740737e-01, 2.10740760e-01, 2.95057684e-01, 3.14794838e-01, 2.40370363e-01,
    2.12962985e-01, 3.39857399e-01, 3.59594524e-01, 2.42592603e-01, 2.02592582e-01, 3.31035435e-01,
    3.52506042e-01, 2.32222214e-01, 1.92222208e-01, 3.09905976e-01, 3.29643130e-01, 2.21851856e-01,
    3.59259278e-01, 5.50721169e-01, 5.10391712e-01, 3.28888923e-01, 3.43703687e-01, 5.27603805e-01,
    4.87274379e-01, 3.13333333e-01, 3.28148127e-01, 5.04486382e-01, 4.64156985e-01, 2.97777802e-01,
    2.78518498e-01, 3.76322508e-01, 3.29611272e-01, 1.95925921e-01, 2.68148154e-01, 3.71516317e-01,
    3.20702642e-01, 1.85555562e-01, 2.57777810e-01, 3.46371114e-01, 2.99659878e-01, 1.75185204e-01,
];
const REPLICATE_SR: [f32; 288] = [
    1.40666676e+00, 1.40666676e+00, 1.57708776e+00, 1.57708776e+00, 1.61656225e+00, 1.61656225e+00,
    1.39111114e+00, 1.39111114e+00, 1.40666676e+00, 1.40666676e+00, 1.57708776e+00, 1.57708776e+00,
    1.61656225e+00, 1.61656225e+00, 1.39111114e+00, 1.39111114e+00, 1.46074069e+00, 1.46074069e+00,
    1.63097715e+00, 1.63097715e+00, 1.60163391e+00, 1.60163391e+00, 1.37037039e+00, 1.37037039e+00,
    1.46074069e+00, 1.46074069e+00, 1.63097715e+00, 1.63097715e+00, 1.60163391e+00, 1.60163391e+00,
    1.37037039e+00, 1.37037039e+00, 1.51481485e+00, 1.51481485e+00, 1.65008199e+00, 1.65008199e+00,
    1.55665934e+00, 1.55665934e+00, 1.34962964e+00, 1.34962964e+00, 1.51481485e+00, 1.51481485e+00,
    1.65008199e+00, 1.65008199e+00, 1.55665934e+00, 1.55665934e+00, 1.34962964e+00, 1.34962964e+00,
    1.61481476e+00, 1.61481476e+00, 1.94732678e+00, 1.94732678e+00, 2.01214170e+00, 2.01214170e+00,
    1.70370364e+00, 1.70370364e+00, 1.61481476e+00, 1.61481476e+00, 1.94732678e+00, 1.94732678e+00,
    2.01214170e+00, 2.01214170e+00, 1.70370364e+00, 1.70370364e+00, 1.65851855e+00, 1.65851855e+00,
    1.97382915e+00, 1.97382915e+00, 1.96590710e+00, 1.96590710e+00, 1.67259264e+00, 1.67259264e+00,
    1.65851855e+00, 1.65851855e+00, 1.97382915e+00, 1.97382915e+00, 1.96590710e+00, 1.96590710e+00,
    1.67259264e+00, 1.67259264e+00, 1.70222211e+00, 1.70222211e+00, 2.00033164e+00, 2.00033164e+00,
    1.91967237e+00, 1.91967237e+00, 1.64148140e+00, 1.64148140e+00, 1.70222211e+00, 1.70222211e+00,
    2.00033164e+00, 2.00033164e+00, 1.91967237e+00, 1.91967237e+00, 1.64148140e+00, 1.64148140e+00,
    1.46296299e+00, 1.46296299e+00, 1.65001810e+00, 1.65001810e+00, 1.68949234e+00, 1.68949234e+00,
    1.52222228e+00, 1.52222228e+00, 1.46296299e+00, 1.46296299e+00, 1.65001810e+00, 1.65001810e+00,
    1.68949234e+00, 1.68949234e+00, 1.52222228e+00, 1.52222228e+00, 1.44222224e+00, 1.44222224e+00,
    1.63965487e+00, 1.63965487e+00, 1.68259585e+00, 1.68259585e+00, 1.50148153e+00, 1.50148153e+00,
    1.44222224e+00, 1.44222224e+00, 1.63965487e+00, 1.63965487e+00, 1.68259585e+00, 1.68259585e+00,
    1.50148153e+00, 1.50148153e+00, 1.42148149e+00, 1.42148149e+00, 1.59011543e+00, 1.59011543e+00,
    1.62958968e+00, 1.62958968e+00, 1.48074079e+00, 1.48074079e+00, 1.42148149e+00, 1.42148149e+00,
    1.59011543e+00, 1.59011543e+00, 1.62958968e+00, 1.62958968e+00, 1.48074079e+00, 1.48074079e+00,
    1.42592597e+00, 1.42592597e+00, 1.67971480e+00, 1.67971480e+00, 1.71918905e+00, 1.71918905e+00,
    1.48518515e+00, 1.48518515e+00, 1.42592597e+00, 1.42592597e+00, 1.67971480e+00, 1.67971480e+00,
    1.71918905e+00, 1.71918905e+00, 1.48518515e+00, 1.48518515e+00, 1.40518522e+00, 1.40518522e+00,
    1.66207087e+00, 1.66207087e+00, 1.70501196e+00, 1.70501196e+00, 1.46444440e+00, 1.46444440e+00,
    1.40518522e+00, 1.40518522e+00, 1.66207087e+00, 1.66207087e+00, 1.70501196e+00, 1.70501196e+00,
    1.46444440e+00, 1.46444440e+00, 1.38444448e+00, 1.38444448e+00, 1.61981189e+00, 1.61981189e+00,
    1.65928614e+00, 1.65928614e+00, 1.44370365e+00, 1.44370365e+00, 1.38444448e+00, 1.38444448e+00,
    1.61981189e+00, 1.61981189e+00, 1.65928614e+00, 1.65928614e+00, 1.44370365e+00, 1.44370365e+00,
    1.71851850e+00, 1.71851850e+00, 2.10144234e+00, 2.10144234e+00, 2.02078342e+00, 2.02078342e+00,
    1.65777779e+00, 1.65777779e+00, 1.71851850e+00, 1.71851850e+00, 2.10144234e+00, 2.10144234e+00,
    2.02078342e+00, 2.02078342e+00, 1.65777779e+00, 1.65777779e+00, 1.68740737e+00, 1.68740737e+00,
    2.05520749e+00, 2.05520749e+00, 1.97454870e+00, 1.97454870e+00, 1.62666667e+00, 1.62666667e+00,
    1.68740737e+00, 1.68740737e+00, 2.05520749e+00, 2.05520749e+00, 1.97454870e+00, 1.97454870e+00,
    1.62666667e+00, 1.62666667e+00, 1.65629625e+00, 1.65629625e+00, 2.00897264e+00, 2.00897264e+00,
    1.92831385e+00, 1.92831385e+00, 1.59555554e+00, 1.59555554e+00, 1.65629625e+00, 1.65629625e+00,
    2.00897264e+00, 2.00897264e+00, 1.92831385e+00, 1.92831385e+00, 1.59555554e+00, 1.59555554e+00,
    1.55703700e+00, 1.55703700e+00, 1.75264490e+00, 1.75264490e+00, 1.65922260e+00, 1.65922260e+00,
    1.39185190e+00, 1.39185190e+00, 1.55703700e+00, 1.55703700e+00, 1.75264490e+00, 1.75264490e+00,
    1.65922260e+00, 1.65922260e+00, 1.39185190e+00, 1.39185190e+00, 1.53629637e+00, 1.53629637e+00,
    1.74303269e+00, 1.74303269e+00, 1.64140522e+00, 1.64140522e+00, 1.37111115e+00, 1.37111115e+00,
    1.53629637e+00, 1.53629637e+00, 1.74303269e+00, 1.74303269e+00, 1.64140522e+00, 1.64140522e+00,
    1.37111115e+00, 1.37111115e+00, 1.51555562e+00, 1.51555562e+00, 1.69274223e+00, 1.69274223e+00,
    1.59931970e+00, 1.59931970e+00, 1.35037041e+00, 1.35037041e+00, 1.51555562e+00, 1.51555562e+00,
    1.69274223e+00, 1.69274223e+00, 1.59931970e+00, 1.59931970e+00, 1.35037041e+00, 1.35037041e+00,
];
const REFLECT_SEG: [f32; 72] = [
    2.35555544e-01, 3.14280331e-01, 3.34017456e-01, 2.27777764e-01, 2.30370358e-01, 3.15488636e-01,
    3.00817043e-01, 1.85185179e-01, 2.62592584e-01, 3.32528800e-01, 3.19041729e-01, 2.17407405e-01,
    3.37037057e-01, 5.17696321e-01, 5.50103962e-01, 3.81481439e-01, 3.29259247e-01, 4.86914635e-01,
    4.82953608e-01, 3.36296290e-01, 3.58888865e-01, 5.30947566e-01, 5.26986599e-01, 3.65925938e-01,
    2.26296291e-01, 3.54928672e-01, 3.74665767e-01, 2.93333381e-01, 2.21111104e-01, 3.19827437e-01,
    3.41298014e-01, 2.50740737e-01, 2.15925917e-01, 3.39952946e-01, 3.59690130e-01, 2.82962978e-01,
    1.70370385e-01, 2.94962168e-01, 3.14699292e-01, 2.37407416e-01, 2.02592582e-01, 3.31035435e-01,
    3.52506042e-01, 2.32222214e-01, 1.59999982e-01, 2.79986411e-01, 2.99723566e-01, 2.27037042e-01,
    3.14074099e-01, 4.83570814e-01, 4.79609907e-01, 3.21111143e-01, 3.43703687e-01, 5.27603805e-01,
    4.87274379e-01, 3.13333333e-01, 2.98518509e-01, 4.60453391e-01, 4.56492484e-01, 3.05555552e-01,
    2.35925928e-01, 3.35610449e-01, 3.22123438e-01, 1.90740749e-01, 2.68148154e-01, 3.71516317e-01,
    3.20702642e-01, 1.85555562e-01, 2.25555554e-01, 3.20634782e-01, 3.07147712e-01, 1.80370390e-01,
];

/// Nearest upsampling by (1, 2, 2) of [B, C, Z, Y, X].
fn upsample_yx2(a: &Array) -> Array {
    let s = a.shape();
    let mut out = Vec::with_capacity(a.len() * 4);
    for zrow in a.data().chunks_exact(s[3] * s[4]) {
        for y in 0..s[3] * 2 {
            for x in 0..s[4] * 2 {
                out.push(zrow[(y / 2) * s[4] + x / 2]);
            }
        }
    }
    Array::new(vec![s[0], s[1], s[2], s[3] * 2, s[4] * 2], out).unwrap()
}

#[test]
fn multi_head_superres_padding_matches_monai() {
    // Batch 2 (windows straddle images in batches of 3), Y padded 3 -> 5 (1 before, 1 after),
    // overlap 0.5, gaussian, a second head at twice the Y/X resolution.
    let x: Vec<f32> = (0..72).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
    let x = Array::new(vec![2, 1, 3, 3, 4], x).unwrap();
    for (pm, seg, sr) in [(PadMode::Replicate, &REPLICATE_SEG[..], Some(&REPLICATE_SR[..])), (PadMode::Reflect, &REFLECT_SEG[..], None)] {
        let mut sw = SlidingWindow::new(vec![3, 5, 3]);
        sw.sw_batch_size = 3;
        sw.overlap = vec![0.5];
        sw.mode = BlendMode::Gaussian;
        sw.padding_mode = pm;
        let out = sw
            .infer(&x, |w: &Array| -> Result<Vec<Array>, std::convert::Infallible> {
                let a = avg_pool3d(w);
                let mut b = a.clone();
                b.data_mut().iter_mut().for_each(|v| *v = *v * 2.0 + 1.0);
                Ok(vec![a, upsample_yx2(&b)])
            })
            .unwrap();
        assert_eq!(out[0].shape(), &[2, 1, 3, 3, 4]);
        assert_eq!(out[1].shape(), &[2, 1, 3, 6, 8]);
        let e0 = max_abs_diff(&out[0], &Array::new(vec![2, 1, 3, 3, 4], seg.to_vec()).unwrap());
        assert!(e0 <= 1e-6, "{pm:?} seg {e0}");
        if let Some(sr) = sr {
            let e1 = max_abs_diff(&out[1], &Array::new(vec![2, 1, 3, 6, 8], sr.to_vec()).unwrap());
            assert!(e1 <= 1e-6, "{pm:?} sr {e1}");
        }
    }
}

#[test]
fn errors_are_typed() {
    use cytodl_runtime::infer::InferError;
    let x = Array::zeros(vec![1, 1, 4, 4]);
    let sw = SlidingWindow::new(vec![2, 2, 2]);
    let ok = |w: &Array| -> Result<Vec<Array>, String> { Ok(vec![w.clone()]) };
    assert!(matches!(sw.infer(&x, ok), Err(InferError::InputShape { .. })));
    let mut sw = SlidingWindow::new(vec![2, 2]);
    sw.overlap = vec![1.0];
    assert!(matches!(sw.infer(&x, ok), Err(InferError::Overlap(_))));
    let sw = SlidingWindow::new(vec![2, 2]);
    let failing = |_: &Array| -> Result<Vec<Array>, String> { Err("boom".into()) };
    assert!(matches!(sw.infer(&x, failing), Err(InferError::Predictor(e)) if e == "boom"));
    let none = |_: &Array| -> Result<Vec<Array>, String> { Ok(vec![]) };
    assert!(matches!(sw.infer(&x, none), Err(InferError::NoOutputs)));
    let mut calls = 0;
    let changing = |w: &Array| -> Result<Vec<Array>, String> {
        calls += 1;
        Ok(vec![Array::zeros(vec![w.shape()[0], calls, 2, 2])])
    };
    assert!(matches!(sw.infer(&x, changing), Err(InferError::OutputChanged { .. })));
    let mut sw = SlidingWindow::new(vec![1, 12]);
    sw.padding_mode = PadMode::Reflect;
    assert!(matches!(sw.infer(&x, ok), Err(InferError::ReflectPad { .. })));
}
