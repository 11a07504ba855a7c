//! DynUNet parity against a MONAI fixture (see /work/shared/tools/make_parity_fixture.py).
//!
//! `parity FIXTURE_DIR [--ckpt PATH]` reads `meta.json`, builds the DynUNet, loads
//! `weights.safetensors` (or the PyTorch / Lightning checkpoint given with `--ckpt`), and prints
//! one JSON line `{"max_abs_out", "loss_abs", "max_rel_grad"}`:
//! - `max_abs_out`: max |eval-mode output - `output_eval`|;
//! - `loss_abs`: |DiceCE(sigmoid) of a train-mode forward vs `target` - `loss_train`|;
//! - `max_rel_grad`: max over parameters p of ‖g_p − g_ref,p‖∞ / max(‖g_ref,p‖∞, 0.01·G, 1e-12),
//!   G = max_p ‖g_ref,p‖∞ (see below why the floor); `max_rel_grad_raw`: the same without 0.01·G.
//!
//! `parity [--device cpu|wgpu|cuda|libtorch|libtorch:cpu] [--per-param] FIXTURE_DIR` runs it on wgpu or CUDA when built
//! with `--features wgpu` / `--features cuda`; `--per-param` lists every parameter's gradient error;
//! `--precision bf16-mixed|16-mixed` runs the convolutions in 16 bits (`nn::autocast`), to see
//! how far mixed precision is from the f32 reference (not held to the f32 tolerances).
//!
//! `parity --bench small|medium [ITERS] [cpu|cuda]` times a train step (forward + backward) and an eval
//! forward of the two models of /work/shared/bench/torch_dynunet_bench.py.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use cytodl_runtime::backend::{DeviceSpec, OnBackend};
use cytodl_runtime::nn::weights::{load_file, named_grads, LoadOptions, StateDict};
use cytodl_runtime::nn::Init;
use cytodl_runtime::nn::{DynUNet, DynUNetConfig, PerLevel};
use serde_json::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--bench") { bench(&args[1..]) } else { parity(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parity: {e}");
            ExitCode::FAILURE
        }
    }
}

/// MONAI `DiceCELoss(sigmoid=True)` with its defaults: per-(sample, channel) soft Dice with
/// smooth_nr = smooth_dr = 1e-5 (not squared, include background), mean; plus
/// `BCEWithLogits` mean; weights 1 / 1.
fn dice_ce<B: Backend>(logits: Tensor<B, 5>, target: Tensor<B, 5>) -> Tensor<B, 1> {
    let [n, c, ..] = logits.dims();
    let p = sigmoid(logits.clone()).reshape([n as i32, c as i32, -1]);
    let t = target.clone().reshape([n as i32, c as i32, -1]);
    let inter = (p.clone() * t.clone()).sum_dim(2);
    let denom = p.sum_dim(2) + t.sum_dim(2);
    let dice = (inter.mul_scalar(2.0).add_scalar(1e-5) / denom.add_scalar(1e-5)).neg().add_scalar(1.0).mean();
    // BCE with logits, stable form: max(x, 0) - x t + log(1 + exp(-|x|))
    let bce = (relu(logits.clone()) - logits.clone() * target + logits.abs().neg().exp().log1p()).mean();
    dice + bce
}

fn read_meta(dir: &Path) -> Result<Value, String> {
    let path = dir.join("meta.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

fn meta_usize(meta: &Value, key: &str) -> Result<usize, String> {
    meta.get(key).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| format!("meta.json: '{key}' missing or not a non-negative integer"))
}

fn meta_usizes(meta: &Value, key: &str) -> Result<Vec<usize>, String> {
    meta.get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_u64().map(|v| v as usize)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| format!("meta.json: '{key}' missing or not a list of integers"))
}

fn meta_levels(meta: &Value, key: &'static str) -> Result<Vec<PerLevel>, String> {
    let v = meta.get(key).ok_or_else(|| format!("meta.json: '{key}' missing"))?;
    PerLevel::list_from_json(v, key).map_err(|e| format!("meta.json: {e}"))
}

