//! Data parallelism (Lightning's DDP) on burn-collective: one peer per device, one process per
//! node, every peer holding the whole model.
//!
//! Each peer trains on its shard of every batch ([`crate::data::loader::Shard`]); before each
//! optimizer step its gradients are averaged with every other peer's ([`Peer::mean_gradients`]:
//! one all-reduce of all gradients laid end to end, as DDP's buckets), so every peer takes the
//! same step and keeps identical weights. The scalars the loop decides on — the batch's losses,
//! whether any loss was non-finite, whether the user pressed Ctrl-C, validation sums and metric
//! states — are agreed the same way ([`Peer::sum`], [`Peer::gather`]), so every peer stops, skips
//! or early-stops together.
//!
//! burn-collective waits forever for a peer that never answers; every call here waits at most
//! [`Peer::timeout`] and stops at once when another peer of the same process has failed
//! ([`Abort`]), so a dead or hung peer ends the run with an error instead of a hang.

use std::marker::PhantomData;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::collective::{self, CollectiveError, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};
use indexmap::IndexMap;
use thiserror::Error;

/// Why a data-parallel run stopped.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ParallelError {
    #[error(
        "peer {rank} of {world}: the other peers did not answer within {seconds} s during {during} (a peer died or hangs); stopping. The last checkpoint is intact: restart every peer with --ckpt <run>/checkpoints/last.ckpt to resume"
    )]
    Timeout { rank: usize, world: usize, seconds: u64, during: &'static str },
    #[error("peer {rank} of {world}: stopping because peer {failed} failed: {reason}")]
    PeerFailed { rank: usize, world: usize, failed: usize, reason: String },
    #[error("peer {rank} of {world}: burn-collective {during}: {message}. The last checkpoint is intact: restart every peer with --ckpt <run>/checkpoints/last.ckpt to resume")]
    Collective { rank: usize, world: usize, during: &'static str, message: String },
}

/// Where this process sits among the peers: `nodes` processes of `local_devices` peers each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub nodes: usize,
    pub node_rank: usize,
    pub local_devices: usize,
}

impl Topology {
    /// Peers in the whole run (Lightning's world size).
    pub fn world(&self) -> usize {
        self.nodes * self.local_devices
    }

    /// The global rank of this node's `local` peer (torchrun's order: node by node).
    pub fn rank(&self, local: usize) -> usize {
        self.node_rank * self.local_devices + local
    }
}

/// The first failure among a process's peers, which makes the others stop waiting.
#[derive(Debug, Default)]
pub struct Abort {
    failed: Mutex<Option<(usize, String)>>,
}

impl Abort {
    /// Records that peer `rank` failed (the first failure wins).
    pub fn fail(&self, rank: usize, reason: impl Into<String>) {
        if let Ok(mut f) = self.failed.lock() {
            f.get_or_insert_with(|| (rank, reason.into()));
        }
    }

    fn failed(&self) -> Option<(usize, String)> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }
}

/// One peer's handle on the collective. `B` is the backend tensors are reduced on (a training
/// backend's inner backend: gradients live there).
pub struct Peer<B: Backend> {
    pub rank: usize,
    pub world: usize,
    /// How long a collective call waits for the others before the run stops.
    pub timeout: Duration,
    device: B::Device,
    abort: Arc<Abort>,
    backend: PhantomData<B>,
}

impl<B: Backend> Clone for Peer<B> {
    fn clone(&self) -> Self {
        Peer { rank: self.rank, world: self.world, timeout: self.timeout, device: self.device.clone(), abort: self.abort.clone(), backend: PhantomData }
    }
}

impl<B: Backend> std::fmt::Debug for Peer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer({} of {})", self.rank, self.world)
    }
}

