//! Train-step and eval-forward time of MONAI's DynUNet on burn, the workload of
//! `../shared/bench/torch_dynunet_bench.py` (small: the cyto_dl segmentation model on a
//! [1,1,16,32,32] patch; medium: 4 levels 16..128 on [2,1,32,64,64]). One JSON line.
//!
//! `cargo run --release -p cytodl-runtime --example dynunet-bench -- [small|medium] [STEPS] [cpu|cuda|wgpu|libtorch|libtorch:cpu] [32|bf16-mixed|16-mixed]`
//! (`cuda` needs `--features cuda`, `wgpu` `--features wgpu`, `libtorch` `--features libtorch`). Mixed precision casts the
//! convolutions as the experiment binaries do (`nn::autocast`); on GPU backends
//! `CYTODL_GPU_CONV` picks the convolution algorithm (`nn::conv_gpu`; `CYTODL_GPU_GATHER=off` runs
//! burn's direct kernels in place of `nn::conv_gather`'s). `CYTODL_BENCH_WARMUP` (default 3)
//! sets the untimed steps before each timing, so that a kernel profile (`CUBECL_DEBUG_OPTION=profile`)
//! can cover a known number of steps; `CYTODL_BENCH_PHASES=1` syncs between the phases of each
//! step (forward with loss, backward, optimizer) so that the profile has a table for each.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::FloatDType;
use cytodl_runtime::backend::{backend_name, DeviceError, DeviceSpec, OnBackend};
use cytodl_runtime::loss::{Activation, DiceCeLossConfig, DiceLossConfig, Loss};
use cytodl_runtime::nn::Init;
use cytodl_runtime::nn::{DynUNetConfig, PerLevel};
use cytodl_runtime::optim::{AdamConfig, Optimizer, OptimizerConfig};

#[global_allocator]
static ALLOCATOR: cytodl_runtime::Allocator = cytodl_runtime::Allocator;

fn main() {
    cytodl_runtime::keep_freed_memory_mapped();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size = args.first().map(String::as_str).unwrap_or("small");
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let precision = args.get(3).map(String::as_str).unwrap_or("32");
    let dtype = match precision {
        "32" => None,
        "bf16-mixed" => Some(FloatDType::BF16),
        "16-mixed" => Some(FloatDType::F16),
        p => {
            eprintln!("error: unknown precision {p} (32, bf16-mixed, 16-mixed)");
            std::process::exit(2);
        }
    };
    let _autocast = cytodl_runtime::nn::autocast::enable(dtype);
    let device = args.get(2).map(String::as_str).unwrap_or("cpu");
    let spec: DeviceSpec = device.parse().unwrap_or_else(|e: DeviceError| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    if let Err(e) = spec.run(device, Bench { size, steps, precision }) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

/// [`run`] on the backend `--device` names.
struct Bench<'a> {
    size: &'a str,
    steps: usize,
    precision: &'a str,
}

impl OnBackend for Bench<'_> {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device, _gpu: bool) {
        run::<B>(self.size, self.steps, &device, backend_name::<B>(), self.precision)
    }
}

fn run<B: AutodiffBackend>(size: &str, steps: usize, device: &B::Device, device_name: &str, precision: &str) {
    let (levels, filters, shape): (usize, Vec<usize>, [usize; 5]) = match size {
        "medium" => (4, vec![16, 32, 64, 128], [2, 1, 32, 64, 64]),
        _ => (3, vec![16, 32, 64], [1, 1, 16, 32, 32]),
    };
    let k: Vec<PerLevel> = vec![3.into(); levels];
    let s: Vec<PerLevel> = (0..levels).map(|i| if i == 0 { 1.into() } else { 2.into() }).collect();
    let u: Vec<PerLevel> = vec![2.into(); levels - 1];
    let cfg = match DynUNetConfig::from_monai(3, 1, 1, &k, &s, &u, Some(&filters)) {
        Ok(c) => c.with_res_block(true),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let device = device.clone();
    cytodl_runtime::device_fault::watch();
    let mut net = cfg.init::<B>(&device, &Init::new(0)).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let mut opt = Optimizer::<B>::new(OptimizerConfig::Adam(AdamConfig { weight_decay: 1e-4, ..Default::default() })).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let loss = Loss::DiceCe(DiceCeLossConfig { dice: DiceLossConfig { activation: Activation::Sigmoid, ..Default::default() }, ..Default::default() });
    let x = Init::new(1).normal::<B, 5>(shape, 0.0, 1.0, &device);
    let y = Init::new(2).uniform::<B, 5>(shape, 0.0, 1.0, &device).greater_elem(0.5).float();
    // With `CYTODL_BENCH_PHASES` set, each step syncs after the forward pass with the loss and
    // after the backward pass, so that a kernel profile prints one table per phase (the timings
    // then include the waits).
    let phases = std::env::var_os("CYTODL_BENCH_PHASES").is_some();
    let mut train_step = |net: cytodl_runtime::nn::DynUNet<B>| {
        let l = loss.forward(net.forward(x.clone()), y.clone()).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        if phases {
            let _ = B::sync(&device);
        }
        let grads = GradientsParams::from_grads(l.backward(), &net);
        if phases {
            let _ = B::sync(&device);
        }
        opt.step(1e-4, net, grads)
    };
    let warmup: usize = std::env::var("CYTODL_BENCH_WARMUP").ok().and_then(|w| w.parse().ok()).unwrap_or(3);
    for _ in 0..warmup {
        net = train_step(net);
    }
    let _ = B::sync(&device);
    let t = Instant::now();
    for _ in 0..steps {
        net = train_step(net);
    }
    let _ = B::sync(&device);
    let train_ms = t.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let eval = net.valid();
    let xe = Init::new(3).normal::<B::InnerBackend, 5>(shape, 0.0, 1.0, &device);
    for _ in 0..warmup {
        let _ = eval.forward(xe.clone()).into_data();
    }
    let t = Instant::now();
    for _ in 0..steps {
        let _ = eval.forward(xe.clone()).into_data();
    }
    let eval_ms = t.elapsed().as_secs_f64() * 1e3 / steps as f64;
    // A timing of steps whose device tasks failed (out of memory...) measures nothing.
    if let Err(fault) = cytodl_runtime::device_fault::check() {
        eprintln!("error: {fault}");
        std::process::exit(1);
    }
    let mut conv = std::env::var("CYTODL_GPU_CONV").unwrap_or_else(|_| "direct".into());
    if let Ok(gather) = std::env::var("CYTODL_GPU_GATHER") {
        conv = format!("{conv}, CYTODL_GPU_GATHER={gather}");
    }
    let conv = match device_name {
        "cpu" => "cpu kernels".to_string(),
        "libtorch" => "libtorch".to_string(),
        _ => conv,
    };
    println!(
        "{{\"peer\": \"cytodl (burn 0.21)\", \"device\": \"{device_name}\", \"conv\": \"{conv}\", \"precision\": \"{precision}\", \"size\": \"{size}\", \"shape\": {shape:?}, \"train_step_ms\": {train_ms:.2}, \"eval_fwd_ms\": {eval_ms:.2}}}"
    );
}
