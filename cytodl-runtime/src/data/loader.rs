//! The data loader: batches from a dataset with worker threads and bounded prefetch.
//!
//! Determinism: item `i` of epoch `e` is computed with `Rng::for_sample(seed, e, i)` whichever
//! thread computes it, and batches are assembled in order, so a given seed yields the same
//! batches with 0, 1 or N workers. The shuffle order depends only on (seed, epoch).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use thiserror::Error;

use super::cache::{Cache, CacheError};
use crate::array::Array;
use crate::rng::Rng;
use crate::sample::Sample;
use crate::transforms::{Pipeline, TransformError};

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{location}: {source}")]
    Transform { location: String, source: TransformError },
    #[error("{0}")]
    Cache(#[from] CacheError),
    #[error("a data worker thread stopped unexpectedly")]
    Worker,
    #[error("batch key `{key}`: {message}")]
    Collate { key: String, message: String },
}

/// Rows (as samples of text fields) and the pipeline that turns each into training samples.
pub struct Dataset {
    pub rows: Vec<Sample>,
    pub pipeline: Pipeline,
    pub cache: Option<Cache>,
}

fn location(row: &Sample) -> String {
    match &row.origin.manifest {
        Some(m) => format!("{}:{}", m.display(), row.origin.row),
        None => format!("row {}", row.origin.row),
    }
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Item `index` of `epoch`: the row through the pipeline. The deterministic prefix comes from
    /// the cache when there is one (a corrupt entry is reported, recomputed and replaced).
    pub fn get(&self, index: usize, epoch: u64, seed: u64) -> Result<Vec<Sample>, LoadError> {
        let row = &self.rows[index];
        let mut rng = Rng::for_sample(seed, epoch, index as u64);
        let wrap = |source| LoadError::Transform { location: location(row), source };
        let n = self.pipeline.deterministic_len();
        let prefix = match (&self.cache, n) {
            (Some(cache), n) if n > 0 => {
                let key = Cache::key(row, &self.pipeline.prefix_key(n));
                match cache.get(&key) {
                    Ok(Some(hit)) => hit,
                    other => {
                        if let Err(e) = other {
                            eprintln!("warning: {e}");
                        }
                        let computed = self.pipeline.run_range(vec![row.clone()], 0, n, &mut rng).map_err(wrap)?;
                        if let Err(e) = cache.put(&key, &computed) {
                            eprintln!("warning: {e}");
                        }
                        computed
                    }
                }
            }
            _ => self.pipeline.run_range(vec![row.clone()], 0, n, &mut rng).map_err(wrap)?,
        };
        self.pipeline.run_range(prefix, n, self.pipeline.steps().len(), &mut rng).map_err(wrap)
    }
}

/// How batches are made (PyTorch DataLoader's arguments, as cyto_dl passes them).
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderOptions {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub num_workers: usize,
    /// Items computed ahead of the consumer (per worker), bounding memory.
    pub prefetch_per_worker: usize,
    pub seed: u64,
    /// This peer's share of every epoch when training data-parallel.
    pub shard: Option<Shard>,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions { batch_size: 1, shuffle: false, drop_last: false, num_workers: 0, prefetch_per_worker: 2, seed: 0, shard: None }
    }
}

/// One peer's share of an epoch (PyTorch's `DistributedSampler`): the epoch's order (the same
/// shuffle on every peer, from the seed) dealt out in turn, item `rank`, `rank + world`, ...
/// Batch `k` of the peers together is then batch `k` of one device with `world` times the
/// batch size. Item `i`'s augmentation depends on (seed, epoch, i) only, so it is the same
/// whichever peer draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
    /// Training: the order is padded by repeating its start to a multiple of `world` (as
    /// `DistributedSampler`), so every peer has as many batches and steps together.
    /// Evaluation: no padding (no item counts twice); the peers' sums are added at the end.
    pub pad: bool,
}