impl<B: Backend> Peer<B> {
    /// Joins the collective as global rank `rank` of `world` on `device`; returns when every
    /// peer (of every node) has joined.
    pub fn join(
        rank: usize,
        world: usize,
        device: B::Device,
        config: collective::CollectiveConfig,
        timeout: Duration,
        abort: Arc<Abort>,
    ) -> Result<Self, ParallelError> {
        let peer = Peer { rank, world, timeout, device: device.clone(), abort, backend: PhantomData };
        let id = peer.id();
        peer.wait("joining", move || collective::register::<B>(id, device, config))?;
        Ok(peer)
    }

    /// Whether this peer writes logs and checkpoints (Lightning's `global_rank == 0`).
    pub fn is_chief(&self) -> bool {
        self.rank == 0
    }

    fn id(&self) -> PeerId {
        PeerId::from(self.rank as u32)
    }

    /// Leaves the collective (every peer at the end of a run).
    pub fn leave(&self) -> Result<(), ParallelError> {
        let id = self.id();
        self.wait("leaving", move || collective::finish_collective::<B>(id))
    }

    /// Records this peer's failure for the others of its process.
    pub fn fail(&self, reason: impl Into<String>) {
        self.abort.fail(self.rank, reason);
    }

    /// Runs one blocking collective call on its own thread and waits for it, at most
    /// [`Peer::timeout`], giving up early when another local peer failed. (A call that times
    /// out leaves its thread blocked; the run is over by then.)
    fn wait<T: Send + 'static>(&self, during: &'static str, call: impl FnOnce() -> Result<T, CollectiveError> + Send + 'static) -> Result<T, ParallelError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(format!("collective-{}", self.rank))
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| self.collective_error(during, format!("cannot start a thread: {e}")))?;
        let start = Instant::now();
        loop {
            if let Some((failed, reason)) = self.abort.failed().filter(|(r, _)| *r != self.rank) {
                return Err(ParallelError::PeerFailed { rank: self.rank, world: self.world, failed, reason });
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(CollectiveError::LocalServerMissing)) => {
                    return Err(self.collective_error(during, "the collective stopped (another node disconnected or failed)".into()))
                }
                Ok(Err(e)) => return Err(self.collective_error(during, format!("{e:?}"))),
                Err(RecvTimeoutError::Disconnected) => return Err(self.collective_error(during, "the call ended without an answer".into())),
                Err(RecvTimeoutError::Timeout) if start.elapsed() >= self.timeout => {
                    return Err(ParallelError::Timeout { rank: self.rank, world: self.world, seconds: self.timeout.as_secs(), during })
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn collective_error(&self, during: &'static str, message: String) -> ParallelError {
        ParallelError::Collective { rank: self.rank, world: self.world, during, message }
    }

    /// Element-wise sums of `values` over every peer (each peer passes the same length). In f64
    /// where the backend has it, so that counts and sums stay exact.
    pub fn sum(&self, during: &'static str, values: &[f64]) -> Result<Vec<f64>, ParallelError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let dtype = if B::supports_dtype(&self.device, DType::F64) { DType::F64 } else { DType::F32 };
        // burn-collective's ring all-reduce between nodes splits a tensor in one slice per
        // node: it needs at least as many elements (padding with zeros changes no sum).
        let mut padded = values.to_vec();
        padded.resize(values.len().max(self.world), 0.0);
        let tensor = Tensor::<B, 1>::from_data(TensorData::new(padded, [values.len().max(self.world)]), (&self.device, dtype));
        let id = self.id();
        let reduced = self.wait(during, move || collective::all_reduce::<B>(id, tensor.into_primitive().tensor(), ReduceOperation::Sum))?;
        let data = Tensor::<B, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(reduced)).into_data();
        let mut sums = data.convert::<f64>().into_vec::<f64>().map_err(|e| self.collective_error(during, format!("{e:?}")))?;
        sums.truncate(values.len());
        Ok(sums)
    }

    /// Every peer's `values`, by rank (all-gather as a sum of vectors that are zero outside
    /// each peer's slot). Every peer passes the same length.
    pub fn gather(&self, during: &'static str, values: &[f64]) -> Result<Vec<Vec<f64>>, ParallelError> {
        let n = values.len();
        let mut slots = vec![0.0; n * self.world];
        slots[self.rank * n..(self.rank + 1) * n].copy_from_slice(values);
        let all = self.sum(during, &slots)?;
        Ok(all.chunks(n.max(1)).map(<[f64]>::to_vec).take(self.world).collect())
    }

    /// Whether any peer says yes (Ctrl-C on one node stops every node at the same batch).
    pub fn any(&self, during: &'static str, yes: bool) -> Result<bool, ParallelError> {
        Ok(self.sum(during, &[f64::from(u8::from(yes))])?[0] > 0.0)
    }
}