fn config_from_meta(meta: &Value) -> Result<DynUNetConfig, String> {
    let sd = meta_usize(meta, "spatial_dims")?;
    let filters = meta_usizes(meta, "filters")?;
    let cfg = DynUNetConfig::from_monai(
        sd,
        meta_usize(meta, "in_channels")?,
        meta_usize(meta, "out_channels")?,
        &meta_levels(meta, "kernel_size")?,
        &meta_levels(meta, "strides")?,
        &meta_levels(meta, "upsample_kernel_size")?,
        Some(&filters),
    )
    .map_err(|e| format!("meta.json: {e}"))?;
    let res = match meta.get("res_block") {
        None => false,
        Some(v) => v.as_bool().ok_or("meta.json: 'res_block' is not a boolean")?,
    };
    Ok(cfg.with_res_block(res))
}

/// A fixture tensor as 5-D (`[N, C, H, W]` gets Z = 1).
fn tensor5<B: Backend>(io: &StateDict, key: &str, device: &B::Device) -> Result<Tensor<B, 5>, String> {
    let data = io.tensors.get(key).ok_or_else(|| format!("{}: no tensor '{key}'", io.source.display()))?;
    let s = data.shape.to_vec();
    let shape: [usize; 5] = match s.len() {
        5 => [s[0], s[1], s[2], s[3], s[4]],
        4 => [s[0], s[1], 1, s[2], s[3]],
        _ => return Err(format!("{}: '{key}' has shape {s:?}, expected 4-D or 5-D", io.source.display())),
    };
    let values = data.to_vec::<f32>().map_err(|e| format!("{}: '{key}': {e:?}", io.source.display()))?;
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

fn floats(data: &TensorData, what: &str) -> Result<Vec<f32>, String> {
    data.clone().convert::<f32>().to_vec::<f32>().map_err(|e| format!("{what}: {e:?}"))
}

/// The parity numbers of one fixture (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    pub max_abs_out: f64,
    pub loss_abs: f64,
    pub max_rel_grad: f64,
    pub max_rel_grad_raw: f64,
}

fn parity(args: &[String]) -> Result<(), String> {
    let mut dir = None;
    let mut ckpt: Option<PathBuf> = None;
    let mut device = String::from("cpu");
    let mut per_param = false;
    let mut dtype = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ckpt" => ckpt = Some(it.next().ok_or("--ckpt needs a path")?.into()),
            "--device" => device = it.next().ok_or("--device needs cpu, cuda[:N], wgpu, libtorch[:cuda:N] or libtorch:cpu")?.clone(),
            "--per-param" => per_param = true,
            "--precision" => {
                dtype = match it.next().map(String::as_str) {
                    Some("32") => None,
                    Some("bf16-mixed") => Some(burn::tensor::FloatDType::BF16),
                    Some("16-mixed") => Some(burn::tensor::FloatDType::F16),
                    _ => return Err("--precision needs 32, bf16-mixed or 16-mixed".into()),
                }
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if dir.is_none() => dir = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let dir = dir.ok_or("usage: parity FIXTURE_DIR [--ckpt PATH] | parity --bench small|medium [ITERS]")?;
    let _autocast = cytodl_runtime::nn::autocast::enable(dtype);
    let spec: DeviceSpec = device.parse().map_err(|e: cytodl_runtime::backend::DeviceError| e.to_string())?;
    let m = spec.run(&device, Check { dir: &dir, ckpt: ckpt.as_deref(), per_param }).map_err(|e| e.to_string())??;
    println!(
        "{{\"max_abs_out\": {:e}, \"loss_abs\": {:e}, \"max_rel_grad\": {:e}, \"max_rel_grad_raw\": {:e}}}",
        m.max_abs_out, m.loss_abs, m.max_rel_grad, m.max_rel_grad_raw
    );
    Ok(())
}

/// [`check`] on the backend `--device` names.
struct Check<'a> {
    dir: &'a Path,
    ckpt: Option<&'a Path>,
    per_param: bool,
}

impl OnBackend for Check<'_> {
    type Output = Result<Metrics, String>;
    fn run<B: AutodiffBackend>(self, device: B::Device, _gpu: bool) -> Self::Output {
        check::<B>(self.dir, self.ckpt, &device, self.per_param)
    }
}

