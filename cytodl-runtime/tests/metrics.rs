//! Metrics against torchmetrics 1.7.1 (what cyto_dl 0.6.2 installs), on committed fixtures made
//! by `tests/fixtures/metrics/make_metric_fixtures.py`: each metric, built from its `_target_`
//! and arguments the way `model.metrics` declares it, takes the oracle's batches one by one and
//! computes the epoch value torchmetrics computed — F1 (Dice) and Jaccard on probabilities and on
//! logits, PSNR with and without a data range, SSIM in 3D and 2D and with its arguments set,
//! Pearson, MSE, MAE.

use std::path::PathBuf;

use cytodl_runtime::array::Array;
use cytodl_runtime::metric::Accumulator;
use cytodl_runtime::nn::StateDict;
use cytodl_schema::{Args, Lit, MetricConfig};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn lit(v: &serde_json::Value) -> Lit {
    match v {
        serde_json::Value::Null => Lit::Null,
        serde_json::Value::Bool(b) => Lit::Bool(*b),
        serde_json::Value::Number(n) => n.as_i64().map(Lit::Int).unwrap_or_else(|| Lit::Float(n.as_f64().expect("number"))),
        serde_json::Value::String(s) => Lit::Str(s.clone()),
        serde_json::Value::Array(a) => Lit::List(a.iter().map(lit).collect()),
        serde_json::Value::Object(o) => Lit::Map(o.iter().map(|(k, v)| (k.clone(), lit(v))).collect()),
    }
}

fn array(dict: &StateDict, key: &str) -> Array {
    let t = dict.tensors.get(key).unwrap_or_else(|| panic!("fixture has no `{key}`"));
    Array::new(t.shape.to_vec(), t.as_slice::<f32>().expect("f32").to_vec()).expect("shape")
}

/// Every case of the oracle: (name, our value, torchmetrics' value).
fn evaluate() -> Vec<(String, f64, f64)> {
    let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json")).expect("json");
    let dict = StateDict::from_safetensors(fixtures().join("metrics.safetensors")).expect("fixture");
    let cases = cases["cases"].as_object().expect("cases");
    assert_eq!(cases.len(), 12, "the oracle writes 12 cases");
    cases
        .iter()
        .map(|(name, case)| {
            let target = case["_target_"].as_str().expect("_target_");
            let Lit::Map(args) = lit(&case["args"]) else { panic!("{name}: args") };
            let config = MetricConfig::from_args(target, &Args::of_map(&args))
                .unwrap_or_else(|| panic!("{name}: `{target}` is not a metric"))
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let mut acc = Accumulator::new(&config).expect("a comparing metric");
            let batches = case["batches"].as_u64().expect("batches");
            for i in 0..batches {
                acc.update(&array(&dict, &format!("{name}.{i}.preds")), &array(&dict, &format!("{name}.{i}.target"))).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            (name.clone(), acc.compute().expect("updated"), case["value"].as_f64().expect("value"))
        })
        .collect()
}

#[test]
fn every_metric_matches_torchmetrics() {
    let mut failures = Vec::new();
    for (name, ours, theirs) in evaluate() {
        // torchmetrics accumulates in float32; we in f64
        let tol = 2e-5 * theirs.abs().max(1.0);
        if (ours - theirs).abs() > tol {
            failures.push(format!("{name}: {ours} vs torchmetrics {theirs}"));
        }
    }
    assert!(failures.is_empty(), "metrics differ from torchmetrics:\n{}", failures.join("\n"));
}

#[test]
fn ssim_rejects_images_smaller_than_its_window() {
    let config = MetricConfig::from_args("torchmetrics.image.StructuralSimilarityIndexMeasure", &Args::default()).unwrap().unwrap();
    let mut acc = Accumulator::new(&config).unwrap();
    let a = Array::zeros(vec![1, 1, 4, 32, 32]);
    let e = acc.update(&a, &a).unwrap_err().to_string();
    assert!(e.contains("axis 2") && e.contains("has 4"), "{e}");
}

#[test]
fn a_loss_average_is_not_a_comparison() {
    let config = MetricConfig::from_args("torchmetrics.MeanMetric", &Args::default()).unwrap().unwrap();
    assert!(Accumulator::new(&config).unwrap_err().to_string().contains("loss"));
}
