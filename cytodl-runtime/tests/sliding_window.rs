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