impl Shard {
    /// This peer's items of the epoch order `order`.
    pub fn take(&self, order: &[usize]) -> Vec<usize> {
        let world = self.world.max(1);
        let mut order = order.to_vec();
        if self.pad && !order.is_empty() {
            let total = order.len().div_ceil(world) * world;
            let mut i = 0;
            while order.len() < total {
                order.push(order[i]);
                i += 1;
            }
        }
        order.into_iter().skip(self.rank).step_by(world).collect()
    }
}

/// A batch: the samples of `batch_size` items, patches flattened (MONAI's `list_data_collate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub samples: Vec<Sample>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The arrays of `key` stacked along a new leading batch axis.
    pub fn stack(&self, key: &str) -> Result<Array, LoadError> {
        let err = |message: String| LoadError::Collate { key: key.to_string(), message };
        let mut shape: Option<Vec<usize>> = None;
        let mut data = Vec::new();
        for s in &self.samples {
            let a = s.array(key).ok_or_else(|| err(format!("missing from the sample of {}", location(s))))?;
            match &shape {
                None => shape = Some(a.shape().to_vec()),
                Some(sh) if sh.as_slice() != a.shape() => {
                    return Err(err(format!("shapes differ within the batch: {sh:?} and {:?} ({})", a.shape(), location(s))))
                }
                _ => {}
            }
            data.extend_from_slice(a.data());
        }
        let mut shape = shape.unwrap_or_default();
        shape.insert(0, self.samples.len());
        Array::new(shape, data).map_err(|e| err(e.to_string()))
    }
}

pub struct Loader {
    dataset: Arc<Dataset>,
    opts: LoaderOptions,
}

impl Loader {
    pub fn new(dataset: Dataset, opts: LoaderOptions) -> Self {
        Loader { dataset: Arc::new(dataset), opts: LoaderOptions { batch_size: opts.batch_size.max(1), ..opts } }
    }

    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let n = match self.opts.shard {
            Some(shard) => shard.take(&(0..self.dataset.len()).collect::<Vec<_>>()).len(),
            None => self.dataset.len(),
        };
        if self.opts.drop_last {
            n / self.opts.batch_size
        } else {
            n.div_ceil(self.opts.batch_size)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item order of an epoch: shuffled from (seed, epoch) when asked; this peer's share
    /// of it when sharded.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.opts.shuffle {
            Rng::for_sample(self.opts.seed, epoch, u64::MAX).shuffle(&mut order);
        }
        match self.opts.shard {
            Some(shard) => shard.take(&order),
            None => order,
        }
    }

    pub fn epoch(&self, epoch: u64) -> Batches {
        let order = self.order(epoch);
        let usable = if self.opts.drop_last { order.len() / self.opts.batch_size * self.opts.batch_size } else { order.len() };
        let shared = Arc::new(Shared { state: Mutex::new(State { next: 0, consumed: 0, results: BTreeMap::new(), stop: false }), changed: Condvar::new() });
        let window = (self.opts.num_workers * self.opts.prefetch_per_worker.max(1)).max(self.opts.batch_size);
        let order = Arc::new(order[..usable].to_vec());
        let mut workers = Vec::new();
        for _ in 0..self.opts.num_workers {
            let (dataset, shared, order) = (self.dataset.clone(), shared.clone(), order.clone());
            let seed = self.opts.seed;
            workers.push(std::thread::spawn(move || worker(&dataset, &shared, &order, epoch, seed, window)));
        }
        Batches { dataset: self.dataset.clone(), order, shared, workers, position: 0, epoch, opts: self.opts.clone(), failed: false }
    }
}