impl<B: Backend> Peer<B> {
    /// The element-wise sum over the peers of a float tensor (one all-reduce).
    pub fn sum_tensor(&self, during: &'static str, tensor: Tensor<B, 1>) -> Result<Tensor<B, 1>, ParallelError> {
        let id = self.id();
        let reduced = self.wait(during, move || collective::all_reduce::<B>(id, tensor.into_primitive().tensor(), ReduceOperation::Sum))?;
        Ok(Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(reduced)))
    }

    /// The mean over the peers of a model's gradients (DDP's all-reduce before the optimizer
    /// step): every gradient laid end to end in the module's parameter order (the same on every
    /// peer), one all-reduce, split back. A parameter with a gradient on some peers only gets
    /// the sum over those divided by the world size (DDP's zeros for unused parameters); one
    /// with a gradient on no peer stays without.
    pub fn mean_gradients<AB, M>(&self, model: &M, grads: GradientsParams) -> Result<GradientsParams, ParallelError>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut flatten = Flatten::<AB> { grads, parts: Vec::new(), present: Vec::new() };
        model.visit(&mut flatten);
        let Flatten { mut grads, parts, present } = flatten;
        if parts.is_empty() {
            return Ok(grads);
        }
        let sizes: Vec<usize> = parts.iter().map(|p| p.dims()[0]).collect();
        let mut all = parts;
        // Presence flags travel with the gradients: one all-reduce per step.
        all.push(Tensor::<B, 1>::from_floats(present.iter().map(|p| f32::from(u8::from(*p))).collect::<Vec<_>>().as_slice(), &self.device));
        let reduced = self.sum_tensor("averaging gradients", Tensor::cat(all, 0))?.div_scalar(self.world as f32);
        let total: usize = sizes.iter().sum();
        let flags = reduced.clone().narrow(0, total, present.len()).into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
        let mut pieces = if sizes.is_empty() { Vec::new() } else { reduced.narrow(0, 0, total).split_with_sizes(sizes, 0) }.into_iter();
        let mut restore = Restore::<AB> { grads: &mut grads, pieces: &mut pieces, flags: flags.into_iter(), backend: PhantomData };
        model.visit(&mut restore);
        Ok(grads)
    }
}

impl<B: Backend> Peer<B> {
    /// The first peer's weights, on every peer (DDP's broadcast from rank 0): every parameter
    /// laid end to end, the others' zeros, one all-reduce — exact, as adding zeros is. Used when
    /// only the first peer has them (the best checkpoint it wrote, on its own disk).
    pub fn share_weights<M: Module<B>>(&self, model: M) -> Result<M, ParallelError> {
        let mut collect = CollectWeights::<B> { zeros: !self.is_chief(), parts: Vec::new() };
        model.visit(&mut collect);
        if collect.parts.is_empty() {
            return Ok(model);
        }
        let sizes: Vec<usize> = collect.parts.iter().map(|p| p.dims()[0]).collect();
        let shared = self.sum_tensor("sharing the first peer's weights", Tensor::cat(collect.parts, 0))?;
        let mut pieces = shared.split_with_sizes(sizes, 0).into_iter();
        Ok(model.map(&mut ReplaceWeights { pieces: &mut pieces }))
    }
}