/// Runs the fixture in `dir` with its `weights.safetensors`, or with `ckpt` (PyTorch /
/// Lightning) when given.
pub fn check<B: AutodiffBackend>(dir: &Path, ckpt: Option<&Path>, device: &B::Device, per_param: bool) -> Result<Metrics, String> {
    let device = device.clone();
    let meta = read_meta(dir)?;
    let cfg = config_from_meta(&meta)?;
    let model: DynUNet<B> = cfg.init(&device, &Init::new(0)).map_err(|e| e.to_string())?;
    let weights = ckpt.map(Path::to_path_buf).unwrap_or_else(|| dir.join("weights.safetensors"));
    let options = LoadOptions { strict: true, prefix: None };
    let (model, _report) = load_file(model, &weights, &options).map_err(|e| e.to_string())?;
    let io = StateDict::from_safetensors(dir.join("io.safetensors")).map_err(|e| e.to_string())?;

    // Eval mode: the inner (non-autodiff) backend.
    let eval_model = model.valid();
    let x = tensor5::<B::InnerBackend>(&io, "input", &device)?;
    if let Some(shape) = meta.get("input_shape").and_then(Value::as_array) {
        let dims = io.tensors["input"].shape.to_vec();
        if shape.len() != dims.len() || shape.iter().zip(&dims).any(|(a, b)| a.as_u64() != Some(*b as u64)) {
            return Err(format!("meta.json input_shape {shape:?} does not match io input {dims:?}"));
        }
    }
    let out = eval_model.forward(x.clone());
    let expected = tensor5::<B::InnerBackend>(&io, "output_eval", &device)?;
    if out.dims() != expected.dims() {
        return Err(format!("output shape {:?} differs from output_eval {:?}", out.dims(), expected.dims()));
    }
    let max_abs_out: f32 = (out - expected).abs().max().into_scalar().elem();

    // Train mode: autodiff backend, one forward + backward.
    let xt = Tensor::<B, 5>::from_inner(x);
    let target = tensor5::<B>(&io, "target", &device)?;
    let loss = dice_ce(model.forward(xt), target);
    let loss_value: f32 = loss.clone().into_scalar().elem();
    let loss_ref = floats(io.tensors.get("loss_train").ok_or("io.safetensors: no 'loss_train'")?, "loss_train")?;
    let loss_abs = (loss_value as f64 - *loss_ref.first().ok_or("loss_train is empty")? as f64).abs();
    let grads = loss.backward();
    let got = named_grads(&model, &grads);
    // (name, ‖g − g_ref‖∞, ‖g_ref‖∞) per parameter
    let mut errs = Vec::new();
    for (name, g) in &got {
        let key = format!("grad.{name}");
        let r = io.tensors.get(&key).ok_or_else(|| format!("io.safetensors: no reference gradient '{key}'"))?;
        let (g, r) = (floats(g, name)?, floats(r, &key)?);
        if g.len() != r.len() {
            return Err(format!("gradient '{name}' has {} values, reference {}", g.len(), r.len()));
        }
        let diff = cytodl_testkit::max_abs_diff(&g, &r);
        let scale = cytodl_testkit::max_abs(&r);
        errs.push((name.clone(), diff, scale));
    }
    // The denominator is floored at 1% of the largest reference gradient of the network: a
    // parameter whose true gradient is ~0 (a 1x1 conv from one input channel straight into an
    // instance norm is scale-invariant, e.g. input_block.conv3 with in_channels = 1) has a
    // float32 reference that is rounding noise; torch's own float64 gradients miss it by 5e-3..2e-2
    // relative. `max_rel_grad_raw` is the unfloored value.
    let global = errs.iter().map(|e| e.2).fold(0.0, f64::max);
    let rel = |floor: f64| errs.iter().map(|(n, d, s)| (d / s.max(floor).max(1e-12), n.as_str())).fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    let (max_rel_grad, worst) = rel(1e-2 * global);
    let (max_rel_grad_raw, worst_raw) = rel(0.0);
    let n_ref = io.tensors.keys().filter(|k| k.starts_with("grad.")).count();
    if n_ref != got.len() {
        return Err(format!("{} parameter gradients computed, {} in the fixture", got.len(), n_ref));
    }
    eprintln!("parity: {} params, worst gradient {worst} (unfloored: {worst_raw})", got.len());
    if per_param {
        // Every parameter, worst first: where a wrong kernel shows up first.
        let mut rows: Vec<_> = errs.iter().map(|(n, d, s)| (d / s.max(1e-2 * global).max(1e-12), n, d, s)).collect();
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (rel, name, diff, scale) in rows {
            eprintln!("  {rel:10.3e}  max|diff| {diff:10.3e}  max|ref| {scale:10.3e}  {name}");
        }
    }
    Ok(Metrics { max_abs_out: max_abs_out as f64, loss_abs, max_rel_grad, max_rel_grad_raw })
}

