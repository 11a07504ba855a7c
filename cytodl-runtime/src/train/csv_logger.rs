//! Lightning's `CSVLogger` layout: `<save_dir>/<name>/version_N/metrics.csv` (one row per log
//! call, columns `epoch,step` then every metric name sorted, empty cells where a row lacks one)
//! and `hparams.yaml` beside it. The file is rewritten whole, atomically, at each flush, so a
//! killed run leaves a valid CSV.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub epoch: u64,
    pub step: u64,
    pub values: BTreeMap<String, f64>,
}

#[derive(Debug)]
pub struct CsvLogger {
    dir: PathBuf,
    rows: Vec<MetricsRow>,
}

impl CsvLogger {
    /// Opens the next free `version_N` under `<save_dir>/<name>` (Lightning's numbering).
    pub fn create(save_dir: &Path, name: &str) -> std::io::Result<Self> {
        let base = save_dir.join(name.trim_end_matches('/'));
        std::fs::create_dir_all(&base)?;
        let mut n = 0;
        while base.join(format!("version_{n}")).exists() {
            n += 1;
        }
        let dir = base.join(format!("version_{n}"));
        std::fs::create_dir_all(&dir)?;
        Ok(CsvLogger { dir, rows: Vec::new() })
    }

    /// Continues an existing version folder (a resumed run appends to its own log).
    pub fn resume(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut logger = CsvLogger { dir: dir.to_path_buf(), rows: Vec::new() };
        if let Ok(text) = std::fs::read_to_string(dir.join("metrics.csv")) {
            logger.rows = parse(&text);
        }
        Ok(logger)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }

    /// Drops the rows of `epoch` and later (a run resumed at `epoch` logs them again).
    pub fn resume_at(&mut self, epoch: u64) {
        self.rows.retain(|r| r.epoch < epoch);
    }

    pub fn log(&mut self, epoch: u64, step: u64, values: BTreeMap<String, f64>) {
        if !values.is_empty() {
            self.rows.push(MetricsRow { epoch, step, values });
        }
    }

    pub fn write_hparams(&self, yaml: &str) -> std::io::Result<()> {
        atomic_write(&self.dir.join("hparams.yaml"), yaml.as_bytes())
    }

    /// Writes `metrics.csv` with every row so far.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut names: Vec<&String> = self.rows.iter().flat_map(|r| r.values.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = String::from("epoch,step");
        for n in &names {
            out.push(',');
            out.push_str(n);
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&format!("{},{}", r.epoch, r.step));
            for n in &names {
                out.push(',');
                if let Some(v) = r.values.get(*n) {
                    out.push_str(&pyfmt_float(*v));
                }
            }
            out.push('\n');
        }
        atomic_write(&self.dir.join("metrics.csv"), out.as_bytes())
    }
}

fn parse(text: &str) -> Vec<MetricsRow> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let names: Vec<&str> = header.split(',').collect();
    let mut rows = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let (Some(epoch), Some(step)) = (cells.first().and_then(|c| c.parse().ok()), cells.get(1).and_then(|c| c.parse().ok())) else { continue };
        let mut values = BTreeMap::new();
        for (name, cell) in names.iter().zip(&cells).skip(2) {
            if let Ok(v) = cell.parse::<f64>() {
                values.insert(name.to_string(), v);
            }
        }
        rows.push(MetricsRow { epoch, step, values });
    }
    rows
}

/// A float as Python's `csv` module writes it (`repr`): `1e-05`, `1.5e+16`, `nan`.
fn pyfmt_float(v: f64) -> String {
    cytodl_schema::py::float_repr(v)
}

/// The temporary file [`atomic_write`] writes `path` through: `<stem>.tmp.<pid>`.
fn temp_path(path: &Path) -> PathBuf {
    path.with_extension(format!("tmp.{}", std::process::id()))
}

/// Removes the temporary files that a killed process's [`atomic_write`]s left in `dir`
/// (`*.tmp.<pid>` of processes no longer running); returns how many.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.rsplit_once(".tmp.")).and_then(|(_, pid)| pid.parse::<u32>().ok()) else { continue };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && entry.path().is_file() && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes through a temporary file and a rename, so readers never see half a file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk only with its folder.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        assert_eq!(pyfmt_float(1.7121756076812744), "1.7121756076812744");
        assert_eq!(pyfmt_float(1e-5), "1e-05");
        assert_eq!(pyfmt_float(2.0), "2.0");
        assert_eq!(pyfmt_float(1.5e16), "1.5e+16");
    }

    #[test]
    fn lightning_layout_and_columns() {
        let root = cytodl_testkit::Scratch::new("csv");
        let mut l = CsvLogger::create(&root, "csv/").unwrap();
        assert!(l.dir().ends_with("csv/version_0"));
        l.log(0, 5, [("val/loss".to_string(), 1.5), ("val/loss/seg".to_string(), 1.5)].into_iter().collect());
        l.log(0, 5, [("train/loss".to_string(), 1.75)].into_iter().collect());
        l.flush().unwrap();
        let text = std::fs::read_to_string(l.dir().join("metrics.csv")).unwrap();
        assert_eq!(text, "epoch,step,train/loss,val/loss,val/loss/seg\n0,5,,1.5,1.5\n0,5,1.75,,\n");
        let again = CsvLogger::create(&root, "csv").unwrap();
        assert!(again.dir().ends_with("csv/version_1"));
        let mut resumed = CsvLogger::resume(l.dir()).unwrap();
        assert_eq!(resumed.rows().len(), 2);
        resumed.resume_at(1);
        assert_eq!(resumed.rows().len(), 2, "epoch 0 is kept");
        resumed.resume_at(0);
        assert!(resumed.rows().is_empty());
    }
}
