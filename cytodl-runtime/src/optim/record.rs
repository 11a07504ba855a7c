//! The optimizer state on the host: what a checkpoint stores for resume.
//!
//! Keys are module paths and buffers carry torch's names (`exp_avg`, `exp_avg_sq`,
//! `max_exp_avg_sq`, `momentum_buffer`), flattened to f32. [`OptimizerRecord::to_bytes`] is a small
//! self-describing little-endian format so the trainer can store it next to the weights without
//! another dependency.

use std::collections::BTreeMap;

use super::{OptimError, OptimizerKind};

/// One parameter's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamRecord {
    /// Adam's per-parameter step count (unused by SGD).
    pub step: u64,
    pub buffers: BTreeMap<String, Vec<f32>>,
}

/// An optimizer's whole state (hyper-parameters come from the config, not from here).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerRecord {
    pub kind: OptimizerKind,
    pub params: BTreeMap<String, ParamRecord>,
}

const MAGIC: &[u8; 8] = b"CYOPTST1";

impl OptimizerRecord {
    pub fn new(kind: OptimizerKind) -> Self {
        Self { kind, params: BTreeMap::new() }
    }

    /// `MAGIC, kind u8, n u32, n × (key, step u64, m u32, m × (name, len u64, len × f32))`,
    /// strings as `len u32 + UTF-8`, all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.push(self.kind.tag());
        out.extend_from_slice(&(self.params.len() as u32).to_le_bytes());
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        for (key, p) in &self.params {
            put_str(&mut out, key);
            out.extend_from_slice(&p.step.to_le_bytes());
            out.extend_from_slice(&(p.buffers.len() as u32).to_le_bytes());
            for (name, values) in &p.buffers {
                put_str(&mut out, name);
                out.extend_from_slice(&(values.len() as u64).to_le_bytes());
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        out
    }

    /// Parses [`OptimizerRecord::to_bytes`] output; truncated or corrupt input is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OptimError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err(OptimError::Record("not an optimizer state (bad magic)".into()));
        }
        let tag = r.take(1)?[0];
        let kind = OptimizerKind::from_tag(tag).ok_or_else(|| OptimError::Record(format!("unknown optimizer tag {tag}")))?;
        let mut rec = Self::new(kind);
        let n = r.u32()?;
        for _ in 0..n {
            let key = r.string()?;
            let step = r.u64()?;
            let m = r.u32()?;
            let mut p = ParamRecord { step, buffers: BTreeMap::new() };
            for _ in 0..m {
                let name = r.string()?;
                let len = usize::try_from(r.u64()?).map_err(|_| OptimError::Record("buffer length overflows".into()))?;
                let nbytes = len.checked_mul(4).ok_or_else(|| OptimError::Record("buffer length overflows".into()))?;
                let raw = r.take(nbytes)?;
                let values = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                p.buffers.insert(name, values);
            }
            if rec.params.insert(key.clone(), p).is_some() {
                return Err(OptimError::Record(format!("parameter `{key}` appears twice")));
            }
        }
        if r.pos != bytes.len() {
            return Err(OptimError::Record(format!("{} trailing bytes", bytes.len() - r.pos)));
        }
        Ok(rec)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OptimError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| OptimError::Record(format!("truncated at byte {}", self.pos)))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, OptimError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, OptimError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, OptimError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| OptimError::Record("name is not UTF-8".into()))
    }
}
