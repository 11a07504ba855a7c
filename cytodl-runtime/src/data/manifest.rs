//! CSV manifests in cyto_dl's layout: a folder of `train*/valid*/test*.csv`, or one CSV with a
//! split column. Relative paths are resolved against the CSV's folder; every problem names the
//! file, the row and the column.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use thiserror::Error;

use crate::rng::Rng;
use crate::sample::Sample;

/// The dataset splits, with cyto_dl's names (`valid` is canonicalised to `val`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Val,
    Test,
    Predict,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
            Split::Predict => "predict",
        }
    }

    /// cyto_dl matches split names by prefix: `valid`, `validation` and `val` are all `val`.
    pub fn parse(s: &str) -> Option<Split> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("train") {
            Some(Split::Train)
        } else if s.starts_with("val") {
            Some(Split::Val)
        } else if s.starts_with("test") {
            Some(Split::Test)
        } else if s.starts_with("pred") {
            Some(Split::Predict)
        } else {
            None
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    BadRow { path: PathBuf, line: usize, message: String },
    #[error("{path}: missing required column `{column}` (the header has: {found}){hint}")]
    MissingColumn { path: PathBuf, column: String, found: String, hint: String },
    #[error("{path}:{line}: column `{column}`: unknown split `{value}` (expected train, val/valid or test)")]
    UnknownSplit { path: PathBuf, line: usize, column: String, value: String },
    #[error("{path}: the {split} split has no rows")]
    EmptySplit { path: PathBuf, split: &'static str },
    #[error("{path}: no train/valid/test CSV files in this folder (found: {found})")]
    NoSplitFiles { path: PathBuf, found: String },
    #[error("{path}: one CSV needs `split_column` to say which rows are train, val and test")]
    NeedSplitColumn { path: PathBuf },
}

/// One data row with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub file: PathBuf,
    /// 1-based line in the CSV (the header is line 1).
    pub line: usize,
    pub values: IndexMap<String, String>,
}

impl Row {
    /// The row as a sample whose fields are its cells.
    pub fn to_sample(&self) -> Sample {
        let mut s = Sample::new();
        for (k, v) in &self.values {
            s = s.with_text(k, v);
        }
        s.origin.manifest = Some(self.file.clone());
        s.origin.row = self.line;
        s
    }
}

/// How to read a manifest (cyto_dl's DataframeDatamodule arguments).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestSpec {
    pub path: PathBuf,
    pub split_column: Option<String>,
    /// Required columns; their relative paths are resolved against the CSV's folder.
    pub columns: Vec<String>,
    /// Rows drawn per split, with replacement (`subsample: {train: 10}`).
    pub subsample: IndexMap<Split, usize>,
    pub seed: u64,
}

/// The rows of each split; `predict` is all rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub splits: IndexMap<Split, Vec<Row>>,
}