fn bench(args: &[String]) -> Result<(), String> {
    let which = args.first().map(String::as_str).unwrap_or("small");
    let iters: usize = match args.get(1) {
        Some(s) => s.parse().map_err(|_| format!("bad ITERS {s}"))?,
        None => 5,
    };
    let device = args.get(2).map(String::as_str).unwrap_or("cpu");
    let spec: DeviceSpec = device.parse().map_err(|e: cytodl_runtime::backend::DeviceError| e.to_string())?;
    spec.run(device, Bench { which, iters }).map_err(|e| e.to_string())?
}

/// [`bench_on`] on the backend `--device` names.
struct Bench<'a> {
    which: &'a str,
    iters: usize,
}

impl OnBackend for Bench<'_> {
    type Output = Result<(), String>;
    fn run<B: AutodiffBackend>(self, device: B::Device, _gpu: bool) -> Self::Output {
        bench_on::<B>(self.which, self.iters, &device)
    }
}

fn bench_on<B: AutodiffBackend>(which: &str, iters: usize, device: &B::Device) -> Result<(), String> {
    let (filters, strides, shape): (Vec<usize>, Vec<usize>, [usize; 5]) = match which {
        "small" => (vec![16, 32, 64], vec![1, 2, 2], [1, 1, 16, 32, 32]),
        "medium" => (vec![16, 32, 64, 128], vec![1, 2, 2, 2], [2, 1, 32, 64, 64]),
        s => return Err(format!("unknown bench {s} (small|medium)")),
    };
    let n = strides.len();
    let lv = |v: &[usize]| v.iter().map(|&k| PerLevel::Int(k)).collect::<Vec<_>>();
    let cfg = DynUNetConfig::from_monai(3, 1, 1, &lv(&vec![3; n]), &lv(&strides), &lv(&strides[1..]), Some(&filters))
        .map_err(|e| e.to_string())?
        .with_res_block(true);
    let device = device.clone();
    let model: DynUNet<B> = cfg.init(&device, &Init::new(0)).map_err(|e| e.to_string())?;
    let x = Init::new(1).normal::<B, 5>(shape, 0.0, 1.0, &device);
    let y = Init::new(2).uniform::<B, 5>([shape[0], 1, shape[2], shape[3], shape[4]], 0.0, 1.0, &device).lower_elem(0.4).float();
    let step = || {
        let loss = dice_ce(model.forward(x.clone()), y.clone());
        let grads = loss.backward();
        let g = named_grads(&model, &grads);
        std::hint::black_box(g.len());
    };
    step(); // warm-up
    let t = Instant::now();
    for _ in 0..iters {
        step();
    }
    let train_ms = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let eval_model = model.valid();
    let xe = x.inner();
    let fwd = || {
        let out = eval_model.forward(xe.clone());
        let v: f32 = out.sum().into_scalar().elem();
        std::hint::black_box(v);
    };
    fwd();
    let t = Instant::now();
    for _ in 0..iters {
        fwd();
    }
    let eval_ms = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
    println!("{{\"model\": \"{which}\", \"train_step_ms\": {train_ms:.1}, \"eval_fwd_ms\": {eval_ms:.1}, \"iters\": {iters}}}");
    Ok(())
}
