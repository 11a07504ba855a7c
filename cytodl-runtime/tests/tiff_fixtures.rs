//! TIFF reading against tifffile-made fixtures (tests/fixtures/tiff/expected.json), OME-TIFF
//! writer round trips, corrupt-file handling, and (when Python has tifffile) the variant
//! cross-check in tests/tiff_variants.py.

use std::path::{Path, PathBuf};
use std::process::Command;

use cytodl_runtime::io::{read, read_info, write_ome_tiff, DType, Index, ReadError, Selection};
use cytodl_runtime::Array;
use serde_json::Value;

/// (axes, shape, dtype, pixel sizes) of a written image.
type Case = (&'static str, Vec<usize>, DType, [Option<f64>; 3]);
/// A [`Case`] plus the axes and shape tifffile should report.
type CheckedCase = (&'static str, Vec<usize>, DType, [Option<f64>; 3], &'static str, Vec<usize>);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiff")
}

fn scratch(name: &str) -> cytodl_testkit::Scratch {
    cytodl_testkit::Scratch::new(&format!("tiff-tests-{name}"))
}

fn close(got: f64, want: f64, exact: bool) -> bool {
    if exact {
        got == want
    } else {
        (got - want).abs() <= 1e-6 * want.abs().max(got.abs()).max(1.0)
    }
}

