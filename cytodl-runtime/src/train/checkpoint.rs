//! Checkpoint files: the model's weights, the optimizer's state and the trainer's state (epoch,
//! step, scheduler, early stopping, kept checkpoints, data seed) in one file, written atomically
//! so that a crash never leaves a half-written checkpoint and the last good one stays intact.
//!
//! Layout (version 2): `CYTODLCK` | u32 version | u64 len + JSON trainer state | u64 len + model
//! record (burn's bincode, full precision) | u64 count, then per optimizer: u64 len + name (UTF-8),
//! u64 len + optimizer record | u64 FNV-1a checksum of all before. Optimizers are named so that a
//! model with several (cyto_dl's GAN: `generator`, `discriminator`) fits the same format.
//! Version 1 (one unnamed optimizer record after the model) is still read.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::Backend;
use thiserror::Error;

use crate::nn::weights::param_names;

const MAGIC: &[u8; 8] = b"CYTODLCK";
const VERSION: u32 = 2;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "cannot write checkpoint {path}: {source}. The checkpoints already written beside it are intact; make room and resume from the last one with --ckpt"
    )]
    Write { path: PathBuf, source: std::io::Error },
    #[error("checkpoint {path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// Why a model's weights could not be put into a checkpoint or taken out of one.
#[derive(Debug, Error)]
pub enum ModelRecordError {
    #[error("the model's weights cannot be encoded: {0}")]
    Encode(burn::record::RecorderError),
    #[error("the checkpoint's model does not fit this experiment's model ({0})")]
    Decode(burn::record::RecorderError),
    /// burn's bincode reader panics (caught) on bytes that are not this model's record.
    #[error("the checkpoint's model does not fit this experiment's model")]
    Undecodable,
    #[error("the checkpoint's model does not fit this experiment's model: parameter `{name}` is {checkpoint:?} in the checkpoint, {here:?} here")]
    Shape { name: String, checkpoint: Vec<usize>, here: Vec<usize> },
    #[error("the checkpoint's model has {checkpoint} parameters, this experiment's {here}")]
    Count { checkpoint: usize, here: usize },
}

/// The parts of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointData {
    /// The trainer's state as JSON (see [`super::trainer::TrainerState`]).
    pub state: serde_json::Value,
    pub model: Vec<u8>,
    /// Optimizer records by name; a version-1 file gives one entry named `""`.
    pub optimizers: Vec<(String, Vec<u8>)>,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn write(path: &Path, data: &CheckpointData) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let state = serde_json::to_vec(&data.state).unwrap_or_default();
    let optimizers: usize = data.optimizers.iter().map(|(n, r)| n.len() + r.len() + 16).sum();
    let mut out = Vec::with_capacity(data.model.len() + optimizers + state.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let put = |out: &mut Vec<u8>, part: &[u8]| {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    };
    put(&mut out, &state);
    put(&mut out, &data.model);
    out.extend_from_slice(&(data.optimizers.len() as u64).to_le_bytes());
    for (name, record) in &data.optimizers {
        put(&mut out, name.as_bytes());
        put(&mut out, record);
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    super::csv_logger::atomic_write(path, &out).map_err(io)
}

/// Reads the length-prefixed parts of a checkpoint body.
struct Parts<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Parts<'_> {
    fn u64(&mut self) -> Option<u64> {
        let v = self.body.get(self.pos..self.pos + 8)?.try_into().ok().map(u64::from_le_bytes)?;
        self.pos += 8;
        Some(v)
    }
    fn part(&mut self) -> Option<Vec<u8>> {
        let len = usize::try_from(self.u64()?).ok()?;
        let part = self.body.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(part.to_vec())
    }
}

pub fn read(path: &Path) -> Result<CheckpointData, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
    let bad = |reason: &str| CheckpointError::Format { path: path.to_path_buf(), reason: reason.to_string() };
    if bytes.len() < 8 + 4 + 8 || &bytes[..8] != MAGIC {
        return Err(bad("not a cytodl checkpoint (no CYTODLCK header); cyto_dl/Lightning .ckpt files load as weights with --ckpt"));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(tail.try_into().map_err(|_| bad("truncated"))?);
    if fnv1a(body) != sum {
        return Err(bad("the file is truncated or corrupt (its checksum does not match)"));
    }
    let version = u32::from_le_bytes(body[8..12].try_into().map_err(|_| bad("truncated"))?);
    if version != 1 && version != VERSION {
        return Err(bad(&format!("version {version}, this build reads 1 and {VERSION}")));
    }
    let mut parts = Parts { body, pos: 12 };
    let truncated = |what: &str| bad(&format!("truncated in the {what}"));
    let state = parts.part().ok_or_else(|| truncated("trainer state"))?;
    let state = serde_json::from_slice(&state).map_err(|e| bad(&format!("trainer state: {e}")))?;
    let model = parts.part().ok_or_else(|| truncated("model"))?;
    let optimizers = if version == 1 {
        vec![(String::new(), parts.part().ok_or_else(|| truncated("optimizer"))?)]
    } else {
        let count = parts.u64().ok_or_else(|| truncated("optimizer count"))?;
        let mut optimizers = Vec::new();
        for _ in 0..count {
            let name = parts.part().ok_or_else(|| truncated("optimizer name"))?;
            let name = String::from_utf8(name).map_err(|_| bad("an optimizer name is not UTF-8"))?;
            optimizers.push((name, parts.part().ok_or_else(|| truncated("optimizer record"))?));
        }
        optimizers
    };
    Ok(CheckpointData { state, model, optimizers })
}

