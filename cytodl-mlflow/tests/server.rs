//! The MLflow client against a real MLflow server (started on loopback from PyPI's `mlflow`)
//! and, for `file:` URIs, read back by MLflow's own Python client: the oracle is MLflow itself.

use std::path::Path;
use std::time::Duration;

use cytodl_mlflow::rest::RestStore;
use cytodl_mlflow::{Metric, RunOptions, RunStatus, TrackedRun, TrackingUri};
use cytodl_testkit::{MlflowServer, Scratch};

fn options(uri: TrackingUri, experiment: &str) -> RunOptions {
    RunOptions {
        tracking_uri: uri,
        experiment: experiment.to_string(),
        run_name: Some("run-1".into()),
        tags: vec![("cytodl.experiment".into(), "segmentation".into())],
        fault_tolerant: true,
        flush_timeout: Duration::from_secs(90),
    }
}

fn metric(key: &str, value: f64, step: i64) -> Metric {
    Metric { key: key.into(), value, timestamp: 1_700_000_000_000 + step, step }
}

/// `(step, value)` of a metric's history on the server, sorted by step.
fn history(client: &RestStore, run_id: &str, key: &str) -> Vec<(i64, f64)> {
    let mut h: Vec<(i64, f64)> = client.metric_history(run_id, key).expect("history").iter().map(|m| (m.step, m.value)).collect();
    h.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    h
}

#[test]
fn runs_params_metrics_tags_and_artifacts_reach_the_server() {
    let dir = Scratch::new("mlflow-server");
    let Some(server) = MlflowServer::start("runs_params_metrics_tags_and_artifacts_reach_the_server", &dir) else { return };
    let run_dir = dir.join("run");
    let mut run = TrackedRun::start(&run_dir, options(TrackingUri::Server(server.uri()), "cytodl tests")).expect("start");
    run.log_params((0..150).map(|i| (format!("model.p{i:03}"), i.to_string())).collect());
    run.set_tags(vec![("note".into(), "first".into())]);
    for step in 0..5 {
        run.log_metrics(vec![metric("train/loss", 1.0 / (step + 1) as f64, step), metric("val/loss/seg", 2.0 * step as f64, step)]);
    }
    let png = run_dir.join("loss.png");
    std::fs::write(&png, b"\x89PNG picture bytes").unwrap();
    run.log_artifact(&png, "plots", "loss.png");
    let ckpt = run_dir.join("epoch_001.ckpt");
    let weights: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&ckpt, &weights).unwrap();
    run.log_artifact(&ckpt, "checkpoints/val/loss", "epoch_001.ckpt");
    run.log_artifact(&ckpt, "checkpoints/val/loss", "stale.ckpt");
    run.delete_artifact("checkpoints/val/loss/stale.ckpt");
    let delivery = run.finish(RunStatus::Finished);
    assert_eq!((delivery.pending, delivery.refused.len()), (0, 0), "{delivery}");

    let client = RestStore::new(&server.uri());
    let info = delivery.run.expect("the run");
    let got = client.get_run(&info.run_id).expect("runs/get");
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(got["run"]["info"]["run_name"], "run-1");
    let params = got["run"]["data"]["params"].as_array().expect("params");
    assert_eq!(params.len(), 150, "all params, over two batches");
    assert!(params.iter().any(|p| p["key"] == "model.p149" && p["value"] == "149"));
    let tags = got["run"]["data"]["tags"].as_array().expect("tags");
    for (k, v) in [("cytodl.experiment", "segmentation"), ("note", "first")] {
        assert!(tags.iter().any(|t| t["key"] == k && t["value"] == v), "tag {k}");
    }
    assert_eq!(history(&client, &info.run_id, "train/loss"), (0..5).map(|s| (s, 1.0 / (s + 1) as f64)).collect::<Vec<_>>());
    assert_eq!(history(&client, &info.run_id, "val/loss/seg"), (0..5).map(|s| (s, 2.0 * s as f64)).collect::<Vec<_>>());
    assert_eq!(client.list_artifacts(&info.run_id, "checkpoints/val/loss").expect("list"), vec![("checkpoints/val/loss/epoch_001.ckpt".to_string(), false)]);
    assert_eq!(client.download_artifact(&info, "checkpoints/val/loss/epoch_001.ckpt").expect("download"), weights);
    assert_eq!(client.download_artifact(&info, "plots/loss.png").expect("download"), b"\x89PNG picture bytes");

    // The same run folder again (a resumed run) continues the same MLflow run.
    let mut again = TrackedRun::start(&run_dir, options(TrackingUri::Server(server.uri()), "cytodl tests")).expect("resume");
    again.log_metrics(vec![metric("train/loss", 0.1, 5)]);
    let delivery = again.finish(RunStatus::Killed);
    assert_eq!(delivery.run.as_ref().map(|r| &r.run_id), Some(&info.run_id));
    assert_eq!(client.get_run(&info.run_id).expect("runs/get")["run"]["info"]["status"], "KILLED");
    assert_eq!(history(&client, &info.run_id, "train/loss").len(), 6);
}