#[test]
fn expected_json_reads_match() {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap();
    let mut n = 0;
    for (name, entry) in expected.as_object().unwrap() {
        let path = fixtures().join(entry["file"].as_str().unwrap());
        let info = read_info(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.axes, entry["axes_in_file"].as_str().unwrap(), "{name}: axes");
        for r in entry["reads"].as_array().unwrap() {
            let mut sel = Selection::default();
            for (k, v) in r["select"].as_object().unwrap() {
                let i = Some(Index::One(v.as_u64().unwrap() as usize));
                match k.as_str() {
                    "C" => sel.c = i,
                    "Z" => sel.z = i,
                    "T" => sel.t = i,
                    other => panic!("unknown selection {other}"),
                }
            }
            let (a, info) = read(&path, &sel).unwrap_or_else(|e| panic!("{name}: {e}"));
            let ctx = format!("{name} {}", r["select"]);
            let want_shape: Vec<usize> = r["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            assert_eq!(a.shape(), &want_shape[..], "{ctx}: shape");
            let axes_out: String = info.axes.chars().filter(|c| !r["select"].as_object().unwrap().contains_key(&c.to_string())).collect();
            assert_eq!(axes_out, r["axes_out"].as_str().unwrap(), "{ctx}: axes_out");
            assert_eq!(info.dtype.name(), r["dtype"].as_str().unwrap(), "{ctx}: dtype");
            let exact = !info.dtype.name().starts_with("float");
            for (k, got) in [("sum", a.sum()), ("min", a.min() as f64), ("max", a.max() as f64)] {
                let want = r[k].as_f64().unwrap();
                assert!(close(got, want, exact), "{ctx}: {k} {got} != {want}");
            }
            for s in r["samples"].as_array().unwrap() {
                let idx: Vec<usize> = s["index"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
                let want = s["value"].as_f64().unwrap();
                let got = a.at(&idx) as f64;
                assert!(close(got, want, exact), "{ctx}: value at {idx:?} {got} != {want}");
            }
            n += 1;
        }
    }
    assert_eq!(n, 7);
}

#[test]
fn metadata_of_fixtures() {
    let info = read_info(&fixtures().join("czyx_u16_ome.tif")).unwrap();
    assert_eq!((info.axes.as_str(), &info.shape[..]), ("CZYX", &[2usize, 10, 32, 30][..]));
    let info = read_info(&fixtures().join("tzcyx_u8_imagej.tif")).unwrap();
    assert_eq!((info.axes.as_str(), &info.shape[..]), ("TZCYX", &[3usize, 7, 2, 16, 18][..]));
    let info = read_info(&fixtures().join("cyto_dl_rand_im.tif")).unwrap();
    assert_eq!(info.dtype, DType::F64);
    assert_eq!(info.channel_names, vec!["C:0".to_string()]);
}

/// bioio_base transforms.compute_dim_specs semantics with an explicit output order.
#[test]
fn selection_semantics() {
    let path = fixtures().join("czyx_u16_ome.tif");
    let sel = |order: Option<&str>, c: Option<Index>, z: Option<Index>, t: Option<Index>| Selection { dimension_order_out: order.map(str::to_string), c, z, t };
    let (full, _) = read(&path, &sel(None, None, None, None)).unwrap();
    assert_eq!(full.shape(), &[2, 10, 32, 30]);

    // Padded axes (T absent from the file) and an int kept in the output as length 1.
    let (a, _) = read(&path, &sel(Some("TCZYX"), Some(Index::One(1)), None, None)).unwrap();
    assert_eq!(a.shape(), &[1, 1, 10, 32, 30]);
    assert_eq!(a.at(&[0, 0, 3, 4, 5]), full.at(&[1, 3, 4, 5]));

    // A list keeps the chosen entries in that order.
    let (a, _) = read(&path, &sel(Some("CZYX"), Some(Index::Many(vec![1, 0])), Some(Index::Many(vec![9])), None)).unwrap();
    assert_eq!(a.shape(), &[2, 1, 32, 30]);
    assert_eq!(a.at(&[0, 0, 7, 8]), full.at(&[1, 9, 7, 8]));
    assert_eq!(a.at(&[1, 0, 7, 8]), full.at(&[0, 9, 7, 8]));

    // A non-requested axis not in the output takes index 0 (bioio does not complain).
    let (a, _) = read(&path, &sel(Some("ZYX"), None, None, None)).unwrap();
    assert_eq!(a.shape(), &[10, 32, 30]);
    assert_eq!(a.at(&[2, 3, 4]), full.at(&[0, 2, 3, 4]));

    // Transposition.
    let (a, _) = read(&path, &sel(Some("ZCXY"), None, None, None)).unwrap();
    assert_eq!(a.shape(), &[10, 2, 30, 32]);
    assert_eq!(a.at(&[2, 1, 4, 3]), full.at(&[1, 2, 3, 4]));

    // None: file axes minus int-selected ones; absent axes behave as length 1.
    let (a, _) = read(&path, &sel(None, Some(Index::Many(vec![1])), Some(Index::One(2)), Some(Index::One(0)))).unwrap();
    assert_eq!(a.shape(), &[1, 32, 30]);
    assert_eq!(a.at(&[0, 3, 4]), full.at(&[1, 2, 3, 4]));

    // Errors: out of range (also on an absent axis), list on a dropped axis, repeated axis.
    match read(&path, &sel(None, Some(Index::One(2)), None, None)) {
        Err(ReadError::OutOfRange { axis: 'C', index: 2, size: 2, path: p }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    assert!(matches!(read(&path, &sel(None, None, None, Some(Index::One(1)))), Err(ReadError::OutOfRange { axis: 'T', size: 1, .. })));
    assert!(matches!(read(&path, &sel(Some("ZYX"), Some(Index::Many(vec![0, 1])), None, None)), Err(ReadError::BadSelection { .. })));
    assert!(matches!(read(&path, &sel(Some("ZZYX"), None, None, None)), Err(ReadError::BadSelection { .. })));
}

fn ramp(shape: &[usize], scale: f32, offset: f32) -> Array {
    let n: usize = shape.iter().product();
    Array::new(shape.to_vec(), (0..n).map(|i| (i as f32 * scale + offset) % 1000.0).collect()).unwrap()
}

#[test]
fn writer_round_trips() {
    let dir = scratch("roundtrip");
    let cases: Vec<Case> = vec![
        ("ZYX", vec![4, 9, 7], DType::U16, [Some(0.29), Some(0.108), Some(0.108)]),
        ("CZYX", vec![2, 3, 5, 6], DType::U8, [None, Some(0.5), Some(0.25)]),
        ("YX", vec![11, 13], DType::F32, [None, None, None]),
        ("CYX", vec![3, 8, 5], DType::F32, [None, None, None]),
        ("TCZYX", vec![2, 3, 4, 5, 6], DType::U16, [Some(1.0), Some(2.0), Some(3.0)]),
        ("ZCYX", vec![3, 2, 5, 4], DType::U16, [None, None, None]),
    ];
    for (axes, shape, dtype, sizes) in cases {
        let scale = if dtype == DType::F32 { 0.37 } else { 1.0 };
        let data = ramp(&shape, scale, 0.0);
        let path = dir.join(format!("{axes}.ome.tif"));
        write_ome_tiff(&path, &data, axes, dtype, sizes).unwrap();
        let info = read_info(&path).unwrap();
        // Length-1 axes are squeezed on reading, like tifffile; ZCYX comes back as CZYX.
        let mut want_axes: String = "TCZYX".chars().filter(|c| axes.contains(*c)).collect();
        want_axes.retain(|c| shape[axes.find(c).unwrap()] > 1);
        assert_eq!(info.axes, want_axes, "{axes}");
        assert_eq!(info.dtype, dtype);
        assert_eq!(info.pixel_sizes, sizes, "{axes}");
        let (back, _) = read(&path, &Selection { dimension_order_out: Some(axes.to_string()), ..Default::default() }).unwrap();
        assert_eq!(back.shape(), data.shape(), "{axes}");
        let want: Vec<f32> = data.data().iter().map(|&v| if dtype == DType::U8 { v.round_ties_even().clamp(0.0, 255.0) } else { v }).collect();
        assert_eq!(back.data(), &want[..], "{axes}");
    }
    // Rounding (half to even) and clamping.
    let data = Array::new(vec![1, 6], vec![-3.0, 0.5, 1.5, 2.49, 70000.0, f32::NAN]).unwrap();
    let path = dir.join("clamp.tif");
    write_ome_tiff(&path, &data, "YX", DType::U16, [None; 3]).unwrap();
    let (back, _) = read(&path, &Selection::default()).unwrap();
    assert_eq!(back.data(), &[0.0, 0.0, 2.0, 2.0, 65535.0, 0.0]);
    // No temp files left behind; bad input is an error, not a panic.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    assert!(write_ome_tiff(&path, &data, "ZX", DType::U16, [None; 3]).is_err());
    assert!(write_ome_tiff(&path, &data, "YXZ", DType::U16, [None; 3]).is_err());
    assert!(write_ome_tiff(&path, &data, "YX", DType::I32, [None; 3]).is_err());
    assert!(write_ome_tiff(&dir.join("no/such/dir/x.tif"), &data, "YX", DType::U16, [None; 3]).is_err());
}

/// Truncations and byte flips of every fixture give errors (or data), never panics.
#[test]
fn corrupt_files_are_errors() {
    let dir = scratch("corrupt");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(fixtures()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "tif")).collect();
    files.sort();
    assert_eq!(files.len(), 6, "the tifffile fixtures of tests/fixtures/tiff: {files:?}");
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // TIFF_FUZZ_ITERS=2000 cargo test --release ... for a longer run.
    let iters: usize = std::env::var("TIFF_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let out = dir.join("bad.tif");
        // Truncated: at least the pixel data of the last page is gone.
        for cut in [0, 3, 7, 8, 9, 16, 100, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&out, &bytes[..cut]).unwrap();
            let r = read(&out, &Selection::default());
            if cut <= 8 || cut == bytes.len() / 2 {
                let e = r.expect_err(&format!("{f:?} cut at {cut}"));
                assert!(e.to_string().contains("bad.tif"), "{e}");
            }
        }
        // Random byte flips: any outcome but a panic.
        for _ in 0..iters {
            let mut b = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % b.len() as u64) as usize;
                b[i] = next() as u8;
            }
            std::fs::write(&out, &b).unwrap();
            let _ = read_info(&out);
            let _ = read(&out, &Selection::default());
        }
        // Flips inside the header and first IFD, where the structure lives.
        for _ in 0..iters {
            let mut b = bytes.clone();
            let i = (next() % 400.min(b.len() as u64)) as usize;
            b[i] = next() as u8;
            std::fs::write(&out, &b).unwrap();
            let _ = read(&out, &Selection::default());
        }
    }
    let e = read(&dir.join("missing.tif"), &Selection::default()).unwrap_err();
    assert!(matches!(e, ReadError::Io { .. }));
    std::fs::write(dir.join("text.tif"), b"hello world, not a tiff").unwrap();
    assert!(matches!(read(&dir.join("text.tif"), &Selection::default()), Err(ReadError::NotTiff { .. })));
}

