//! MLflow tracking through the user's path: the generated `ci-every-component` binary (its
//! config has `logger.mlflow`) trains against a real MLflow server started on loopback, and
//! what the server holds afterwards is read back through MLflow's REST API: the run and its
//! status, params, every metric of `metrics.csv`, the config, pictures and checkpoints. Also:
//! a server that is away for the whole run (`mlflow-sync` delivers later), and Ctrl-C (KILLED).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cytodl_mlflow::rest::RestStore;
use cytodl_mlflow::RunInfo;
use cytodl_testkit::MlflowServer;
use cytodl_tests::e2e::{binary, every_component_manifests, example_data, metric_values, metrics, run, scratch};

/// The run the binary named (`mlflow: <uri> (run <id>)`, or `mlflow-sync`'s report) as the server has it.
fn tracked_run(client: &RestStore, stdout: &str) -> (RunInfo, serde_json::Value) {
    let id = stdout
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 32 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("the binary names its MLflow run:\n{stdout}"))
        .to_string();
    let got = client.get_run(&id).expect("runs/get");
    let info = &got["run"]["info"];
    let run = RunInfo {
        experiment_id: info["experiment_id"].as_str().expect("experiment").into(),
        run_id: id,
        artifact_uri: info["artifact_uri"].as_str().expect("artifact uri").into(),
    };
    (run, got)
}

/// Every file under `path` of the run's artifacts, recursively.
fn artifacts(client: &RestStore, run_id: &str, path: &str, out: &mut BTreeSet<String>) {
    for (p, is_dir) in client.list_artifacts(run_id, path).expect("artifacts/list") {
        if is_dir {
            artifacts(client, run_id, &p, out);
        } else {
            out.insert(p);
        }
    }
}

/// `(width, height)` of a PNG, decoding it whole.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("decodes");
    (info.width, info.height)
}

/// Every value of each `train/` and `val/` column of `metrics.csv` is in the server's history
/// of that metric, at the same step.
fn assert_metrics_match_csv(client: &RestStore, run_id: &str, csv: &Path) {
    let rows = metrics(csv);
    let columns: BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).filter(|k| k.starts_with("train/") || k.starts_with("val/")).collect();
    assert!(columns.len() > 5, "the run logs its losses and metrics: {columns:?}");
    for column in columns {
        let mut expected: Vec<(i64, f64)> = rows.iter().filter_map(|r| Some((r.get("step")?.parse().ok()?, r.get(column)?.parse().ok()?))).collect();
        let mut got: Vec<(i64, f64)> = client.metric_history(run_id, column).expect("history").iter().map(|m| (m.step, m.value)).collect();
        expected.sort_by_key(|a| a.0);
        got.sort_by_key(|a| a.0);
        assert_eq!(got.len(), expected.len(), "`{column}`: server {got:?} vs csv {expected:?}");
        for ((gs, gv), (es, ev)) in got.iter().zip(&expected) {
            assert_eq!(gs, es, "`{column}` step");
            // The CSV holds Python's repr of the f64: the same number.
            assert!((gv - ev).abs() <= 1e-12 * ev.abs().max(1.0), "`{column}` at step {gs}: server {gv}, csv {ev}");
        }
    }
}

fn setup(name: &str) -> (cytodl_testkit::Scratch, PathBuf) {
    let dir = scratch(name);
    example_data(&dir, 5);
    every_component_manifests(&dir);
    let bin = binary("ci-every-component");
    (dir, bin)
}

