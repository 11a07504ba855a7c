//! The persistent cache (MONAI `PersistentDataset` semantics): the output of the deterministic
//! prefix of a pipeline, stored per sample under `cache_dir`.
//!
//! The key hashes the source files' identity (path, size, modification time) and the prefix's
//! parameters, so a changed file or parameter misses. Each entry carries its full key text, its
//! length and a checksum: a corrupt, truncated or colliding entry is detected and recomputed.
//! Writes go to a temporary file renamed into place, so concurrent workers or a crash never leave
//! a partial entry behind.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;
use thiserror::Error;

use crate::array::Array;
use crate::sample::{Field, Origin, Sample};

const MAGIC: &[u8; 8] = b"CYTODLC1";
const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("cache entry {path} is unusable ({reason}); recomputing it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write cache entry {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// A cache folder.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// FNV-1a, 64 bit: stable across versions and platforms (file names must not change).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of one sample: the prefix's parameters and each field's identity (a file's path,
    /// size and modification time; any other text as it is).
    pub fn key(sample: &Sample, prefix: &str) -> String {
        let mut key = format!("cytodl-cache v{VERSION}\n{prefix}\n");
        for (name, field) in &sample.fields {
            match field {
                Field::Text(t) => {
                    let p = Path::new(t);
                    match std::fs::metadata(p) {
                        Ok(m) if m.is_file() => {
                            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
                            let canon = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
                            key.push_str(&format!("{name}=file:{}:{}:{}\n", canon.display(), m.len(), mtime));
                        }
                        _ => key.push_str(&format!("{name}=text:{t}\n")),
                    }
                }
                Field::Array(a) => key.push_str(&format!("{name}=array:{:?}:{:016x}\n", a.shape(), fnv1a(bytemuck_f32(a.data())))),
            }
        }
        key
    }

    fn path_for(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{:016x}.cytodl", fnv1a(key.as_bytes())))
    }

    /// The cached samples for `key`: `Ok(None)` on a miss, `Err` for an unusable entry.
    pub fn get(&self, key: &str) -> Result<Option<Vec<Sample>>, CacheError> {
        let path = self.path_for(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => return Ok(None),
        };
        let corrupt = |reason: &str| CacheError::Corrupt { path: path.clone(), reason: reason.to_string() };
        let mut r = Reader { bytes: &bytes, pos: 0 };
        if r.take(8).ok_or_else(|| corrupt("truncated header"))? != MAGIC {
            return Err(corrupt("not a cytodl cache entry"));
        }
        if r.u32().ok_or_else(|| corrupt("truncated header"))? != VERSION {
            return Ok(None);
        }
        let stored_key = r.string().ok_or_else(|| corrupt("truncated key"))?;
        if stored_key != key {
            // Another key hashed to the same file name: a miss, overwritten on put.
            return Ok(None);
        }
        let len = r.u64().ok_or_else(|| corrupt("truncated header"))? as usize;
        let sum = r.u64().ok_or_else(|| corrupt("truncated header"))?;
        let payload = r.take(len).ok_or_else(|| corrupt("truncated payload"))?;
        if r.pos != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        if fnv1a(payload) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        decode(payload).map(Some).ok_or_else(|| corrupt("malformed payload"))
    }

    /// Stores samples under `key`, atomically.
    pub fn put(&self, key: &str, samples: &[Sample]) -> Result<(), CacheError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = self.path_for(key);
        let write_err = |source| CacheError::Write { path: path.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(write_err)?;
        let payload = encode(samples);
        let mut out = Vec::with_capacity(payload.len() + key.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_str(&mut out, key);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&fnv1a(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        let tmp = self.dir.join(format!(
            ".{}.tmp.{}.{}",
            path.file_name().and_then(|f| f.to_str()).unwrap_or("entry"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }
}

fn bytemuck_f32(data: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern is a valid u8; the slice covers exactly
    // the f32 buffer's bytes.
    unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data)) }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for s in samples {
        put_str(&mut out, &s.origin.manifest.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        out.extend_from_slice(&(s.origin.row as u64).to_le_bytes());
        out.extend_from_slice(&(s.origin.files.len() as u32).to_le_bytes());
        for (k, p) in &s.origin.files {
            put_str(&mut out, k);
            put_str(&mut out, &p.display().to_string());
        }
        out.extend_from_slice(&(s.origin.pixel_sizes.len() as u32).to_le_bytes());
        for (k, sizes) in &s.origin.pixel_sizes {
            put_str(&mut out, k);
            for v in sizes {
                out.push(u8::from(v.is_some()));
                out.extend_from_slice(&v.unwrap_or(0.0).to_le_bytes());
            }
        }
        out.extend_from_slice(&(s.fields.len() as u32).to_le_bytes());
        for (name, f) in &s.fields {
            put_str(&mut out, name);
            match f {
                Field::Text(t) => {
                    out.push(0);
                    put_str(&mut out, t);
                }
                Field::Array(a) => {
                    out.push(1);
                    out.extend_from_slice(&(a.ndim() as u32).to_le_bytes());
                    for d in a.shape() {
                        out.extend_from_slice(&(*d as u64).to_le_bytes());
                    }
                    for v in a.data() {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(f64::from_le_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u64()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn decode(payload: &[u8]) -> Option<Vec<Sample>> {
    let mut r = Reader { bytes: payload, pos: 0 };
    let n = r.u32()? as usize;
    let mut samples = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let manifest = r.string()?;
        let row = r.u64()? as usize;
        let mut origin = Origin { manifest: (!manifest.is_empty()).then(|| PathBuf::from(manifest)), row, ..Default::default() };
        for _ in 0..r.u32()? {
            let k = r.string()?;
            origin.files.insert(k, PathBuf::from(r.string()?));
        }
        for _ in 0..r.u32()? {
            let k = r.string()?;
            let mut sizes = [None; 3];
            for s in sizes.iter_mut() {
                let present = r.u8()? == 1;
                let v = r.f64()?;
                *s = present.then_some(v);
            }
            origin.pixel_sizes.insert(k, sizes);
        }
        let mut fields = IndexMap::new();
        for _ in 0..r.u32()? {
            let name = r.string()?;
            let field = match r.u8()? {
                0 => Field::Text(r.string()?),
                1 => {
                    let nd = r.u32()? as usize;
                    let mut shape = Vec::with_capacity(nd.min(16));
                    for _ in 0..nd {
                        shape.push(r.u64()? as usize);
                    }
                    let count = shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d))?;
                    let raw = r.take(count.checked_mul(4)?)?;
                    let data = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                    Field::Array(Array::new(shape, data).ok()?)
                }
                _ => return None,
            };
            fields.insert(name, field);
        }
        samples.push(Sample { fields, origin });
    }
    (r.pos == payload.len()).then_some(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> cytodl_testkit::Scratch {
        cytodl_testkit::Scratch::new(&format!("cache-{name}"))
    }

    fn sample() -> Sample {
        let mut s = Sample::new().with_text("id", "x").with_array("raw", Array::new(vec![1, 2, 3], (0..6).map(|v| v as f32 * 0.5).collect()).unwrap());
        s.origin.row = 7;
        s.origin.files.insert("raw".into(), PathBuf::from("/data/a.tif"));
        s.origin.pixel_sizes.insert("raw".into(), [Some(0.29), None, Some(0.1)]);
        s
    }

    #[test]
    fn round_trip_hit_and_miss() {
        let d = tmp("rt");
        let c = Cache::new(&d);
        let key = Cache::key(&sample(), "LoadImaged{C: 5}");
        assert!(c.get(&key).unwrap().is_none());
        c.put(&key, &[sample(), sample()]).unwrap();
        assert_eq!(c.get(&key).unwrap(), Some(vec![sample(), sample()]));
        // Another prefix (a changed parameter) misses.
        assert!(c.get(&Cache::key(&sample(), "LoadImaged{C: 4}")).unwrap().is_none());
    }

    #[test]
    fn changed_file_misses() {
        let d = tmp("file");
        let f = d.join("img.tif");
        std::fs::write(&f, b"one").unwrap();
        let s = Sample::new().with_text("raw", f.to_str().unwrap());
        let k1 = Cache::key(&s, "p");
        std::fs::write(&f, b"longer content").unwrap();
        assert_ne!(k1, Cache::key(&s, "p"));
    }

    #[test]
    fn corrupt_and_truncated_entries_are_detected() {
        let d = tmp("corrupt");
        let c = Cache::new(&d);
        let key = Cache::key(&sample(), "p");
        c.put(&key, &[sample()]).unwrap();
        let path = c.path_for(&key);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert!(matches!(c.get(&key), Err(CacheError::Corrupt { .. })));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(c.get(&key), Err(CacheError::Corrupt { reason, .. }) if reason == "checksum mismatch"));
        std::fs::write(&path, b"junk").unwrap();
        assert!(matches!(c.get(&key), Err(CacheError::Corrupt { .. })));
        // A fresh put replaces the bad entry.
        c.put(&key, &[sample()]).unwrap();
        assert_eq!(c.get(&key).unwrap(), Some(vec![sample()]));
    }

    #[test]
    fn concurrent_writers_leave_a_valid_entry() {
        let d = tmp("concurrent");
        let c = Cache::new(&d);
        let key = Cache::key(&sample(), "p");
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        c.put(&key, &[sample()]).unwrap();
                        // Readers never see a partial entry.
                        if let Some(v) = c.get(&key).unwrap() {
                            assert_eq!(v, vec![sample()]);
                        }
                    }
                });
            }
        });
        assert_eq!(c.get(&key).unwrap(), Some(vec![sample()]));
        let leftovers: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp.")).collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}