impl Manifest {
    pub fn rows(&self, split: Split) -> &[Row] {
        self.splits.get(&split).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

/// Reads a manifest; errors name the file, line and column.
pub fn load(spec: &ManifestSpec) -> Result<Manifest, ManifestError> {
    let mut splits: IndexMap<Split, Vec<Row>> = IndexMap::new();
    if spec.path.is_dir() {
        let mut files: Vec<(Split, PathBuf)> = Vec::new();
        let mut seen = Vec::new();
        let entries = std::fs::read_dir(&spec.path).map_err(|e| ManifestError::Read { path: spec.path.clone(), message: e.to_string() })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("csv") {
                continue;
            }
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            seen.push(stem.clone());
            if let Some(split) = Split::parse(&stem).filter(|s| *s != Split::Predict) {
                files.push((split, p));
            }
        }
        if files.is_empty() {
            seen.sort();
            return Err(ManifestError::NoSplitFiles { path: spec.path.clone(), found: if seen.is_empty() { "no CSV files".into() } else { seen.join(", ") } });
        }
        files.sort();
        for (split, file) in files {
            let rows = read_csv(&file, &spec.columns)?;
            splits.entry(split).or_default().extend(rows);
        }
        for split in [Split::Train, Split::Val, Split::Test] {
            if splits.get(&split).is_some_and(|r| r.is_empty()) {
                return Err(ManifestError::EmptySplit { path: spec.path.clone(), split: split.name() });
            }
        }
    } else {
        let rows = read_csv(&spec.path, &spec.columns)?;
        match &spec.split_column {
            Some(col) => {
                for row in rows {
                    let value = row.values.get(col).cloned().unwrap_or_default();
                    let Some(split) = Split::parse(&value).filter(|s| *s != Split::Predict) else {
                        return Err(ManifestError::UnknownSplit { path: row.file.clone(), line: row.line, column: col.clone(), value });
                    };
                    splits.entry(split).or_default().push(row);
                }
                for split in [Split::Train, Split::Val, Split::Test] {
                    if splits.get(&split).is_none_or(|r| r.is_empty()) {
                        return Err(ManifestError::EmptySplit { path: spec.path.clone(), split: split.name() });
                    }
                }
            }
            None => {
                // A single table without a split column is a prediction set.
                splits.insert(Split::Predict, rows);
            }
        }
    }
    if !splits.contains_key(&Split::Predict) {
        let all: Vec<Row> = [Split::Train, Split::Val, Split::Test].iter().flat_map(|s| splits.get(s).cloned().unwrap_or_default()).collect();
        splits.insert(Split::Predict, all);
    }
    for (split, n) in &spec.subsample {
        if let Some(rows) = splits.get_mut(split) {
            if rows.is_empty() {
                continue;
            }
            let mut rng = Rng::seed_from(spec.seed ^ (*split as u64).wrapping_mul(0x9E37_79B9));
            let picked: Vec<Row> = (0..*n).map(|_| rows[rng.below(rows.len() as u64) as usize].clone()).collect();
            *rows = picked;
        }
    }
    Ok(Manifest { splits })
}

/// Reads one CSV: checks the required columns and resolves relative paths in them.
fn read_csv(path: &Path, required: &[String]) -> Result<Vec<Row>, ManifestError> {
    let read_err = |message: String| ManifestError::Read { path: path.to_path_buf(), message };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(|e| read_err(e.to_string()))?;
    let headers: Vec<String> = reader.headers().map_err(|e| read_err(e.to_string()))?.iter().map(|h| h.trim().to_string()).collect();
    for column in required {
        if !headers.contains(column) {
            let near: Vec<&String> =
                headers.iter().filter(|h| h.eq_ignore_ascii_case(column) || h.contains(column.as_str()) || column.contains(h.as_str())).collect();
            let hint = near.first().map(|h| format!("; did you mean `{h}`?")).unwrap_or_default();
            return Err(ManifestError::MissingColumn { path: path.to_path_buf(), column: column.clone(), found: headers.join(", "), hint });
        }
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ManifestError::BadRow {
            path: path.to_path_buf(),
            line: e.position().map(|p| p.line() as usize).unwrap_or(line),
            message: csv_message(&e),
        })?;
        let mut values = IndexMap::new();
        for (h, v) in headers.iter().zip(record.iter()) {
            let mut v = v.trim().to_string();
            if required.contains(h) && !v.is_empty() && looks_relative(&v) {
                v = base.join(&v).to_string_lossy().to_string();
            }
            values.insert(h.clone(), v);
        }
        rows.push(Row { file: path.to_path_buf(), line, values });
    }
    Ok(rows)
}

