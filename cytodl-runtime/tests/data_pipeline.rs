//! The data path a user's run takes, on real OME-TIFF files: manifest -> checks -> LoadImaged ->
//! persistent cache -> deterministic loader.

use std::path::Path;

use cytodl_runtime::data::cache::Cache;
use cytodl_runtime::data::check::{check_rows, CheckSpec};
use cytodl_runtime::data::loader::{Dataset, Loader, LoaderOptions};
use cytodl_runtime::data::manifest::{load, ManifestSpec, Split};
use cytodl_runtime::io::{write_ome_tiff, DType, Index, Selection};
use cytodl_runtime::transforms::spatial::ChannelDim;
use cytodl_runtime::transforms::{EnsureChannelFirstd, LoadImaged, Pipeline, RandomMultiScaleCropd};
use cytodl_runtime::Array;

fn tmp(name: &str) -> cytodl_testkit::Scratch {
    cytodl_testkit::Scratch::new(&format!("pipeline-{name}"))
}

/// A CZYX uint16 image whose voxel values encode (c, z, y, x), so crops can be checked.
fn write_image(path: &Path, c: usize, z: usize, y: usize, x: usize, seed: u32) {
    let data: Vec<f32> = (0..c * z * y * x).map(|i| ((i as u32 * 7 + seed * 13) % 4000) as f32).collect();
    let a = Array::new(vec![c, z, y, x], data).unwrap();
    write_ome_tiff(path, &a, "CZYX", DType::U16, [Some(0.29), Some(0.108), Some(0.108)]).unwrap();
}

fn selection(c: usize) -> Selection {
    Selection { dimension_order_out: Some("ZYX".into()), c: Some(Index::One(c)), z: None, t: None }
}

fn dataset_dir(name: &str, n: usize) -> cytodl_testkit::Scratch {
    let d = tmp(name);
    let mut lines = vec!["raw,seg".to_string()];
    for i in 0..n {
        write_image(&d.join(format!("raw_{i}.ome.tif")), 3, 6, 20, 24, i as u32);
        write_image(&d.join(format!("seg_{i}.ome.tif")), 1, 6, 20, 24, 100 + i as u32);
        lines.push(format!("raw_{i}.ome.tif,seg_{i}.ome.tif"));
    }
    std::fs::write(d.join("train.csv"), lines.join("\n") + "\n").unwrap();
    std::fs::write(d.join("valid.csv"), format!("raw,seg\n{}\n", lines[1])).unwrap();
    std::fs::write(d.join("test.csv"), format!("raw,seg\n{}\n", lines[1])).unwrap();
    d
}

fn pipeline() -> Pipeline {
    let keys = vec!["raw".to_string(), "seg".to_string()];
    let crop = RandomMultiScaleCropd::new(
        keys.clone(),
        vec![4, 8, 8],
        [("raw".to_string(), vec![1.0]), ("seg".to_string(), vec![1.0])].into_iter().collect(),
        2,
        false,
    )
    .unwrap();
    Pipeline::new()
        .push(LoadImaged::new(vec!["raw".into()], selection(2)))
        .push(LoadImaged::new(vec!["seg".into()], selection(0)))
        .push(EnsureChannelFirstd::new(["raw", "seg"], Some(ChannelDim::NoChannel)))
        .push(crop)
}

fn samples(d: &Path, workers: usize, cache: Option<Cache>) -> Vec<Vec<f32>> {
    let m = load(&ManifestSpec { path: d.to_path_buf(), columns: vec!["raw".into(), "seg".into()], ..Default::default() }).unwrap();
    let rows = m.rows(Split::Train).iter().map(|r| r.to_sample()).collect();
    let loader = Loader::new(
        Dataset { rows, pipeline: pipeline(), cache },
        LoaderOptions { batch_size: 2, shuffle: true, num_workers: workers, seed: 5, ..Default::default() },
    );
    loader
        .epoch(0)
        .map(|b| {
            let b = b.unwrap();
            let mut v = b.stack("raw").unwrap().into_data();
            v.extend(b.stack("seg").unwrap().into_data());
            v
        })
        .collect()
}

/// Where `patch` lies in `volume` (both ZYX), if anywhere.
fn find(volume: &Array, patch: &Array) -> Option<[usize; 3]> {
    let (v, p) = (volume.shape(), patch.shape());
    for z in 0..=v[0] - p[0] {
        for y in 0..=v[1] - p[1] {
            for x in 0..=v[2] - p[2] {
                if volume.crop(&[z, y, x], p).data() == patch.data() {
                    return Some([z, y, x]);
                }
            }
        }
    }
    None
}

