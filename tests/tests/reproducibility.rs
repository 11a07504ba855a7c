//! A run is a function of its seed: the same seed gives the same run, byte for byte (metrics
//! and checkpoints), whatever the number of data workers; another seed gives another run; and
//! `seed: null` draws a seed, records it in the run folder, and re-running with it repeats the run.

use std::path::Path;

use cytodl_tests::e2e::{binary, example_data, metric_values, metrics, run, scratch};

/// Trains the example segmentation for 2 epochs into `dir/<out>` with `extra` overrides.
fn train(dir: &Path, out: &str, extra: &[&str]) -> String {
    let mut args = vec!["train", "trainer.max_epochs=2", "--output-dir", out];
    args.extend_from_slice(extra);
    let r = run(dir, &binary("segmentation"), &args);
    assert!(r.ok, "train {extra:?}:\n{}", r.text());
    r.stdout
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files of a run folder's `checkpoints/`, by name.
fn checkpoints(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(run.join("checkpoints"))
        .expect("checkpoints/")
        .map(|e| e.expect("entry").path())
        .map(|p| (p.file_name().expect("name").to_string_lossy().into_owned(), bytes(&p)))
        .collect();
    files.sort();
    files
}

fn recorded_seed(run: &Path) -> (u64, String) {
    let text = std::fs::read_to_string(run.join(".hydra/run.yaml")).expect(".hydra/run.yaml");
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).unwrap_or_else(|| panic!("no `{key}` in\n{text}")).to_string();
    (field("seed:").parse().expect("a seed"), field("seed_source:"))
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let dir = scratch("repro");
    example_data(&dir, 5);
    train(&dir, "a", &[]);
    train(&dir, "b", &["data.num_workers=2"]);
    let (a, b) = (dir.join("a"), dir.join("b"));
    let log = "csv/version_0/metrics.csv";
    assert_eq!(bytes(&a.join(log)), bytes(&b.join(log)), "metrics.csv differs between two runs with seed 12345");
    let (ca, cb) = (checkpoints(&a), checkpoints(&b));
    let names = |c: &[(String, Vec<u8>)]| c.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ca), names(&cb));
    assert!(names(&ca).len() == 2 && names(&ca).contains(&"last.ckpt".to_string()), "the best and the last checkpoint: {:?}", names(&ca));
    for ((name, x), (_, y)) in ca.iter().zip(&cb) {
        assert!(x == y, "checkpoints/{name} differs between two runs with the same seed");
    }
    assert_eq!(recorded_seed(&a), (12345, "config".to_string()));

    // Another seed: other initial weights, crops and order, so other losses from the first step.
    train(&dir, "c", &["seed=7"]);
    let first = |run: &Path| metric_values(&metrics(&run.join(log)), "train/loss")[0];
    assert_ne!(first(&a), first(&dir.join("c")), "seed 7 and seed 12345 trained alike");
    assert_eq!(recorded_seed(&dir.join("c")), (7, "config".to_string()));
}

#[test]
fn a_null_seed_is_drawn_recorded_and_repeatable() {
    let dir = scratch("seed-null");
    example_data(&dir, 5);
    let stdout = train(&dir, "drawn", &["seed=null"]);
    let (seed, source) = recorded_seed(&dir.join("drawn"));
    assert_eq!(source, "drawn");
    assert!(stdout.contains(&format!("seed: {seed} (drawn)")), "the seed is printed: {stdout}");
    let again = format!("seed={seed}");
    train(&dir, "again", &[&again]);
    let log = "csv/version_0/metrics.csv";
    assert_eq!(bytes(&dir.join("drawn").join(log)), bytes(&dir.join("again").join(log)), "re-running with the recorded seed repeats the run");
    // Two draws differ (2^32 values: a collision here is a bug, not luck).
    train(&dir, "drawn2", &["seed=null"]);
    assert_ne!(recorded_seed(&dir.join("drawn2")).0, seed);
}