/// Every float parameter flattened (or zeros of its size).
struct CollectWeights<B: Backend> {
    zeros: bool,
    parts: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for CollectWeights<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let numel = value.shape().num_elements();
        self.parts.push(if self.zeros { Tensor::zeros([numel], &value.device()) } else { value.reshape([numel]) });
    }
}

/// Puts the shared weights in place, in the order [`CollectWeights`] took them.
struct ReplaceWeights<'a, B: Backend> {
    pieces: &'a mut std::vec::IntoIter<Tensor<B, 1>>,
}

impl<B: Backend> ModuleMapper<B> for ReplaceWeights<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, value, mapper) = param.consume();
        let value = match self.pieces.next() {
            Some(piece) => piece.reshape(value.dims()),
            None => value,
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Takes every float parameter's gradient out, flattened (zeros where it has none).
struct Flatten<AB: AutodiffBackend> {
    grads: GradientsParams,
    parts: Vec<Tensor<AB::InnerBackend, 1>>,
    present: Vec<bool>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Flatten<AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let value = param.val();
        let numel = value.shape().num_elements();
        let part = match self.grads.remove::<AB::InnerBackend, D>(param.id) {
            Some(g) => {
                self.present.push(true);
                g.reshape([numel])
            }
            None => {
                self.present.push(false);
                Tensor::zeros([numel], &value.device())
            }
        };
        self.parts.push(part);
    }
}

/// Puts the averaged gradients back, shaped as their parameters.
struct Restore<'a, AB: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    pieces: &'a mut std::vec::IntoIter<Tensor<AB::InnerBackend, 1>>,
    flags: std::vec::IntoIter<f32>,
    backend: PhantomData<AB>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Restore<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let (Some(piece), Some(flag)) = (self.pieces.next(), self.flags.next()) else { return };
        if flag > 0.0 {
            let dims: [usize; D] = param.val().dims();
            self.grads.register::<AB::InnerBackend, D>(param.id, piece.reshape(dims));
        }
    }
}

/// What the peers agreed a training batch gives.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchAgreement {
    /// Some peer's batch had no target for any head: nobody steps.
    Skip,
    /// Some peer's loss was NaN or infinite (this one's value, or NaN for another's): nobody
    /// steps, training stops.
    NonFinite(f64),
    /// The batch's named losses, averaged over the peers (the single-device value of the
    /// whole batch when the loss is a mean over samples).
    Losses(IndexMap<String, f64>),
}

/// Agrees a training batch's outcome: `local` is this peer's named losses (`None` without a
/// target), `names` every name a peer may give, in the same order on every peer. Without a
/// peer, the local outcome.
pub fn agree_batch<B: Backend>(peer: Option<&Peer<B>>, names: &[String], local: Option<IndexMap<String, f64>>) -> Result<BatchAgreement, ParallelError> {
    let non_finite = local.as_ref().and_then(|l| l.values().copied().find(|v| !v.is_finite()));
    let Some(peer) = peer else {
        return Ok(match (local, non_finite) {
            (None, _) => BatchAgreement::Skip,
            (Some(_), Some(v)) => BatchAgreement::NonFinite(v),
            (Some(l), None) => BatchAgreement::Losses(l),
        });
    };
    let mut values = vec![f64::from(u8::from(local.is_none())), f64::from(u8::from(non_finite.is_some()))];
    for name in names {
        match local.as_ref().and_then(|l| l.get(name)).filter(|v| v.is_finite()) {
            Some(v) => values.extend([1.0, *v]),
            None => values.extend([0.0, 0.0]),
        }
    }
    let sums = peer.sum("agreeing on a batch's losses", &values)?;
    if sums[1] > 0.0 {
        return Ok(BatchAgreement::NonFinite(non_finite.unwrap_or(f64::NAN)));
    }
    if sums[0] > 0.0 {
        return Ok(BatchAgreement::Skip);
    }
    Ok(BatchAgreement::Losses(names.iter().zip(sums[2..].chunks(2)).filter(|(_, c)| c[0] > 0.0).map(|(n, c)| (n.clone(), c[1] / c[0])).collect()))
}