#[test]
fn a_training_run_reaches_a_real_mlflow_server_with_its_pictures_and_checkpoints() {
    let (dir, bin) = setup("mlflow-server");
    let Some(server) = MlflowServer::start("a_training_run_reaches_a_real_mlflow_server_with_its_pictures_and_checkpoints", &dir.join("server")) else {
        return;
    };
    let run_dir = dir.join("run");
    let uri = format!("logger.mlflow.tracking_uri={}", server.uri());
    let r = run(&dir, &bin, &["train", "trainer.max_epochs=2", &uri, "logger.mlflow.run_name=e2e", "--output-dir", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok, "train:\n{}", r.text());
    assert!(r.stdout.contains("records sent") && !r.stdout.contains("not sent yet"), "{}", r.stdout);

    let client = RestStore::new(&server.uri());
    let (info, got) = tracked_run(&client, &r.stdout);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(got["run"]["info"]["run_name"], "e2e");
    // Params: the flattened resolved config, keyed as a Hydra override names a value.
    let params = got["run"]["data"]["params"].as_array().expect("params");
    let param = |k: &str| params.iter().find(|p| p["key"] == k).and_then(|p| p["value"].as_str()).map(str::to_string);
    assert_eq!(param("trainer.max_epochs").as_deref(), Some("2"), "the config as built (the run-time override is in .hydra/overrides.yaml)");
    assert_eq!(param("experiment_name").as_deref(), Some("every_component"));
    assert!(params.len() > 50, "every leaf of the config: {}", params.len());
    let tags = got["run"]["data"]["tags"].as_array().expect("tags");
    assert!(tags.iter().any(|t| t["key"] == "purpose" && t["value"] == "ci"), "the config's tags");

    assert_metrics_match_csv(&client, &info.run_id, &run_dir.join("csv/version_0/metrics.csv"));
    let epochs: Vec<f64> = client.metric_history(&info.run_id, "epoch").expect("epoch").iter().map(|m| m.value).collect();
    assert!(epochs.contains(&0.0) && epochs.contains(&1.0), "`epoch` as Lightning logs it: {epochs:?}");

    let mut files = BTreeSet::new();
    artifacts(&client, &info.run_id, "", &mut files);
    let config = client.download_artifact(&info, "config/train.yaml").expect("config");
    assert_eq!(String::from_utf8_lossy(&config), run(&dir, &bin, &["config"]).stdout, "config/train.yaml is the resolved config");
    // The loss plot as the run folder has it, and a montage per validation epoch and head.
    let plot = client.download_artifact(&info, "plots/loss.png").expect("plot");
    assert_eq!(plot, std::fs::read(run_dir.join("plots/loss.png")).expect("local plot"));
    let (w, h) = png_size(&plot);
    assert!(w == 800 && h >= 360, "loss.png is {w}x{h}");
    let montages: Vec<&String> = files.iter().filter(|f| f.starts_with("images/val_images/") && f.ends_with("_montage.png")).collect();
    assert!(!montages.is_empty(), "validation montages: {files:?}");
    let local_montages = std::fs::read_dir(run_dir.join("val_images"))
        .expect("val_images")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_montage.png"))
        .count();
    assert_eq!(montages.len(), local_montages, "every montage of the run folder is an artifact");
    let (mw, _) = png_size(&client.download_artifact(&info, montages[0]).expect("montage"));
    assert!(mw >= 384, "montage width {mw}");
    // Checkpoints as cyto_dl's logger keeps them: the top k under the monitor, best.ckpt, and last.
    let ranked: Vec<&String> = files.iter().filter(|f| f.starts_with("checkpoints/val/loss/") && !f.ends_with("best.ckpt")).collect();
    let kept = std::fs::read_dir(run_dir.join("checkpoints")).expect("checkpoints").flatten().filter(|e| e.file_name() != "last.ckpt").count();
    assert_eq!(ranked.len(), kept, "the server mirrors the kept checkpoints: {files:?}");
    assert!(files.contains("checkpoints/val/loss/best.ckpt") && files.contains("checkpoints/last.ckpt"), "{files:?}");
    let last = client.download_artifact(&info, "checkpoints/last.ckpt").expect("last");
    assert_eq!(last, std::fs::read(run_dir.join("checkpoints/last.ckpt")).expect("local last"), "last.ckpt is the final one");
}

#[test]
fn a_server_away_for_the_whole_run_gets_everything_from_mlflow_sync() {
    let (dir, bin) = setup("mlflow-away");
    let Some(mut server) = MlflowServer::not_started("a_server_away_for_the_whole_run_gets_everything_from_mlflow_sync", &dir.join("server")) else { return };
    let run_dir = dir.join("run");
    let uri = format!("logger.mlflow.tracking_uri={}", server.uri());
    let r = run(&dir, &bin, &["train", "trainer.max_epochs=2", &uri, "logger.mlflow.flush_timeout=2", "--output-dir", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok, "fault tolerant: training goes on without the server:\n{}", r.text());
    assert!(r.stderr.contains("does not answer"), "a warning before training:\n{}", r.stderr);
    assert!(r.stdout.contains("not sent yet") && r.stdout.contains("mlflow-sync"), "the report says what is left and how to send it:\n{}", r.stdout);

    // Not yet: mlflow-sync fails (and says so) while the server is still away.
    let r = run(&dir, &bin, &["mlflow-sync", run_dir.to_str().expect("utf-8"), "--timeout", "1"]);
    assert!(!r.ok && r.stderr.contains("still not delivered"), "{}", r.text());

    server.restart();
    let r = run(&dir, &bin, &["mlflow-sync", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok, "mlflow-sync:\n{}", r.text());
    let client = RestStore::new(&server.uri());
    let (info, got) = tracked_run(&client, &r.stdout);
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_metrics_match_csv(&client, &info.run_id, &run_dir.join("csv/version_0/metrics.csv"));
    let mut files = BTreeSet::new();
    artifacts(&client, &info.run_id, "", &mut files);
    for f in ["config/train.yaml", "plots/loss.png", "checkpoints/last.ckpt", "checkpoints/val/loss/best.ckpt"] {
        assert!(files.contains(f), "{f} after mlflow-sync: {files:?}");
    }
    assert_eq!(std::fs::read_dir(run_dir.join("mlflow/outbox")).expect("outbox").count(), 0, "delivered snapshots are removed");
    // Once delivered, a second sync has nothing to do.
    let r = run(&dir, &bin, &["mlflow-sync", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok && !r.stdout.contains("not sent"), "{}", r.text());
}

#[test]
fn ctrl_c_stops_training_and_the_run_is_killed_on_the_server() {
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    const SIGINT: i32 = 2;
    let (dir, bin) = setup("mlflow-sigint");
    let Some(server) = MlflowServer::start("ctrl_c_stops_training_and_the_run_is_killed_on_the_server", &dir.join("server")) else { return };
    let run_dir = dir.join("run");
    let uri = format!("logger.mlflow.tracking_uri={}", server.uri());
    let mut child = std::process::Command::new(&bin)
        .current_dir(&dir)
        .args(["train", "trainer.max_epochs=1000", &uri, "--output-dir", run_dir.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt once an epoch has been logged.
    let csv = run_dir.join("csv/version_0/metrics.csv");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !csv.is_file() && Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(csv.is_file(), "an epoch finished");
    // SAFETY: kill(2) with the child's pid and SIGINT.
    unsafe { kill(child.id() as i32, SIGINT) };
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("interrupted at epoch"), "{stderr}");
    let client = RestStore::new(&server.uri());
    let (info, got) = tracked_run(&client, &stdout);
    assert_eq!(got["run"]["info"]["status"], "KILLED");
    assert!(!metric_values(&metrics(&csv), "train/loss").is_empty());
    assert!(!client.metric_history(&info.run_id, "train/loss").expect("history").is_empty(), "what was logged before Ctrl-C is on the server");
    assert!(run_dir.join("checkpoints/last.ckpt").is_file(), "the last epoch's checkpoint is kept for a resume");
}