/// How the model part is encoded, recorded as `model_format` in the trainer state.
pub const MODEL_FORMAT: &str = "named-msgpack";

/// The model part of a checkpoint: burn's *named* MessagePack record, so that loading it into a
/// model of another architecture fails with the field that differs instead of reading weights
/// into the wrong places.
pub fn encode_model<B: Backend, M: Module<B>>(model: &M) -> Result<Vec<u8>, ModelRecordError> {
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default().record(model.clone().into_record(), ()).map_err(ModelRecordError::Encode)
}

/// Loads the model part of `data` into `model`, checking that every parameter keeps its shape.
/// Checkpoints from before [`MODEL_FORMAT`] (burn's bincode record) still load.
pub fn decode_model<B: Backend, M: Module<B>>(model: M, data: &CheckpointData, device: &B::Device) -> Result<M, ModelRecordError> {
    let expected = param_names(&model);
    let record = if data.state.get("model_format").and_then(|f| f.as_str()) == Some(MODEL_FORMAT) {
        NamedMpkBytesRecorder::<FullPrecisionSettings>::default().load(data.model.clone(), device).map_err(ModelRecordError::Decode)?
    } else {
        // burn's bincode recorder panics on bytes that do not decode as this model's record.
        let bytes = data.model.clone();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| BinBytesRecorder::<FullPrecisionSettings>::default().load(bytes, device)))
            .map_err(|_| ModelRecordError::Undecodable)?
            .map_err(ModelRecordError::Decode)?
    };
    let model = model.load_record(record);
    let found = param_names(&model);
    if let Some(((name, here), (_, checkpoint))) = expected.iter().zip(&found).find(|(a, b)| a != b) {
        return Err(ModelRecordError::Shape { name: name.clone(), checkpoint: checkpoint.clone(), here: here.clone() });
    }
    if expected.len() != found.len() {
        return Err(ModelRecordError::Count { checkpoint: found.len(), here: expected.len() });
    }
    Ok(model)
}

/// `target` relative to the folder `base` (`../csv/version_0` from `run/checkpoints` to
/// `run/csv/version_0`); `target` itself when the two share no root.
pub fn relative_path(base: &Path, target: &Path) -> PathBuf {
    let absolute = |p: &Path| std::path::absolute(p).map(|a| a.components().collect::<PathBuf>()).unwrap_or_else(|_| p.to_path_buf());
    let (base, target) = (absolute(base), absolute(target));
    let (b, t): (Vec<_>, Vec<_>) = (base.components().collect(), target.components().collect());
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return target;
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c.as_os_str());
    }
    rel
}

/// A path stored by [`relative_path`] (or an absolute one, as older checkpoints stored), made
/// usable again from the folder `base` of the checkpoint that holds it.
pub fn resolve_path(base: &Path, stored: &str) -> PathBuf {
    let joined = base.join(stored);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir if matches!(out.components().next_back(), Some(std::path::Component::Normal(_))) => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Whether a file is one of ours (as opposed to a PyTorch / Lightning checkpoint).
pub fn is_cytodl_checkpoint(path: &Path) -> bool {
    std::fs::File::open(path)
        .and_then(|mut f| {
            let mut head = [0u8; 8];
            std::io::Read::read_exact(&mut f, &mut head)?;
            Ok(&head == MAGIC)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = cytodl_testkit::Scratch::new("ckpt");
        let p = dir.join("last.ckpt");
        let data = CheckpointData {
            state: serde_json::json!({"epoch": 3}),
            model: vec![1, 2, 3],
            optimizers: vec![("generator".into(), vec![9; 10]), ("discriminator".into(), vec![7; 4])],
        };
        write(&p, &data).unwrap();
        assert!(is_cytodl_checkpoint(&p));
        assert_eq!(read(&p).unwrap(), data);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(read(&p), Err(CheckpointError::Format { .. })));
    }

    /// A version-1 file (before optimizers were named) still reads, as one unnamed optimizer.
    #[test]
    fn reads_version_1() {
        let dir = cytodl_testkit::Scratch::new("ckpt-v1");
        let p = dir.join("old.ckpt");
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&1u32.to_le_bytes());
        for part in [&b"{\"epoch\":2}"[..], &[1, 2][..], &[5; 3][..]] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        std::fs::write(&p, &out).unwrap();
        let data = read(&p).unwrap();
        assert_eq!(data.state["epoch"], 2);
        assert_eq!(data.model, vec![1, 2]);
        assert_eq!(data.optimizers, vec![(String::new(), vec![5; 3])]);
    }
}
