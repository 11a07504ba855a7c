//! Faults a long run meets, injected through the binary a user runs:
//!
//! - `kill -9` at random points (seeded; `CYTODL_KILL_POINTS`, default 20): resuming from
//!   `last.ckpt` every time ends in the same `metrics.csv` and the same final checkpoint as an
//!   uninterrupted run, byte for byte. Killed before the first checkpoint, the run is started
//!   again from scratch, as a user would.
//! - a corrupted or truncated `last.ckpt`: a clear error naming the file, for `train` and
//!   `predict`, never a silent fresh start.
//!
//! (A checkpoint write that fails is tested in `cytodl-runtime/tests/trainer.rs`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cytodl_runtime::Rng;
use cytodl_tests::e2e::{binary, example_data, run, scratch};

const ARGS: [&str; 3] = ["train", "trainer.max_epochs=4", "trainer.limit_train_batches=2"];

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Starts a training run into `out`, kills it with SIGKILL after `after`; whether it had
/// finished already.
fn train_and_kill(dir: &Path, out: &str, after: Duration) -> bool {
    let mut child = Command::new(binary("segmentation"))
        .current_dir(dir)
        .args(ARGS)
        .args(["--output-dir", out])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start training");
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    child.wait().expect("reap");
    false
}

#[test]
fn killed_runs_resume_to_the_same_result() {
    let points: usize = std::env::var("CYTODL_KILL_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = scratch("kill");
    example_data(&dir, 5);
    let bin = binary("segmentation");

    let start = Instant::now();
    let r = run(&dir, &bin, &[&ARGS[..], &["--output-dir", "full"]].concat());
    let whole = start.elapsed();
    assert!(r.ok, "{}", r.text());
    let want_log = bytes(&dir.join("full/csv/version_0/metrics.csv"));
    let want_last = bytes(&dir.join("full/checkpoints/last.ckpt"));

    let mut rng = Rng::seed_from(2026);
    let (mut before_first, mut resumed, mut finished) = (0, 0, 0);
    // Kill points are uniform over the run's length; a run that finished before its kill point
    // (the machine was faster than the first measurement) does not count, and shortens the
    // horizon so that the points keep landing inside runs.
    let mut horizon = whole;
    let mut k = 0;
    while k < points {
        let out = format!("killed_{k}_{finished}");
        let at = horizon.mul_f64(rng.uniform());
        if train_and_kill(&dir, &out, at) {
            finished += 1;
            assert!(finished <= points, "{finished} runs finished before their kill point: the horizon does not shrink");
            horizon = horizon.mul_f64(0.8);
            let _ = std::fs::remove_dir_all(dir.join(&out));
            continue;
        }
        k += 1;
        let last = dir.join(&out).join("checkpoints/last.ckpt");
        let r = if last.is_file() {
            resumed += 1;
            run(&dir, &bin, &[&ARGS[..], &["--ckpt", last.to_str().expect("utf-8")]].concat())
        } else {
            before_first += 1;
            let _ = std::fs::remove_dir_all(dir.join(&out));
            run(&dir, &bin, &[&ARGS[..], &["--output-dir", &out]].concat())
        };
        assert!(r.ok, "kill point {k} ({at:?}): the resumed run failed:\n{}", r.text());
        let got_log = bytes(&dir.join(&out).join("csv/version_0/metrics.csv"));
        assert!(
            got_log == want_log,
            "kill point {k} ({at:?}): metrics.csv differs from the uninterrupted run's\n--- uninterrupted\n{}--- resumed\n{}",
            String::from_utf8_lossy(&want_log),
            String::from_utf8_lossy(&got_log)
        );
        assert!(bytes(&last) == want_last, "kill point {k} ({at:?}): the final last.ckpt differs from the uninterrupted run's");
        let leftovers: Vec<String> = std::fs::read_dir(dir.join(&out).join("checkpoints"))
            .expect("checkpoints/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "kill point {k}: temporary files left behind: {leftovers:?}");
        let _ = std::fs::remove_dir_all(dir.join(&out));
    }
    eprintln!("{points} kill points: {resumed} resumed from last.ckpt, {before_first} before the first checkpoint ({finished} runs finished before their kill point and were not counted)");
    assert!(resumed >= points / 3, "too few kills landed after a checkpoint ({resumed} of {points}) for the test to mean much");
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_the_file() {
    let dir = scratch("corrupt");
    example_data(&dir, 5);
    let bin = binary("segmentation");
    let r = run(&dir, &bin, &["train", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "--output-dir", "run"]);
    assert!(r.ok, "{}", r.text());
    let last = dir.join("run/checkpoints/last.ckpt");
    let good = bytes(&last);

    // One flipped byte in the middle, then a file cut short.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    for (what, content) in [("flipped byte", flipped), ("truncated", good[..good.len() / 3].to_vec())] {
        std::fs::write(&last, &content).expect("write");
        for command in ["train", "predict"] {
            let r = run(&dir, &bin, &[command, "--ckpt", last.to_str().expect("utf-8"), "--output-dir", "after"]);
            assert!(!r.ok, "{what}, {command}: accepted a corrupt checkpoint:\n{}", r.text());
            assert!(r.stderr.contains(&last.display().to_string()), "{what}, {command}: the error names the file:\n{}", r.stderr);
            assert!(
                r.stderr.contains("truncated or corrupt") || r.stderr.contains("truncated"),
                "{what}, {command}: the error says what is wrong:\n{}",
                r.stderr
            );
            assert!(!r.stderr.contains("panicked"), "{what}, {command}: {}", r.stderr);
        }
        assert!(!dir.join("after/checkpoints").exists(), "{what}: nothing was trained from a corrupt checkpoint");
    }
    // The user's file is left as it was: the error never overwrites it.
    assert_eq!(bytes(&last), good[..good.len() / 3].to_vec());
}
