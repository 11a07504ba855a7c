//! Data-parallel training through the generated binary, as a user scales out: the example
//! segmentation on two CPU devices (`trainer.devices=2`, batch 1 each) and on two nodes on
//! loopback (two processes, `trainer.num_nodes=2`) trains as one device with batch 2 — the same
//! losses, metrics and weights within float tolerance — and a killed node makes the other stop
//! with an error, its last checkpoint intact.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cytodl_tests::e2e::{binary, example_data, metrics, run, scratch, segmentation_weights, Out};

/// 6 example files: 4 training rows (2 batches of 2 per epoch), 1 validation, 1 test.
const FILES: usize = 6;

fn train(dir: &Path, out: &str, extra: &[&str]) -> Out {
    train_epochs(dir, out, 2, extra)
}

fn train_epochs(dir: &Path, out: &str, epochs: u32, extra: &[&str]) -> Out {
    let epochs = format!("trainer.max_epochs={epochs}");
    let mut args = vec!["train", epochs.as_str(), "--output-dir", out];
    args.extend_from_slice(extra);
    let r = run(dir, &binary("segmentation"), &args);
    assert!(r.ok, "train {extra:?}:\n{}", r.text());
    r
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * (1.0 + a.abs().max(b.abs()))
}

/// Two runs' `metrics.csv` hold the same rows and columns, each value equal within float
/// tolerance, and their last checkpoints the same weights.
fn assert_same_training(one: &Path, parallel: &Path) {
    let log = "csv/version_0/metrics.csv";
    let (a, b) = (metrics(&one.join(log)), metrics(&parallel.join(log)));
    assert_eq!(a.len(), b.len(), "metrics rows: one device {a:?}\nparallel {b:?}");
    let mut compared = 0;
    for (row, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "row {row}: different columns");
        for (column, value) in x {
            let (u, v): (f64, f64) = (value.parse().expect("a number"), y[column].parse().expect("a number"));
            assert!(close(u, v, 1e-5), "row {row} `{column}`: one device {u}, data parallel {v}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "train, val and test losses and metrics over 2 epochs: {compared} values");
    let (wa, wb) = (segmentation_weights(&one.join("checkpoints/last.ckpt")), segmentation_weights(&parallel.join("checkpoints/last.ckpt")));
    assert_eq!(wa.len(), wb.len());
    // Two summation orders (one batch of 2 vs the mean of two batches of 1) differ in the last
    // bits; Adam divides each gradient by its running RMS, so where a gradient is tiny those bits
    // move the weight by a visible fraction of a step (lr = 1e-4). Measured: 156 of 342,321
    // weights differ by more than 1e-6, the largest by 6.5e-6. A gradient that is not averaged
    // (each peer stepping on its own half) changes the losses above and most weights by ~1e-4.
    let diffs: Vec<f32> = wa.iter().zip(&wb).map(|(x, y)| (x - y).abs()).collect();
    let worst = diffs.iter().copied().fold(0.0f32, f32::max);
    let visible = diffs.iter().filter(|d| **d > 1e-6).count();
    assert!(worst < 2e-5, "weights after 4 steps differ by up to {worst} (a fifth of a step is 2e-5)");
    assert!(visible * 1000 < wa.len(), "{visible} of {} weights differ by more than 1e-6", wa.len());
}

/// The two devices train one epoch, stop, and resume from `last.ckpt` for the second: resuming
/// a data-parallel run continues it as if it had not stopped. The test stage runs on both
/// devices, each on its share of the test images.
#[test]
fn two_devices_with_batch_1_train_as_one_device_with_batch_2_across_a_resume() {
    let dir = scratch("ddp-devices");
    example_data(&dir, FILES);
    // Two test images (the validation image tested too), one per device.
    let csv = |split: &str| dir.join(format!("data/example/segmentation/{split}.csv"));
    let (test, valid) = (std::fs::read_to_string(csv("test")).expect("test.csv"), std::fs::read_to_string(csv("valid")).expect("valid.csv"));
    let valid_row = valid.lines().nth(1).expect("a validation row");
    std::fs::write(csv("test"), format!("{}\n{valid_row}\n", test.trim_end())).expect("write test.csv");
    train(&dir, "one", &["data.batch_size=2"]);
    let two = train_epochs(&dir, "two", 1, &["data.batch_size=1", "trainer.devices=2"]);
    assert!(two.stdout.contains("data parallel: 2 device(s) on node 0 of 1, 2 peers in all (per-device batch 1)"), "{}", two.text());
    let resumed = train(&dir, "two", &["data.batch_size=1", "trainer.devices=2", "--ckpt", "two/checkpoints/last.ckpt"]);
    assert!(resumed.stdout.contains("resumed from two/checkpoints/last.ckpt at epoch 1"), "{}", resumed.text());
    assert_same_training(&dir.join("one"), &dir.join("two"));
    // The test images are the last test image's, as on one device (written by device 1).
    let images = |run: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(run).join("test_images"))
            .map_or_else(|e| panic!("{run}/test_images: {e}"), |d| d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect());
        names.sort();
        names
    };
    let names = images("one");
    assert_eq!(names, images("two"));
    let inputs: Vec<&String> = names.iter().filter(|n| n.contains("_input")).collect();
    assert!(!inputs.is_empty(), "no input image among {names:?}");
    for name in inputs {
        let read = |run: &str| std::fs::read(dir.join(run).join("test_images").join(name)).expect("read an image");
        assert!(read("one") == read("two"), "test_images/{name}: another image than one device's last");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A node's process, its stdout lines forwarded to a channel (to wait for a line).
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn start_node(dir: &Path, rank: usize, master: u16, data: u16, out: &str, extra: &[&str]) -> Node {
    let mut child = Command::new(binary("segmentation"))
        .current_dir(dir)
        .args(["train", "data.batch_size=1", "trainer.num_nodes=2", "--output-dir", out])
        .args(extra)
        .args(["--node-rank", &rank.to_string(), "--master-addr", "127.0.0.1", "--master-port", &master.to_string()])
        .args(["--data-port", &data.to_string()])
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Node { child, lines }
}

impl Node {
    /// Waits for the process to end (killing it after `limit`); its status and stderr.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String, Vec<String>) {
        let start = Instant::now();
        let status = loop {
            match self.child.try_wait().expect("wait") {
                Some(status) => break status.code(),
                None if start.elapsed() > limit => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("a node still ran after {limit:?}");
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        (status, stderr, self.lines.try_iter().collect())
    }
}

#[test]
fn two_nodes_on_loopback_train_as_one_process_and_a_killed_node_stops_the_other() {
    let dir = scratch("ddp-nodes");
    example_data(&dir, FILES);
    train(&dir, "one", &["data.batch_size=2"]);

    let (master, data0, data1) = (free_port(), free_port(), free_port());
    let nodes = [start_node(&dir, 0, master, data0, "two", &["trainer.max_epochs=2"]), start_node(&dir, 1, master, data1, "node1", &["trainer.max_epochs=2"])];
    for (rank, node) in nodes.into_iter().enumerate() {
        let (status, stderr, stdout) = node.finish(Duration::from_secs(300));
        assert_eq!(status, Some(0), "node {rank}:\n{}\n{stderr}", stdout.join("\n"));
    }
    assert_same_training(&dir.join("one"), &dir.join("two"));
    assert!(!dir.join("node1").exists(), "only node 0 writes the run folder");

    // A long run; node 1 is killed once node 0 has finished an epoch (and written last.ckpt).
    let (master, data0, data1) = (free_port(), free_port(), free_port());
    let long = ["trainer.max_epochs=1000", "--peer-timeout", "30"];
    let survivor = start_node(&dir, 0, master, data0, "killed", &long);
    let mut victim = start_node(&dir, 1, master, data1, "killed1", &long);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let line = survivor.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("node 0 trains an epoch");
        if line.starts_with("val epoch 1 done") {
            break;
        }
    }
    victim.child.kill().expect("kill node 1");
    let killed = Instant::now();
    let _ = victim.child.wait();
    let (status, stderr, _) = survivor.finish(Duration::from_secs(120));
    assert_eq!(status, Some(1), "node 0 stops with an error:\n{stderr}");
    assert!(killed.elapsed() < Duration::from_secs(100), "node 0 took {:?} to stop", killed.elapsed());
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(error.contains("peer 0 of 2") && error.contains("restart every peer with --ckpt"), "{error}");
    // The last checkpoint is whole: a run resumes from it.
    let last = dir.join("killed/checkpoints/last.ckpt");
    cytodl_runtime::train::checkpoint::read(&last).unwrap_or_else(|e| panic!("{}: {e}", last.display()));
}
