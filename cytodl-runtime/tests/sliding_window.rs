//! Parity of [`SlidingWindow`] with MONAI 1.5.2's `sliding_window_inference`.
//!
//! - The six `sw_*` cases of `fixtures/monai` (roi [8,16,16], sw_batch_size 3, overlap
//!   0/0.25/0.5, constant/gaussian) with the predictor `avg_pool3d(3, 1, 1, count_include_pad)`,
//!   whose zero padding at window borders makes every seam visible: max |diff| <= 1e-5.
//! - A small multi-head case (batch 2, padding, super-resolution head) against values MONAI
//!   printed (script in `multi_head_superres_padding_matches_monai`).
//!
//! Oracle: `scripts/oracles/sliding_window_monai.py` prints the expected numbers below; `--check`
//! compares them with this file.

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

fn max_abs_diff(a: &Array, b: &Array) -> f64 {
    assert_eq!(a.shape(), b.shape());
    cytodl_testkit::max_abs_diff(a.data(), b.data())
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
    let want = [0.001, 0.017325852, 0.017325852, 0.001, 0.011108996, 0.60653067, 0.60653067, 0.011108996, 0.001, 0.017325852, 0.017325852, 0.001f32];
    assert_eq!(m.len(), want.len(), "{m:?}");
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
    0.20333335, 0.28854397, 0.30828112, 0.19555555, 0.23037036, 0.31548864, 0.30081704, 0.18518518, 0.2574074, 0.325041, 0.27832967, 0.1748148, 0.3074074,
    0.4736634, 0.5060709, 0.35185182, 0.32925925, 0.48691463, 0.4829536, 0.3362963, 0.35111108, 0.5001658, 0.4598362, 0.32074073, 0.23148148, 0.3250091,
    0.34474623, 0.2611111, 0.2211111, 0.31982744, 0.341298, 0.25074074, 0.21074076, 0.29505768, 0.31479484, 0.24037036, 0.21296299, 0.3398574, 0.35959452,
    0.2425926, 0.20259258, 0.33103544, 0.35250604, 0.23222221, 0.19222221, 0.30990598, 0.32964313, 0.22185186, 0.35925928, 0.55072117, 0.5103917, 0.32888892,
    0.3437037, 0.5276038, 0.48727438, 0.31333333, 0.32814813, 0.5044864, 0.464157, 0.2977778, 0.2785185, 0.3763225, 0.32961127, 0.19592592, 0.26814815,
    0.37151632, 0.32070264, 0.18555556, 0.2577778, 0.3463711, 0.29965988, 0.1751852,
];
const REPLICATE_SR: [f32; 288] = [
    1.4066668, 1.4066668, 1.5770878, 1.5770878, 1.6165622, 1.6165622, 1.3911111, 1.3911111, 1.4066668, 1.4066668, 1.5770878, 1.5770878, 1.6165622, 1.6165622,
    1.3911111, 1.3911111, 1.4607407, 1.4607407, 1.6309772, 1.6309772, 1.6016339, 1.6016339, 1.3703704, 1.3703704, 1.4607407, 1.4607407, 1.6309772, 1.6309772,
    1.6016339, 1.6016339, 1.3703704, 1.3703704, 1.5148149, 1.5148149, 1.650082, 1.650082, 1.5566593, 1.5566593, 1.3496296, 1.3496296, 1.5148149, 1.5148149,
    1.650082, 1.650082, 1.5566593, 1.5566593, 1.3496296, 1.3496296, 1.6148148, 1.6148148, 1.9473268, 1.9473268, 2.0121417, 2.0121417, 1.7037036, 1.7037036,
    1.6148148, 1.6148148, 1.9473268, 1.9473268, 2.0121417, 2.0121417, 1.7037036, 1.7037036, 1.6585186, 1.6585186, 1.9738292, 1.9738292, 1.9659071, 1.9659071,
    1.6725926, 1.6725926, 1.6585186, 1.6585186, 1.9738292, 1.9738292, 1.9659071, 1.9659071, 1.6725926, 1.6725926, 1.7022221, 1.7022221, 2.0003316, 2.0003316,
    1.9196724, 1.9196724, 1.6414814, 1.6414814, 1.7022221, 1.7022221, 2.0003316, 2.0003316, 1.9196724, 1.9196724, 1.6414814, 1.6414814, 1.462963, 1.462963,
    1.6500181, 1.6500181, 1.6894923, 1.6894923, 1.5222223, 1.5222223, 1.462963, 1.462963, 1.6500181, 1.6500181, 1.6894923, 1.6894923, 1.5222223, 1.5222223,
    1.4422222, 1.4422222, 1.6396549, 1.6396549, 1.6825958, 1.6825958, 1.5014815, 1.5014815, 1.4422222, 1.4422222, 1.6396549, 1.6396549, 1.6825958, 1.6825958,
    1.5014815, 1.5014815, 1.4214815, 1.4214815, 1.5901154, 1.5901154, 1.6295897, 1.6295897, 1.4807408, 1.4807408, 1.4214815, 1.4214815, 1.5901154, 1.5901154,
    1.6295897, 1.6295897, 1.4807408, 1.4807408, 1.425926, 1.425926, 1.6797148, 1.6797148, 1.719189, 1.719189, 1.4851851, 1.4851851, 1.425926, 1.425926,
    1.6797148, 1.6797148, 1.719189, 1.719189, 1.4851851, 1.4851851, 1.4051852, 1.4051852, 1.6620709, 1.6620709, 1.705012, 1.705012, 1.4644444, 1.4644444,
    1.4051852, 1.4051852, 1.6620709, 1.6620709, 1.705012, 1.705012, 1.4644444, 1.4644444, 1.3844445, 1.3844445, 1.6198119, 1.6198119, 1.6592861, 1.6592861,
    1.4437037, 1.4437037, 1.3844445, 1.3844445, 1.6198119, 1.6198119, 1.6592861, 1.6592861, 1.4437037, 1.4437037, 1.7185185, 1.7185185, 2.1014423, 2.1014423,
    2.0207834, 2.0207834, 1.6577778, 1.6577778, 1.7185185, 1.7185185, 2.1014423, 2.1014423, 2.0207834, 2.0207834, 1.6577778, 1.6577778, 1.6874074, 1.6874074,
    2.0552075, 2.0552075, 1.9745487, 1.9745487, 1.6266667, 1.6266667, 1.6874074, 1.6874074, 2.0552075, 2.0552075, 1.9745487, 1.9745487, 1.6266667, 1.6266667,
    1.6562963, 1.6562963, 2.0089726, 2.0089726, 1.9283139, 1.9283139, 1.5955555, 1.5955555, 1.6562963, 1.6562963, 2.0089726, 2.0089726, 1.9283139, 1.9283139,
    1.5955555, 1.5955555, 1.557037, 1.557037, 1.7526449, 1.7526449, 1.6592226, 1.6592226, 1.3918519, 1.3918519, 1.557037, 1.557037, 1.7526449, 1.7526449,
    1.6592226, 1.6592226, 1.3918519, 1.3918519, 1.5362964, 1.5362964, 1.7430327, 1.7430327, 1.6414052, 1.6414052, 1.3711112, 1.3711112, 1.5362964, 1.5362964,
    1.7430327, 1.7430327, 1.6414052, 1.6414052, 1.3711112, 1.3711112, 1.5155556, 1.5155556, 1.6927422, 1.6927422, 1.5993197, 1.5993197, 1.3503704, 1.3503704,
    1.5155556, 1.5155556, 1.6927422, 1.6927422, 1.5993197, 1.5993197, 1.3503704, 1.3503704,
];
const REFLECT_SEG: [f32; 72] = [
    0.23555554, 0.31428033, 0.33401746, 0.22777776, 0.23037036, 0.31548864, 0.30081704, 0.18518518, 0.26259258, 0.3325288, 0.31904173, 0.2174074, 0.33703706,
    0.5176963, 0.55010396, 0.38148144, 0.32925925, 0.48691463, 0.4829536, 0.3362963, 0.35888886, 0.53094757, 0.5269866, 0.36592594, 0.22629629, 0.35492867,
    0.37466577, 0.29333338, 0.2211111, 0.31982744, 0.341298, 0.25074074, 0.21592592, 0.33995295, 0.35969013, 0.28296298, 0.17037039, 0.29496217, 0.3146993,
    0.23740742, 0.20259258, 0.33103544, 0.35250604, 0.23222221, 0.15999998, 0.2799864, 0.29972357, 0.22703704, 0.3140741, 0.4835708, 0.4796099, 0.32111114,
    0.3437037, 0.5276038, 0.48727438, 0.31333333, 0.2985185, 0.4604534, 0.45649248, 0.30555555, 0.23592593, 0.33561045, 0.32212344, 0.19074075, 0.26814815,
    0.37151632, 0.32070264, 0.18555556, 0.22555555, 0.32063478, 0.3071477, 0.18037039,
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
