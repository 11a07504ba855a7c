//! Checkpoint files: the model's weights, the optimizer's state and the trainer's state (epoch,
//! step, scheduler, early stopping, kept checkpoints, data seed) in one file, written atomically
//! so that a crash never leaves a half-written checkpoint and the last good one stays intact.
//!
//! Layout: `CYTODLCK` | u32 version | u64 len + JSON trainer state | u64 len + model record
//! (burn's bincode, full precision) | u64 len + optimizer record | u64 FNV-1a checksum of all before.

use std::path::{Path, PathBuf};

use thiserror::Error;

const MAGIC: &[u8; 8] = b"CYTODLCK";
const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a cytodl checkpoint ({reason})")]
    Format { path: PathBuf, reason: String },
}

/// The parts of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointData {
    /// The trainer's state as JSON (see [`super::trainer::TrainerState`]).
    pub state: serde_json::Value,
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
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
    let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let state = serde_json::to_vec(&data.state).unwrap_or_default();
    let mut out = Vec::with_capacity(data.model.len() + data.optimizer.len() + state.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for part in [&state, &data.model, &data.optimizer] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    super::csv_logger::atomic_write(path, &out).map_err(io)
}

pub fn read(path: &Path) -> Result<CheckpointData, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
    let bad = |reason: &str| CheckpointError::Format { path: path.to_path_buf(), reason: reason.to_string() };
    if bytes.len() < 8 + 4 + 8 || &bytes[..8] != MAGIC {
        return Err(bad("missing the CYTODLCK header; cyto_dl/Lightning .ckpt files load as weights with --ckpt"));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(tail.try_into().map_err(|_| bad("truncated"))?);
    if fnv1a(body) != sum {
        return Err(bad("checksum mismatch: the file is truncated or corrupt"));
    }
    let version = u32::from_le_bytes(body[8..12].try_into().map_err(|_| bad("truncated"))?);
    if version != VERSION {
        return Err(bad(&format!("version {version}, this build reads {VERSION}")));
    }
    let mut pos = 12;
    let mut parts = Vec::new();
    for _ in 0..3 {
        let len = body.get(pos..pos + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).ok_or_else(|| bad("truncated"))? as usize;
        pos += 8;
        let part = body.get(pos..pos.saturating_add(len)).ok_or_else(|| bad("truncated"))?;
        parts.push(part.to_vec());
        pos += len;
    }
    let state = serde_json::from_slice(&parts[0]).map_err(|e| bad(&format!("trainer state: {e}")))?;
    let optimizer = parts.pop().unwrap_or_default();
    let model = parts.pop().unwrap_or_default();
    Ok(CheckpointData { state, model, optimizer })
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
        let dir = std::env::temp_dir().join(format!("cytodl-ckpt-{}", std::process::id()));
        let p = dir.join("last.ckpt");
        let data = CheckpointData { state: serde_json::json!({"epoch": 3}), model: vec![1, 2, 3], optimizer: vec![9; 10] };
        write(&p, &data).unwrap();
        assert!(is_cytodl_checkpoint(&p));
        assert_eq!(read(&p).unwrap(), data);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(read(&p), Err(CheckpointError::Format { .. })));
    }
}