struct State {
    next: usize,
    consumed: usize,
    results: BTreeMap<usize, Result<Vec<Sample>, LoadError>>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

fn worker(dataset: &Dataset, shared: &Shared, order: &[usize], epoch: u64, seed: u64, window: usize) {
    loop {
        let position = {
            let Ok(mut st) = shared.state.lock() else { return };
            while !st.stop && st.next < order.len() && st.next >= st.consumed + window {
                st = match shared.changed.wait(st) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if st.stop || st.next >= order.len() {
                return;
            }
            st.next += 1;
            st.next - 1
        };
        let result = dataset.get(order[position], epoch, seed);
        let Ok(mut st) = shared.state.lock() else { return };
        st.results.insert(position, result);
        shared.changed.notify_all();
    }
}

/// The batches of one epoch, in order.
pub struct Batches {
    dataset: Arc<Dataset>,
    order: Arc<Vec<usize>>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    position: usize,
    epoch: u64,
    opts: LoaderOptions,
    failed: bool,
}

impl Batches {
    fn next_item(&mut self) -> Result<Vec<Sample>, LoadError> {
        let position = self.position;
        self.position += 1;
        if self.workers.is_empty() {
            return self.dataset.get(self.order[position], self.epoch, self.opts.seed);
        }
        let mut st = self.shared.state.lock().map_err(|_| LoadError::Worker)?;
        loop {
            if let Some(r) = st.results.remove(&position) {
                st.consumed = position + 1;
                self.shared.changed.notify_all();
                return r;
            }
            if self.workers.iter().all(|w| w.is_finished()) && !st.results.contains_key(&position) {
                return Err(LoadError::Worker);
            }
            st = self.shared.changed.wait(st).map_err(|_| LoadError::Worker)?;
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.order.len() {
            return None;
        }
        let end = (self.position + self.opts.batch_size).min(self.order.len());
        let mut samples = Vec::new();
        while self.position < end {
            match self.next_item() {
                Ok(items) => samples.extend(items),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(Batch { samples }))
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.stop = true;
        }
        self.shared.changed.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Field;
    use crate::transforms::{RandomMultiScaleCropd, Transform};

    /// Turns the text field `n` into a ramp image of that length (a stand-in for LoadImaged).
    #[derive(Debug)]
    struct Ramp;
    impl Transform for Ramp {
        fn name(&self) -> &'static str {
            "Ramp"
        }
        fn apply(&self, mut s: Sample, _rng: &mut Rng) -> Result<Vec<Sample>, TransformError> {
            let n: usize = s.text("n").and_then(|t| t.parse().ok()).ok_or(TransformError::Invalid { transform: "Ramp", message: "bad n".into() })?;
            s.fields.insert(
                "img".into(),
                Field::Array(
                    Array::new(vec![1, n, n], (0..n * n).map(|v| v as f32).collect())
                        .map_err(|e| TransformError::Invalid { transform: "Ramp", message: e.to_string() })?,
                ),
            );
            Ok(vec![s])
        }
    }

    fn dataset(n: usize, patches: usize) -> Dataset {
        let rows = (0..n).map(|i| {
            let mut s = Sample::new().with_text("n", &(8 + i % 3).to_string());
            s.origin.row = i + 2;
            s
        });
        let crop = RandomMultiScaleCropd::new(vec!["img".into()], vec![3, 3], [("img".to_string(), vec![1.0])].into_iter().collect(), patches, false).unwrap();
        Dataset { rows: rows.collect(), pipeline: Pipeline::new().push(Ramp).push(crop), cache: None }
    }

    fn all(loader: &Loader, epoch: u64) -> Vec<Vec<f32>> {
        loader.epoch(epoch).map(|b| b.unwrap().stack("img").unwrap().into_data()).collect()
    }

    #[test]
    fn batches_are_identical_for_0_1_and_4_workers() {
        let opts = |w| LoaderOptions { batch_size: 3, shuffle: true, num_workers: w, seed: 11, ..Default::default() };
        let base = all(&Loader::new(dataset(17, 2), opts(0)), 1);
        assert_eq!(base.len(), 6);
        for w in [1, 4] {
            assert_eq!(all(&Loader::new(dataset(17, 2), opts(w)), 1), base, "{w} workers");
        }
        // Another epoch reshuffles and redraws.
        assert_ne!(all(&Loader::new(dataset(17, 2), opts(0)), 2), base);
    }

    #[test]
    fn shards_deal_the_epoch_out_and_together_make_the_single_device_batches() {
        let opts = |shard, batch_size| LoaderOptions { batch_size, shuffle: true, seed: 5, shard, ..Default::default() };
        let whole = Loader::new(dataset(12, 1), opts(None, 4));
        let shards: Vec<Loader> = (0..2).map(|rank| Loader::new(dataset(12, 1), opts(Some(Shard { rank, world: 2, pad: true }), 2))).collect();
        for epoch in [0, 3] {
            let order = whole.order(epoch);
            let (a, b) = (shards[0].order(epoch), shards[1].order(epoch));
            assert_eq!(a.len() + b.len(), 12);
            let mut dealt: Vec<usize> = a.iter().zip(&b).flat_map(|(x, y)| [*x, *y]).collect();
            assert_eq!(dealt, order, "epoch {epoch}: rank r takes items r, r + 2, ...");
            // Batch k of both peers holds the items (and the same crops) of batch k of one device.
            let single = all(&whole, epoch);
            let (pa, pb) = (all(&shards[0], epoch), all(&shards[1], epoch));
            assert_eq!(single.len(), pa.len());
            for k in 0..single.len() {
                let mut together: Vec<f32> = pa[k].clone();
                together.extend(&pb[k]);
                let (mut s, mut t) =
                    (single[k].chunks(9).map(<[f32]>::to_vec).collect::<Vec<_>>(), together.chunks(9).map(<[f32]>::to_vec).collect::<Vec<_>>());
                s.sort_by(|x, y| x.partial_cmp(y).unwrap());
                t.sort_by(|x, y| x.partial_cmp(y).unwrap());
                assert_eq!(s, t, "epoch {epoch} batch {k}");
            }
            dealt.sort_unstable();
            assert_eq!(dealt, (0..12).collect::<Vec<_>>());
        }
        // Padding: 7 items over 2 peers gives each 4 (item order[0] twice), evaluation none.
        let pad = |rank, pad| Loader::new(dataset(7, 1), opts(Some(Shard { rank, world: 2, pad }), 1));
        assert_eq!((pad(0, true).len(), pad(1, true).len()), (4, 4));
        assert_eq!(pad(1, true).order(0).last(), pad(0, true).order(0).first());
        assert_eq!((pad(0, false).len(), pad(1, false).len()), (4, 3));
    }

    #[test]
    fn drop_last_and_patch_flattening() {
        let l = Loader::new(dataset(7, 4), LoaderOptions { batch_size: 2, drop_last: true, ..Default::default() });
        let batches: Vec<Batch> = l.epoch(0).map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(l.len(), 3);
        assert!(batches.iter().all(|b| b.len() == 8), "2 items x 4 patches");
        assert_eq!(batches[0].stack("img").unwrap().shape(), &[8, 1, 3, 3]);
        let l = Loader::new(dataset(7, 1), LoaderOptions { batch_size: 2, ..Default::default() });
        assert_eq!(l.epoch(0).count(), 4);
    }

    #[test]
    fn errors_name_the_row_and_stop_the_epoch() {
        let mut d = dataset(5, 1);
        d.rows[3] = Sample::new().with_text("n", "x");
        d.rows[3].origin.row = 5;
        d.rows[3].origin.manifest = Some("train.csv".into());
        let l = Loader::new(d, LoaderOptions { batch_size: 1, num_workers: 2, ..Default::default() });
        let results: Vec<_> = l.epoch(0).collect();
        assert_eq!(results.len(), 4);
        let e = results[3].as_ref().unwrap_err().to_string();
        assert!(e.starts_with("train.csv:5: Ramp: bad n"), "{e}");
    }

    #[test]
    fn dropping_mid_epoch_stops_the_workers() {
        let l = Loader::new(dataset(50, 1), LoaderOptions { batch_size: 1, num_workers: 4, ..Default::default() });
        let mut it = l.epoch(0);
        assert!(it.next().unwrap().is_ok());
        assert!(Arc::strong_count(&l.dataset) > 2, "the workers hold the dataset while they run");
        drop(it);
        // Every worker has returned and been joined: only the loader holds the dataset now.
        assert_eq!(Arc::strong_count(&l.dataset), 1);
    }
}
