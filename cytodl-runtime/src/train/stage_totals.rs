//! What an evaluation stage (validation, test) adds up over its batches: each logged loss's sum
//! and count, and the metrics' states. Kept as sums, not means, so that a data-parallel run adds
//! the peers' shards together ([`StageTotals::add_up`]) and every peer logs the mean over all of
//! them — the single-device value.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;

use super::error::TrainError;
use super::parallel::{ParallelError, Peer};
use crate::metric::EpochMetrics;
use crate::task::Task;

/// One stage's running sums over an epoch.
#[derive(Debug, Clone)]
pub struct StageTotals {
    stage: String,
    /// `<stage>/loss` and `<stage>/loss/<head>`: (sum, count).
    sums: BTreeMap<String, (f64, usize)>,
    pub metrics: EpochMetrics,
}

impl StageTotals {
    /// Nothing added yet, for `stage` ("val", "test") of `task`.
    pub fn new(task: &Task, stage: &str) -> Result<Self, TrainError> {
        let metrics = EpochMetrics::new(&task.metrics, stage).map_err(|e| (stage.to_string(), e))?;
        Ok(StageTotals { stage: stage.to_string(), sums: BTreeMap::new(), metrics })
    }

    /// Adds one batch's (or image's) losses: the total, if the batch had a target, and each
    /// head's.
    pub fn add_losses<H: AsRef<str>>(&mut self, total: Option<f64>, heads: impl IntoIterator<Item = (H, f64)>) {
        if let Some(v) = total {
            self.add(format!("{}/loss", self.stage), v);
        }
        for (head, v) in heads {
            self.add(format!("{}/loss/{}", self.stage, head.as_ref()), v);
        }
    }

    /// Adds one value of the loss logged as `name`.
    pub fn add(&mut self, name: String, value: f64) {
        let e = self.sums.entry(name).or_default();
        e.0 += value;
        e.1 += 1;
    }

    /// The sums and metric states added over every peer (nothing to do without one), so that
    /// each peer computes the same means from all shards. Every peer passes the same `task`.
    pub fn add_up<B: Backend>(&mut self, peer: Option<&Peer<B>>, task: &Task) -> Result<(), ParallelError> {
        let Some(peer) = peer else { return Ok(()) };
        // A fixed name list: a peer whose shard had no target for a head still sends its zeros.
        let names = task.loss_names(&self.stage);
        let values: Vec<f64> = names.iter().flat_map(|name| self.sums.get(name).map_or([0.0, 0.0], |(s, n)| [*s, *n as f64])).collect();
        let totals = peer.sum("adding up an epoch's losses", &values)?;
        self.sums = names.iter().zip(totals.chunks(2)).filter(|(_, t)| t[1] > 0.0).map(|(name, t)| (name.clone(), (t[0], t[1] as usize))).collect();
        self.add_up_metrics(Some(peer), task)
    }

    /// The metric states added over every peer, the losses left as they are (training: each
    /// batch's losses were agreed by the step already).
    pub fn add_up_metrics<B: Backend>(&mut self, peer: Option<&Peer<B>>, task: &Task) -> Result<(), ParallelError> {
        let Some(peer) = peer else { return Ok(()) };
        if self.metrics.is_empty() {
            return Ok(());
        }
        let own = self.metrics.to_numbers();
        let all = peer.gather("adding up an epoch's metrics", &own)?;
        let mismatch = |message: String| ParallelError::Collective { rank: peer.rank, world: peer.world, during: "adding up an epoch's metrics", message };
        // The same binary on every peer gives the same state layout; anything else is refused.
        if let Some((rank, state)) = all.iter().enumerate().find(|(_, s)| s.len() != own.len()) {
            return Err(mismatch(format!("peer {rank} sent {} metric values, this peer has {} (the peers run different binaries?)", state.len(), own.len())));
        }
        let mut merged = EpochMetrics::new(&task.metrics, &self.stage).map_err(|e| mismatch(e.to_string()))?;
        for state in &all {
            merged.merge(state);
        }
        self.metrics = merged;
        Ok(())
    }

    /// Each loss's mean and each metric's value (metrics that saw no batch are left out).
    pub fn means(&self) -> BTreeMap<String, f64> {
        let mut means: BTreeMap<String, f64> = self.sums.iter().map(|(k, (s, n))| (k.clone(), s / (*n).max(1) as f64)).collect();
        means.extend(self.metrics.compute());
        means
    }
}