/// The Python that has tifffile, numpy and imagecodecs (every compression is compared), or a
/// skip that fails under CI.
fn tifffile_python(test: &str) -> Option<std::path::PathBuf> {
    cytodl_testkit::python_with(test, &["tifffile", "numpy", "imagecodecs"])
}

/// Runs `tiff_variants.py` with `args`; returns its output, failing the test when it failed.
fn run_tiff_variants(python: &Path, args: &[&std::ffi::OsStr]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tiff_variants.py");
    let out = Command::new(python).arg(&script).args(args).arg("--require-codecs").output().expect("run tiff_variants.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "tifffile check failed:\n{text}");
    text
}

/// The number `N` in the script's `<what>: N ...` summary line.
fn compared(text: &str, what: &str) -> usize {
    text.lines()
        .find_map(|l| l.strip_prefix(what)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `{what}` count in the script's output:\n{text}"))
}

/// Writes OME-TIFFs and lets tifffile judge them (tests/tiff_variants.py --check-written).
#[test]
fn tifffile_reads_our_ome_tiffs() {
    let Some(python) = tifffile_python("tifffile_reads_our_ome_tiffs") else { return };
    let dir = scratch("written");
    let mut manifest = Vec::new();
    let cases: Vec<CheckedCase> = vec![
        ("ZYX", vec![5, 9, 7], DType::U16, [Some(0.29), Some(0.108), Some(0.108)], "ZYX", vec![5, 9, 7]),
        ("CZYX", vec![2, 3, 5, 6], DType::U8, [None, Some(0.5), Some(0.5)], "CZYX", vec![2, 3, 5, 6]),
        ("YX", vec![11, 13], DType::F32, [None; 3], "YX", vec![11, 13]),
        ("CYX", vec![3, 8, 5], DType::F32, [None; 3], "CYX", vec![3, 8, 5]),
        ("TCZYX", vec![2, 3, 4, 5, 6], DType::U16, [Some(1.0), Some(2.0), Some(3.0)], "TCZYX", vec![2, 3, 4, 5, 6]),
        ("ZCYX", vec![3, 2, 5, 4], DType::U16, [None; 3], "CZYX", vec![2, 3, 5, 4]),
        ("CZYX", vec![1, 4, 5, 4], DType::F32, [None; 3], "ZYX", vec![4, 5, 4]),
    ];
    for (k, (axes, shape, dtype, sizes, want_axes, want_shape)) in cases.into_iter().enumerate() {
        let data = ramp(&shape, if dtype == DType::F32 { 0.25 } else { 1.0 }, 1.0);
        let file = format!("w{k}_{axes}.ome.tif");
        write_ome_tiff(&dir.join(&file), &data, axes, dtype, sizes).unwrap();
        let stored: Vec<f64> = data.data().iter().map(|&v| if dtype == DType::U8 { v.round_ties_even().clamp(0.0, 255.0) as f64 } else { v as f64 }).collect();
        let planes: usize = axes.chars().zip(&shape).filter(|(a, _)| "TCZ".contains(*a)).map(|(_, n)| n).product();
        manifest.push(serde_json::json!({
            "file": file, "axes": want_axes, "shape": want_shape,
            "dtype": match dtype { DType::U8 => "uint8", DType::U16 => "uint16", _ => "float32" },
            "sum": stored.iter().sum::<f64>(),
            "input_axes": axes, "input_shape": shape, "values": stored,
            "min": stored.iter().copied().fold(f64::INFINITY, f64::min),
            "max": stored.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "pixel_sizes": sizes, "planes": planes,
        }));
    }
    std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let text = run_tiff_variants(&python, &["--check-written".as_ref(), dir.as_os_str()]);
    let n = compared(&text, "writer: ");
    assert_eq!(n, manifest.len(), "every written file was compared");
    cytodl_testkit::oracle_ran("tifffile", "tifffile_reads_our_ome_tiffs", n);
}

/// Generates tifffile variants and compares the image-stats example with numpy
/// (a random 15% of the variants here; run the script without --quick for all of them).
#[test]
fn tifffile_variants_match_image_stats() {
    let Some(python) = tifffile_python("tifffile_variants_match_image_stats") else { return };
    let bin = cytodl_testkit::workspace_example("image-stats");
    let text = run_tiff_variants(&python, &["--quick".as_ref(), "--stats".as_ref(), bin.as_os_str()]);
    let n = compared(&text, "reader: ");
    // --quick draws a seeded 15% of ~3000 variants, each read whole and as a last-plane selection.
    assert!(n >= 300, "only {n} reads were compared");
    cytodl_testkit::oracle_ran("tifffile", "tifffile_variants_match_image_stats", n);
}