#[test]
fn a_server_killed_mid_run_and_restarted_loses_no_metric() {
    let dir = Scratch::new("mlflow-kill");
    let Some(mut server) = MlflowServer::start("a_server_killed_mid_run_and_restarted_loses_no_metric", &dir) else { return };
    let run_dir = dir.join("run");
    let mut run = TrackedRun::start(&run_dir, options(TrackingUri::Server(server.uri()), "kill test")).expect("start");
    for step in 0..40 {
        if step == 10 {
            server.kill();
        }
        run.log_metrics(vec![metric("train/loss", step as f64 * 0.5, step)]);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Training never waits for the server: a log call is a journal append, and the records
    // wait there while the server is away.
    let waiting = run.delivery();
    assert!(waiting.pending > 0 && waiting.last_error.is_some(), "records wait while the server is away: {waiting}");
    server.restart();
    let delivery = run.finish(RunStatus::Finished);
    assert_eq!((delivery.pending, delivery.refused.len()), (0, 0), "{delivery}");
    let client = RestStore::new(&server.uri());
    let run_id = delivery.run.expect("run").run_id;
    let steps: std::collections::BTreeSet<i64> = history(&client, &run_id, "train/loss").iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (0..40).collect(), "every step reached the server");
    assert_eq!(client.get_run(&run_id).expect("run")["run"]["info"]["status"], "FINISHED");
}

#[test]
fn a_wrong_uri_is_an_error_before_training_or_a_warning_when_fault_tolerant() {
    let dir = Scratch::new("mlflow-wrong-uri");
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let uri = TrackingUri::Server(format!("http://127.0.0.1:{port}"));
    let strict = RunOptions { fault_tolerant: false, ..options(uri.clone(), "e") };
    let err = TrackedRun::start(&dir.join("a"), strict).err().expect("an error");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")) && err.to_string().contains("fault_tolerant"), "{err}");
    let run = TrackedRun::start(&dir.join("b"), RunOptions { flush_timeout: Duration::from_millis(200), ..options(uri, "e") }).expect("fault tolerant");
    let delivery = run.finish(RunStatus::Finished);
    assert!(delivery.pending > 0 && delivery.run.is_none(), "{delivery}");
    assert!(dir.join("b/mlflow/journal.jsonl").is_file(), "the records are kept");
}

/// What MLflow's Python client reads from a file store: status, params, metric history, tags.
fn read_with_mlflow(python: &Path, root: &Path, run_id: &str) -> serde_json::Value {
    let script = format!(
        "import json, mlflow\nc = mlflow.MlflowClient(tracking_uri='file://{root}')\nr = c.get_run('{run_id}')\n\
         print(json.dumps({{'status': r.info.status, 'name': r.info.run_name, 'params': r.data.params, 'tags': r.data.tags,\n\
         'history': [[m.step, m.value] for m in c.get_metric_history('{run_id}', 'train/loss')],\n\
         'experiment': c.get_experiment(r.info.experiment_id).name,\n\
         'artifacts': [a.path for a in c.list_artifacts('{run_id}', 'plots')]}}))",
        root = root.display()
    );
    let out = std::process::Command::new(python).args(["-c", &script]).env("MLFLOW_ALLOW_FILE_STORE", "true").output().expect("python");
    assert!(out.status.success(), "mlflow could not read the file store:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_file_store_reads_back_in_mlflow() {
    let dir = Scratch::new("mlflow-file");
    let Some(python) = cytodl_testkit::python_with_mlflow("a_file_store_reads_back_in_mlflow") else { return };
    let root = dir.join("mlruns");
    let mut run = TrackedRun::start(&dir.join("run"), options(TrackingUri::Folder(root.clone()), "file exp")).expect("start");
    run.log_params(vec![("data.batch_size".into(), "4".into())]);
    for step in 0..3 {
        run.log_metrics(vec![metric("train/loss", 0.25 * step as f64, step)]);
    }
    let png = dir.join("loss.png");
    std::fs::write(&png, b"png").unwrap();
    run.log_artifact(&png, "plots", "loss.png");
    let delivery = run.finish(RunStatus::Failed);
    assert_eq!(delivery.pending, 0, "{delivery}");
    let got = read_with_mlflow(&python, &root, &delivery.run.expect("run").run_id);
    assert_eq!(got["status"], "FAILED");
    assert_eq!(got["name"], "run-1");
    assert_eq!(got["experiment"], "file exp");
    assert_eq!(got["params"]["data.batch_size"], "4");
    assert_eq!(got["tags"]["cytodl.experiment"], "segmentation");
    assert_eq!(got["history"], serde_json::json!([[0, 0.0], [1, 0.25], [2, 0.5]]));
    assert_eq!(got["artifacts"], serde_json::json!(["plots/loss.png"]));
}
