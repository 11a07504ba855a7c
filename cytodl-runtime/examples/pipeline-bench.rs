//! Throughput of cyto_dl's segmentation train pipeline, the workload of
//! `../shared/bench/monai_pipeline_bench.py`: load raw C=5 and seg C=0 (ZYX), channel first,
//! zoom 0.25 (area), normalise raw, threshold seg, crop [16,32,32], three random intensity
//! transforms. Prints one JSON line: samples/s and peak memory.
//!
//! `cargo run --release -p cytodl-runtime --example pipeline-bench -- DATA_DIR [EPOCHS=2] [WORKERS=0] [--cache DIR]`

use std::path::PathBuf;

/// Experiment binaries use mimalloc (`cytodl_runtime::Allocator`): volumes of tens of MiB are allocated and freed per sample,
/// which glibc's allocator hands back to the kernel each time (page faults and zeroing).
#[global_allocator]
static ALLOCATOR: cytodl_runtime::Allocator = cytodl_runtime::Allocator;
use std::time::Instant;

use cytodl_runtime::data::cache::Cache;
use cytodl_runtime::data::loader::{Dataset, Loader, LoaderOptions};
use cytodl_runtime::data::manifest::{load, ManifestSpec, Split};
use cytodl_runtime::io::{Index, Selection};
use cytodl_runtime::transforms::spatial::{ChannelDim, InterpMode};
use cytodl_runtime::transforms::{
    EnsureChannelFirstd, LoadImaged, NormalizeIntensityd, Pipeline, RandAdjustContrastd, RandHistogramShiftd, RandStdShiftIntensityd, RandomMultiScaleCropd,
    ThresholdIntensityd, ToTensord, Zoomd,
};

fn pipeline() -> Result<Pipeline, String> {
    let zyx = |c| Selection { dimension_order_out: Some("ZYX".into()), c: Some(Index::One(c)), z: None, t: None };
    let keys = ["raw", "seg"];
    let mut zoom = Zoomd::new(keys, vec![0.25]);
    zoom.mode = vec![InterpMode::Area];
    zoom.keep_size = false;
    let mut normalize = NormalizeIntensityd::new(["raw"]);
    normalize.channel_wise = true;
    let mut threshold = ThresholdIntensityd::new(["seg"], 0.1);
    threshold.above = false;
    threshold.cval = 1.0;
    let scales = [("raw".to_string(), vec![1.0]), ("seg".to_string(), vec![1.0])].into_iter().collect();
    let crop = RandomMultiScaleCropd::new(keys.iter().map(|k| k.to_string()).collect(), vec![16, 32, 32], scales, 1, false).map_err(|e| e.to_string())?;
    let mut hist = RandHistogramShiftd::new(["raw"]);
    hist.prob = 0.1;
    hist.num_control_points = vec![90, 500];
    let mut std_shift = RandStdShiftIntensityd::new(["raw"], vec![0.1]);
    std_shift.prob = 0.1;
    let mut contrast = RandAdjustContrastd::new(["raw"]);
    contrast.prob = 0.1;
    contrast.gamma = vec![0.9, 1.5];
    Ok(Pipeline::new()
        .push(LoadImaged::new(vec!["raw".into()], zyx(5)))
        .push(LoadImaged::new(vec!["seg".into()], zyx(0)))
        .push(EnsureChannelFirstd::new(keys, Some(ChannelDim::NoChannel)))
        .push(zoom)
        .push(ToTensord::new(keys))
        .push(normalize)
        .push(threshold)
        .push(crop)
        .push(hist)
        .push(std_shift)
        .push(contrast))
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut cache = None;
    if let Some(i) = args.iter().position(|a| a == "--cache") {
        let dir = args.get(i + 1).cloned().ok_or("--cache needs a folder")?;
        cache = Some(Cache::new(PathBuf::from(dir)));
        args.drain(i..i + 2);
    }
    let data_dir = PathBuf::from(args.first().ok_or("usage: pipeline-bench DATA_DIR [EPOCHS] [WORKERS] [--cache DIR]")?);
    let epochs: u64 = args.get(1).map(|s| s.parse().map_err(|_| format!("bad EPOCHS {s}"))).transpose()?.unwrap_or(2);
    let workers: usize = args.get(2).map(|s| s.parse().map_err(|_| format!("bad WORKERS {s}"))).transpose()?.unwrap_or(0);
    let manifest = load(&ManifestSpec { path: data_dir, columns: vec!["raw".into(), "seg".into()], ..Default::default() }).map_err(|e| e.to_string())?;
    let rows = manifest.rows(Split::Train).iter().map(|r| r.to_sample()).collect();
    let cached = cache.is_some();
    let loader = Loader::new(
        Dataset { rows, pipeline: pipeline()?, cache },
        LoaderOptions { batch_size: 1, shuffle: true, num_workers: workers, seed: 0, ..Default::default() },
    );
    let start = Instant::now();
    let mut n = 0usize;
    for epoch in 0..epochs {
        for batch in loader.epoch(epoch) {
            let batch = batch.map_err(|e| e.to_string())?;
            n += batch.stack("raw").map_err(|e| e.to_string())?.shape()[0];
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"peer\": \"cytodl-runtime\", \"samples\": {n}, \"seconds\": {secs:.3}, \"samples_per_s\": {:.2}, \"num_workers\": {workers}, \"cache\": {cached}, \"peak_rss_mib\": {:.1}}}",
        n as f64 / secs,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
