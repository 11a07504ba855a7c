//! Data-parallel training on several CPU devices in one process (burn-collective's local
//! all-reduce): two peers with batch b take the same steps as one device with batch 2b, hold
//! bit-identical weights after every step, agree validation over their shards, and a peer that
//! fails or hangs stops the other with an error instead of a hang; gradient accumulation, the GAN
//! step, Ctrl-C and the test stage's weight sharing keep their one-device meaning.
//!
//! burn-collective keeps one collective per backend and process: the tests here take turns
//! ([`SERIAL`]) and reset it first.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::collective::{reset_collective, CollectiveConfig};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use cytodl_runtime::backend::{Cpu, CpuTrain};
use cytodl_runtime::config::Trainer as TrainerArgs;
use cytodl_runtime::data::loader::{Dataset, Loader, LoaderOptions, Shard};
use cytodl_runtime::loss::{Loss, Reduction};
use cytodl_runtime::nn::Init;
use cytodl_runtime::optim::{AdamConfig, GradClip, LrSchedule, Optimizer, OptimizerConfig, Scheduler, SgdConfig};
use cytodl_runtime::task::{Im2Im, Task};
use cytodl_runtime::train::error::TrainError;
use cytodl_runtime::train::parallel::{Abort, ParallelError, Peer};
use cytodl_runtime::train::trainer::{FitReport, Trainer, TrainerConfig};
use cytodl_runtime::transforms::Pipeline;
use cytodl_runtime::{Array, Rng, Sample};
use indexmap::IndexMap;

static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Module, Debug)]
struct Tiny<B: Backend> {
    conv: Conv3d<B>,
}

impl<B: Backend> Im2Im<B> for Tiny<B> {
    fn forward_heads(&self, x: Tensor<B, 5>) -> IndexMap<String, Tensor<B, 5>> {
        [("seg".to_string(), self.conv.forward(x))].into_iter().collect()
    }
}

type B = CpuTrain;

fn model() -> Tiny<B> {
    let device = Default::default();
    let init = Init::new(1).at("conv");
    let mut conv = Conv3dConfig::new([1, 1], [1, 3, 3]).with_padding(burn::nn::PaddingConfig3d::Same).init(&device);
    conv.weight = Param::from_tensor(init.at("weight").uniform([1, 1, 1, 3, 3], -0.3, 0.3, &device));
    conv.bias = Some(Param::from_tensor(init.at("bias").uniform([1], -0.3, 0.3, &device)));
    Tiny { conv }
}

fn samples(n: usize) -> Vec<Sample> {
    let mut rng = Rng::seed_from(9);
    (0..n)
        .map(|i| {
            let x: Vec<f32> = (0..64).map(|_| rng.normal() as f32).collect();
            let y: Vec<f32> = x.iter().enumerate().map(|(j, v)| 2.0 * v + 0.5 + 0.1 * (j % 3) as f32).collect();
            let mut s = Sample::new().with_array("raw", Array::new(vec![1, 8, 8], x).unwrap()).with_array("seg", Array::new(vec![1, 8, 8], y).unwrap());
            s.origin.row = i + 2;
            s
        })
        .collect()
}

fn loader(rows: Vec<Sample>, batch_size: usize, shuffle: bool, shard: Option<Shard>) -> Loader {
    Loader::new(Dataset { rows, pipeline: Pipeline::new(), cache: None }, LoaderOptions { batch_size, shuffle, seed: 3, shard, ..Default::default() })
}

/// A trainer with gradient clipping (which must act on the averaged gradients).
fn trainer(max_epochs: i64) -> Trainer<B, Tiny<B>> {
    let task = Task::new("raw", vec![("seg".into(), Loss::Mse { reduction: Reduction::Mean })]);
    let optimizer = Optimizer::new(OptimizerConfig::Adam(AdamConfig::default())).unwrap().with_grad_clip(GradClip::Norm(0.5)).unwrap();
    let scheduler = Scheduler::new(LrSchedule::Exponential { gamma: 0.9 }, 0.05).unwrap();
    let config = TrainerConfig::new(TrainerArgs { max_epochs, ..Default::default() }, 1);
    Trainer::new(config, task, model(), optimizer, scheduler, Default::default())
}