/// Every patch is a crop of the channel its `LoadImaged` selects (raw: channel 2, seg: channel
/// 0) of its own row's files, and the raw and seg patches of a sample are taken at the same
/// place (the crop is paired across keys).
#[test]
fn patches_come_from_the_selected_channel_at_the_same_place() {
    let d = dataset_dir("crops", 3);
    let m = load(&ManifestSpec { path: d.to_path_buf(), columns: vec!["raw".into(), "seg".into()], ..Default::default() }).unwrap();
    let rows = m.rows(Split::Train).iter().map(|r| r.to_sample()).collect();
    let loader = Loader::new(Dataset { rows, pipeline: pipeline(), cache: None }, LoaderOptions { batch_size: 1, seed: 11, ..Default::default() });
    let read = |file: &Path, c: usize| cytodl_runtime::io::read(file, &selection(c)).unwrap().0;
    let mut checked = 0;
    for batch in loader.epoch(0) {
        for sample in &batch.unwrap().samples {
            let (raw_file, seg_file) = (&sample.origin.files["raw"], &sample.origin.files["seg"]);
            let squeeze = |a: &Array| a.clone().reshape(a.shape()[a.shape().len() - 3..].to_vec()).unwrap();
            let (raw, seg) = (squeeze(sample.array("raw").unwrap()), squeeze(sample.array("seg").unwrap()));
            assert_eq!(raw.shape(), &[4, 8, 8]);
            let at = find(&read(raw_file, 2), &raw).unwrap_or_else(|| panic!("raw patch is not a crop of channel 2 of {}", raw_file.display()));
            assert!(find(&read(raw_file, 0), &raw).is_none() && find(&read(raw_file, 1), &raw).is_none(), "another channel holds the raw patch");
            assert_eq!(find(&read(seg_file, 0), &seg), Some(at), "seg patch at the raw patch's place");
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "3 rows x 2 patches");
}

#[test]
fn loader_reads_real_files_deterministically_with_and_without_cache() {
    let d = dataset_dir("loader", 5);
    let plain = samples(&d, 0, None);
    assert_eq!(plain.len(), 3);
    assert_eq!(samples(&d, 4, None), plain, "4 workers give the same batches");
    let cache_dir = d.join("cache");
    let cold = samples(&d, 2, Some(Cache::new(&cache_dir)));
    let entries = std::fs::read_dir(&cache_dir).unwrap().count();
    assert_eq!(entries, 5, "one entry per row");
    let warm = samples(&d, 1, Some(Cache::new(&cache_dir)));
    assert_eq!(cold, plain);
    assert_eq!(warm, plain, "cache hits give the same data");
}

#[test]
fn corrupt_cache_entries_are_recomputed() {
    let d = dataset_dir("corrupt", 2);
    let cache_dir = d.join("cache");
    let first = samples(&d, 0, Some(Cache::new(&cache_dir)));
    for e in std::fs::read_dir(&cache_dir).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        std::fs::write(e.path(), &bytes[..bytes.len() / 2]).unwrap();
    }
    assert_eq!(samples(&d, 0, Some(Cache::new(&cache_dir))), first);
    // ...and replaced: the entries are whole again.
    let c = Cache::new(&cache_dir);
    let m = load(&ManifestSpec { path: d.to_path_buf(), columns: vec!["raw".into(), "seg".into()], ..Default::default() }).unwrap();
    let p = pipeline();
    for r in m.rows(Split::Train) {
        let key = Cache::key(&r.to_sample(), &p.prefix_key(p.deterministic_len()));
        assert!(c.get(&key).unwrap().is_some());
    }
}

#[test]
fn a_changed_source_file_misses_the_cache() {
    let d = dataset_dir("changed", 2);
    let cache_dir = d.join("cache");
    let before = samples(&d, 0, Some(Cache::new(&cache_dir)));
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_image(&d.join("raw_0.ome.tif"), 3, 6, 20, 24, 999);
    let after = samples(&d, 0, Some(Cache::new(&cache_dir)));
    assert_ne!(before, after, "the rewritten file is read again, not served from the cache");
    assert_eq!(after, samples(&d, 0, None));
}

#[test]
fn every_bad_row_is_reported_with_file_row_and_column() {
    let d = tmp("check");
    write_image(&d.join("ok_raw.tif"), 3, 6, 20, 24, 1);
    write_image(&d.join("ok_seg.tif"), 1, 6, 20, 24, 2);
    write_image(&d.join("two_channels.tif"), 2, 6, 20, 24, 3);
    write_image(&d.join("small_seg.tif"), 1, 6, 10, 24, 4);
    let full = std::fs::read(d.join("ok_raw.tif")).unwrap();
    std::fs::write(d.join("truncated.tif"), &full[..full.len() / 3]).unwrap();
    std::fs::write(d.join("not_a_tiff.tif"), b"hello").unwrap();
    let csv = "raw,seg\n\
        ok_raw.tif,ok_seg.tif\n\
        missing.tif,ok_seg.tif\n\
        truncated.tif,ok_seg.tif\n\
        two_channels.tif,ok_seg.tif\n\
        ok_raw.tif,small_seg.tif\n\
        not_a_tiff.tif,missing_seg.tif\n";
    std::fs::write(d.join("train.csv"), csv).unwrap();
    let m = load(&ManifestSpec { path: d.join("train.csv"), columns: vec!["raw".into(), "seg".into()], ..Default::default() }).unwrap();
    let spec = CheckSpec { loads: vec![("raw".into(), selection(2)), ("seg".into(), selection(0))], scales: Default::default() };
    let problems = check_rows(m.rows(Split::Predict), &spec);
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let csv_path = d.join("train.csv").display().to_string();
    let expect = |line: usize, column: &str, needle: &str| {
        assert!(
            text.iter().any(|t| t.starts_with(&format!("{csv_path}:{line}: column `{column}`: ")) && t.contains(needle)),
            "no problem at line {line} column {column} containing `{needle}` in:\n{}",
            text.join("\n")
        );
    };
    expect(3, "raw", "file not found");
    expect(4, "raw", "truncated");
    expect(5, "raw", "C index 2 is out of range: the file has 2 along C");
    expect(6, "seg", "does not match `raw`");
    expect(7, "raw", "not a TIFF");
    expect(7, "seg", "file not found");
    assert_eq!(problems.len(), 6, "{}", text.join("\n"));
}