fn looks_relative(v: &str) -> bool {
    !Path::new(v).is_absolute() && !v.contains("://") && !v.starts_with('~')
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!("the row has {len} fields, the header has {expected_len}"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> cytodl_testkit::Scratch {
        cytodl_testkit::Scratch::new(&format!("manifest-{name}"))
    }

    #[test]
    fn folder_of_split_csvs() {
        let d = dir("folder");
        std::fs::write(d.join("train.csv"), "raw,seg\na.tif,b.tif\n/abs/c.tif,d.tif\n").unwrap();
        std::fs::write(d.join("valid.csv"), "raw,seg\ne.tif,f.tif\n").unwrap();
        std::fs::write(d.join("test.csv"), "raw,seg\ng.tif,h.tif\n").unwrap();
        let m = load(&ManifestSpec { path: d.to_path_buf(), columns: vec!["raw".into(), "seg".into()], ..Default::default() }).unwrap();
        assert_eq!(m.rows(Split::Train).len(), 2);
        assert_eq!(m.rows(Split::Val).len(), 1);
        assert_eq!(m.rows(Split::Predict).len(), 4);
        assert_eq!(m.rows(Split::Train)[0].values["raw"], d.join("a.tif").to_string_lossy());
        assert_eq!(m.rows(Split::Train)[1].values["raw"], "/abs/c.tif");
        assert_eq!(m.rows(Split::Train)[1].line, 3);
    }

    #[test]
    fn split_column_and_errors() {
        let d = dir("single");
        let f = d.join("all.csv");
        std::fs::write(&f, "raw,split\na.tif,train\nb.tif,valid\nc.tif,test\n").unwrap();
        let spec = ManifestSpec { path: f.clone(), split_column: Some("split".into()), columns: vec!["raw".into()], ..Default::default() };
        let m = load(&spec).unwrap();
        assert_eq!(m.rows(Split::Val).len(), 1);
        std::fs::write(&f, "raw,split\na.tif,train\nb.tif,holdout\n").unwrap();
        let e = load(&spec).unwrap_err();
        assert!(matches!(&e, ManifestError::UnknownSplit { line: 3, value, .. } if value == "holdout"), "{e}");
        std::fs::write(&f, "Raw,split\na.tif,train\n").unwrap();
        let e = load(&spec).unwrap_err();
        assert!(e.to_string().contains("missing required column `raw`") && e.to_string().contains("did you mean `Raw`?"), "{e}");
        std::fs::write(&f, "raw,split\na.tif,train,extra\n").unwrap();
        let e = load(&spec).unwrap_err();
        assert!(e.to_string().contains(":2: the row has 3 fields, the header has 2"), "{e}");
        std::fs::write(&f, "raw,split\na.tif,train\nb.tif,test\n").unwrap();
        assert!(matches!(load(&spec), Err(ManifestError::EmptySplit { split: "val", .. })));
    }

    #[test]
    fn subsample_draws_with_replacement_deterministically() {
        let d = dir("sub");
        std::fs::write(d.join("train.csv"), "raw\na\nb\nc\n").unwrap();
        std::fs::write(d.join("valid.csv"), "raw\nv\n").unwrap();
        std::fs::write(d.join("test.csv"), "raw\nt\n").unwrap();
        let spec = ManifestSpec {
            path: d.to_path_buf(),
            columns: vec!["raw".into()],
            subsample: [(Split::Train, 10)].into_iter().collect(),
            seed: 42,
            ..Default::default()
        };
        let a = load(&spec).unwrap();
        assert_eq!(a.rows(Split::Train).len(), 10);
        assert_eq!(a, load(&spec).unwrap());
        // Paths are resolved against the CSV's folder: compare file names.
        let name = |r: &Row| r.to_sample().text("raw").and_then(|t| Path::new(t).file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
        let drawn: Vec<String> = a.rows(Split::Train).iter().map(name).collect();
        assert!(drawn.iter().all(|v| ["a", "b", "c"].contains(&v.as_str())), "drawn from the train rows: {drawn:?}");
        let distinct: std::collections::BTreeSet<&String> = drawn.iter().collect();
        assert!(distinct.len() >= 2, "10 draws from 3 rows: {drawn:?}");
        let other = load(&ManifestSpec { seed: 43, ..spec.clone() }).unwrap();
        assert_ne!(a.rows(Split::Train), other.rows(Split::Train), "another seed, another draw");
    }
}