fn weights(model: &Tiny<B>) -> Vec<f32> {
    let mut w = model.conv.weight.val().into_data().into_vec::<f32>().unwrap();
    w.extend(model.conv.bias.as_ref().unwrap().val().into_data().into_vec::<f32>().unwrap());
    w
}

/// Runs `world` peers on threads; each gets its peer and returns what `body` returns.
fn peers<T: Send>(world: usize, timeout: Duration, body: impl Fn(Peer<Cpu>) -> T + Sync) -> Vec<T> {
    reset_collective::<Cpu>();
    let abort = Arc::new(Abort::default());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (abort, body) = (abort.clone(), &body);
                s.spawn(move || {
                    let config = CollectiveConfig::default().with_num_devices(world);
                    let peer = Peer::<Cpu>::join(rank, world, Default::default(), config, timeout, abort).expect("join");
                    body(peer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("peer thread")).collect()
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn two_peers_with_batch_b_step_as_one_device_with_batch_2b() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One device, batch 4: 10 items, 3 batches (4, 4, 2) per epoch, 3 epochs: 9 steps.
    let rows = samples(10);
    let val = samples(13)[10..].to_vec();
    let mut single = trainer(3);
    let one: FitReport = single.fit(&loader(rows.clone(), 4, true, None), Some(&loader(val.clone(), 1, false, None))).unwrap();
    let one_weights = weights(&single.model);
    assert_eq!(one.step_losses.len(), 9);

    let results = peers(2, Duration::from_secs(60), |peer| {
        let rank = peer.rank;
        let mut t = trainer(3);
        t.join(peer);
        let train = loader(rows.clone(), 2, true, Some(Shard { rank, world: 2, pad: true }));
        let val = loader(val.clone(), 1, false, Some(Shard { rank, world: 2, pad: false }));
        let report = t.fit(&train, Some(&val)).unwrap();
        (report, weights(&t.model))
    });
    let (a, b) = (&results[0], &results[1]);
    assert_eq!(a.1, b.1, "the peers' weights differ after training");
    assert_eq!(a.0.step_losses, b.0.step_losses, "the peers logged different losses");
    assert_eq!(a.0.last_val, b.0.last_val, "the peers computed different validation losses");
    assert_eq!(a.0.step_losses.len(), one.step_losses.len());
    for (i, (x, y)) in a.0.step_losses.iter().zip(&one.step_losses).enumerate() {
        assert!(close(*x, *y), "step {i}: 2 peers x batch 2 = {x}, 1 device x batch 4 = {y}");
    }
    for (i, (x, y)) in a.1.iter().zip(&one_weights).enumerate() {
        assert!(close(f64::from(*x), f64::from(*y)), "weight {i}: 2 peers {x}, 1 device {y}");
    }
    // Validation over 3 items: rank 0 has 2, rank 1 has 1; the mean is over all 3.
    let (v2, v1) = (a.0.last_val["val/loss"], one.last_val["val/loss"]);
    assert!(close(v2, v1), "val/loss: 2 peers {v2}, 1 device {v1}");
    // The last batch of each epoch is 2 items on one device, 1 + 1 on the peers: still equal.
    assert!(one.step_losses.iter().all(|l| l.is_finite()));
}

/// Gradient accumulation keeps its one-device meaning: the peers average their accumulated
/// gradients once per optimizer step (DDP's `no_sync`), and with SGD (which, unlike Adam, moves
/// with the gradients' scale) 2 peers x batch 1 take the steps of 1 device x batch 2.
#[test]
fn accumulated_gradients_are_averaged_once_per_optimizer_step() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sgd_trainer = || {
        let task = Task::new("raw", vec![("seg".into(), Loss::Mse { reduction: Reduction::Mean })]);
        let sgd = SgdConfig { momentum: 0.9, dampening: 0.0, nesterov: false, weight_decay: 0.0 };
        let optimizer = Optimizer::new(OptimizerConfig::Sgd(sgd)).unwrap();
        let scheduler = Scheduler::new(LrSchedule::Exponential { gamma: 1.0 }, 0.02).unwrap();
        let config = TrainerConfig::new(TrainerArgs { max_epochs: 2, accumulate_grad_batches: 2, ..Default::default() }, 1);
        Trainer::new(config, task, model(), optimizer, scheduler, Default::default())
    };
    // 10 items, batch 2 on one device: 5 batches, optimizer steps after batches 2, 4 and 5.
    let rows = samples(10);
    let mut single = sgd_trainer();
    let one = single.fit(&loader(rows.clone(), 2, true, None), None).unwrap();
    assert_eq!(one.global_step, 6, "3 optimizer steps per epoch");
    let results = peers(2, Duration::from_secs(60), |peer| {
        let rank = peer.rank;
        let mut t = sgd_trainer();
        t.join(peer);
        let report = t.fit(&loader(rows.clone(), 1, true, Some(Shard { rank, world: 2, pad: true })), None).unwrap();
        (report.global_step, weights(&t.model))
    });
    assert_eq!(results[0], results[1], "the peers' steps or weights differ");
    assert_eq!(results[0].0, one.global_step);
    let start = weights(&model());
    let one_weights = weights(&single.model);
    for (i, ((x, y), w0)) in results[0].1.iter().zip(&one_weights).zip(&start).enumerate() {
        assert!(close(f64::from(*x), f64::from(*y)), "weight {i}: 2 peers {x}, 1 device {y}");
        assert!((y - w0).abs() > 1e-3, "weight {i} hardly moved ({w0} -> {y}): the comparison would prove nothing");
    }
}

/// Two epochs of `rows` as one of two peers (the error is what the test inspects).
#[allow(clippy::result_large_err)]
fn fit_as_peer(peer: Peer<Cpu>, rows: &[Sample]) -> Result<FitReport, TrainError> {
    let rank = peer.rank;
    let mut t = trainer(2);
    t.join(peer);
    t.fit(&loader(rows.to_vec(), 2, true, Some(Shard { rank, world: 2, pad: true })), None)
}

#[test]
fn a_failed_peer_stops_the_others_at_once_and_a_silent_one_within_the_timeout() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rows = samples(8);
    // Peer 1 fails before its first batch: peer 0 stops at its first collective call.
    let started = Instant::now();
    let results = peers(2, Duration::from_secs(60), |peer| {
        if peer.rank == 1 {
            peer.fail("its data could not be read");
            return None;
        }
        Some(fit_as_peer(peer, &rows))
    });
    match &results[0] {
        Some(Err(TrainError::Parallel(ParallelError::PeerFailed { rank: 0, failed: 1, reason, .. }))) => {
            assert_eq!(reason, "its data could not be read")
        }
        other => panic!("peer 0 should stop because peer 1 failed, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30), "peer 0 waited for the whole timeout");

    // Peer 1 joins and then never answers (a hung process): peer 0 gives up after the timeout.
    let started = Instant::now();
    let results = peers(2, Duration::from_secs(2), |peer| {
        if peer.rank == 1 {
            return None;
        }
        Some(fit_as_peer(peer, &rows))
    });
    match &results[0] {
        Some(Err(e @ TrainError::Parallel(ParallelError::Timeout { rank: 0, world: 2, seconds: 2, .. }))) => {
            assert!(e.to_string().contains("restart every peer with --ckpt"), "{e}")
        }
        other => panic!("peer 0 should time out, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(30), "waited {waited:?}");
}

/// The weights of peer 0 reach every peer exactly (the test stage's weights: the best
/// checkpoint, which only peer 0 wrote), whatever the others held.
#[test]
fn the_first_peers_weights_reach_every_peer_exactly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let inner = |seed: u64| {
        let device = Default::default();
        let init = Init::new(seed);
        let mut conv = Conv3dConfig::new([1, 2], [1, 3, 3]).init::<Cpu>(&device);
        conv.weight = Param::from_tensor(init.at("weight").uniform([2, 1, 1, 3, 3], -1.0, 1.0, &device));
        conv.bias = Some(Param::from_tensor(init.at("bias").uniform([2], -1.0, 1.0, &device)));
        Tiny { conv }
    };
    let flat = |m: &Tiny<Cpu>| {
        let mut w = m.conv.weight.val().into_data().into_vec::<f32>().unwrap();
        w.extend(m.conv.bias.as_ref().unwrap().val().into_data().into_vec::<f32>().unwrap());
        w
    };
    let first = flat(&inner(100));
    let results = peers(3, Duration::from_secs(60), |peer| {
        let own = inner(100 + peer.rank as u64);
        let shared = peer.share_weights(own).unwrap();
        (shared.conv.weight.val().dims(), flat(&shared))
    });
    assert_ne!(first, flat(&inner(101)), "the peers must start from different weights");
    for (rank, (dims, w)) in results.iter().enumerate() {
        assert_eq!(dims, &[2, 1, 1, 3, 3], "peer {rank}: the shape is kept");
        assert_eq!(w, &first, "peer {rank} holds other weights than peer 0");
    }
}

/// Ctrl-C on one peer stops every peer before the same batch, each with the same
/// `Interrupted` (so the checkpoint written on the way out is the same step everywhere).
#[test]
fn ctrl_c_on_one_peer_stops_every_peer_at_the_same_batch() {
    use std::sync::atomic::AtomicBool;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    static PRESSED: AtomicBool = AtomicBool::new(true);
    static NOT_PRESSED: AtomicBool = AtomicBool::new(false);
    let rows = samples(8);
    let results = peers(2, Duration::from_secs(60), |peer| {
        let rank = peer.rank;
        let mut t = trainer(2);
        t.interrupt = Some(if rank == 1 { &PRESSED } else { &NOT_PRESSED });
        t.join(peer);
        let r = t.fit(&loader(rows.to_vec(), 2, true, Some(Shard { rank, world: 2, pad: true })), None);
        (matches!(r, Err(TrainError::Interrupted { epoch: 0, step: 0 })), format!("{r:?}"))
    });
    for (rank, (stopped, outcome)) in results.iter().enumerate() {
        assert!(stopped, "peer {rank} should stop before the first batch: {outcome}");
    }
}

/// The GAN step data-parallel: both optimizers' gradients are averaged, so two peers with
/// batch 1 take the steps of one device with batch 2 (cyto_dl's GAN: DynUNet + GANHead
/// generator, PatchGAN discriminator, Pix2PixHD + 100 x MSE).
#[test]
fn the_gan_step_on_two_peers_steps_as_one_device_with_twice_the_batch() {
    use burn::module::AutodiffModule;
    use cytodl_runtime::adversarial::{Adversarial, Criterion, GanObjective};
    use cytodl_runtime::model::{Gan, MultiTask};
    use cytodl_runtime::nn::discriminator::{MultiScaleDiscriminator, PatchGanConfig};
    use cytodl_runtime::nn::heads::Head;
    use cytodl_runtime::nn::{DynUNetConfig, PerLevel};
    use cytodl_runtime::train::gan_step::GanStep;
    use cytodl_runtime::train::step::Scheduled;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());

    let gan_trainer = || {
        let device = Default::default();
        let init = Init::new(0);
        let k: Vec<PerLevel> = vec![3.into(), 3.into(), 3.into()];
        let s: Vec<PerLevel> = vec![1.into(), 2.into(), 2.into()];
        let u: Vec<PerLevel> = vec![2.into(), 2.into()];
        let backbone = DynUNetConfig::from_monai(3, 1, 1, &k, &s, &u, Some(&[4, 8, 8])).unwrap().init(&device, &init.at("backbone")).unwrap();
        let generator = MultiTask::<B>::with_heads(backbone, vec![("seg".into(), Head::Tanh(Default::default()))]);
        let discriminator =
            MultiScaleDiscriminator::new(PatchGanConfig { input_nc: 2, ndf: 4, n_layers: 1, dim: 3 }, 1, &device, &init.at("discriminator")).unwrap();
        // SGD, not Adam: Adam's steps hardly change when the gradients are scaled, so a sum
        // where the mean belongs would pass unseen.
        let sgd = || Optimizer::new(OptimizerConfig::Sgd(SgdConfig { momentum: 0.9, dampening: 0.0, nesterov: false, weight_decay: 0.0 })).unwrap();
        let constant = |lr| Scheduler::new(LrSchedule::Exponential { gamma: 1.0 }, lr).unwrap();
        let step = GanStep::new(Scheduled::new(sgd(), constant(0.02)), Scheduled::new(sgd(), constant(0.02)));
        let objective = GanObjective {
            criterion: Criterion::Vanilla { real_label: 1.0, fake_label: 0.0 },
            scales: Some(1),
            gan_weight: 1.0,
            feature_matching_weight: 10.0,
        };
        let adversarial = Adversarial {
            head: "seg".into(),
            objective,
            reconstruction: Loss::Mse { reduction: Reduction::Mean },
            reconstruction_weight: 100.0,
            crop_to_common: false,
        };
        let config = TrainerConfig::new(TrainerArgs { max_epochs: 2, ..Default::default() }, 1);
        Trainer::with_step(config, Task::adversarial("raw", adversarial), Gan { generator, discriminator }, step, device)
    };
    let gan_weights = |m: &Gan<B>| {
        let record = |w: &mut Vec<f32>, t: Tensor<Cpu, 1>| w.extend(t.into_data().into_vec::<f32>().unwrap());
        let mut w = Vec::new();
        let valid = m.clone().valid();
        let mut visit = Collect { out: &mut w, record };
        valid.visit(&mut visit);
        w
    };
    // Volumes of 8 x 8 x 8; the target, a smooth function of the input, in tanh's range.
    let mut rng = Rng::seed_from(5);
    let rows: Vec<Sample> = (0..6)
        .map(|i| {
            let x: Vec<f32> = (0..512).map(|_| rng.normal() as f32).collect();
            let y: Vec<f32> = x.iter().map(|v| (0.5 * v + 0.1).tanh()).collect();
            let mut s = Sample::new().with_array("raw", Array::new(vec![1, 8, 8, 8], x).unwrap());
            // One row has no target: its batch is skipped on one device, and on two peers
            // only the peer holding it knows — they must agree to skip it together.
            if i != 3 {
                s = s.with_array("seg", Array::new(vec![1, 8, 8, 8], y).unwrap());
            }
            s.origin.row = i + 2;
            s
        })
        .collect();

    let mut single = gan_trainer();
    let one = single.fit(&loader(rows.clone(), 2, true, None), None).unwrap();
    assert_eq!(one.global_step, 2 * 2 * 2, "two optimizer steps per batch, 3 batches of which one is skipped, 2 epochs");
    let one_weights = gan_weights(&single.model);
    let results = peers(2, Duration::from_secs(60), |peer| {
        let rank = peer.rank;
        let mut t = gan_trainer();
        t.join(peer);
        let report = t.fit(&loader(rows.clone(), 1, true, Some(Shard { rank, world: 2, pad: true })), None).unwrap();
        (report, gan_weights(&t.model))
    });
    let (a, b) = (&results[0], &results[1]);
    assert_eq!(a.1, b.1, "the peers' generator and discriminator weights differ");
    assert_eq!(a.0.global_step, one.global_step);
    assert_eq!(a.0.step_losses.len(), one.step_losses.len());
    for (i, (x, y)) in a.0.step_losses.iter().zip(&one.step_losses).enumerate() {
        assert!(close(*x, *y), "step {i}: 2 peers x batch 1 = {x}, 1 device x batch 2 = {y}");
    }
    assert_eq!(a.1.len(), one_weights.len());
    let worst = a.1.iter().zip(&one_weights).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    eprintln!("GAN: largest weight difference, 2 peers vs 1 device: {worst:e}");
    assert!(worst < 1e-5, "largest weight difference {worst}");
    let moved = one_weights.iter().zip(&gan_weights(&gan_trainer().model)).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "training must move the weights (by {moved}) far beyond the tolerance");
}

/// Every float parameter's values, in the module's order.
struct Collect<'a, F> {
    out: &'a mut Vec<f32>,
    record: F,
}

impl<F: FnMut(&mut Vec<f32>, Tensor<Cpu, 1>)> burn::module::ModuleVisitor<Cpu> for Collect<'_, F> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Cpu, D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        (self.record)(self.out, t.reshape([n]));
    }
}
