//! Manifest checks before a run: every bad row is reported (missing file, unreadable or
//! truncated TIFF, channel out of range, shapes that disagree between keys) with the CSV file,
//! the row's line and the column, so a user fixes them all at once instead of one per run.

use std::path::PathBuf;

use indexmap::IndexMap;

use super::manifest::Row;
use crate::io::{self, ReadError, Selection};

/// One problem with one cell of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line in the CSV (the header is line 1).
    pub line: usize,
    pub column: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: column `{}`: {}", self.file.display(), self.line, self.column, self.message)
    }
}

/// What the pipeline will read: each image key with its reader selection, and the per-key
/// scales of a multi-scale crop (keys at scale 2 are expected to be twice as large).
#[derive(Debug, Clone, Default)]
pub struct CheckSpec {
    pub loads: Vec<(String, Selection)>,
    pub scales: IndexMap<String, Vec<f64>>,
}

/// Checks every row (in parallel) and returns every problem, in manifest order.
pub fn check_rows(rows: &[Row], spec: &CheckSpec) -> Vec<Problem> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(rows.len().max(1));
    let chunk = rows.len().div_ceil(threads).max(1);
    let mut results: Vec<Vec<Problem>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows.chunks(chunk).map(|part| scope.spawn(move || part.iter().flat_map(|r| check_row(r, spec)).collect::<Vec<_>>())).collect();
        for h in handles {
            results.push(h.join().unwrap_or_default());
        }
    });
    results.into_iter().flatten().collect()
}

fn check_row(row: &Row, spec: &CheckSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let problem = |column: &str, message: String| Problem { file: row.file.clone(), line: row.line, column: column.to_string(), message };
    let mut shapes: Vec<(String, Vec<usize>)> = Vec::new();
    for (key, selection) in &spec.loads {
        let Some(value) = row.values.get(key) else {
            problems.push(problem(key, "the column is missing".into()));
            continue;
        };
        if value.is_empty() {
            problems.push(problem(key, "the cell is empty".into()));
            continue;
        }
        let path = PathBuf::from(value);
        if !path.is_file() {
            problems.push(problem(key, format!("file not found: {}", path.display())));
            continue;
        }
        match io::read(&path, selection) {
            Ok((array, _)) => shapes.push((key.clone(), array.shape().to_vec())),
            Err(e) => problems.push(problem(key, describe(&e))),
        }
    }
    // Spatial shapes must agree once each key is divided by its crop scale.
    if let Some((first_key, first_shape)) = shapes.first() {
        let normalised = |key: &str, shape: &[usize]| -> Vec<f64> {
            let scale = spec.scales.get(key);
            let dims = scale.map(|s| s.len()).unwrap_or(shape.len()).min(shape.len());
            let spatial = &shape[shape.len() - dims..];
            spatial.iter().enumerate().map(|(i, d)| *d as f64 / scale.and_then(|s| s.get(i)).copied().unwrap_or(1.0)).collect()
        };
        let reference = normalised(first_key, first_shape);
        for (key, shape) in &shapes[1..] {
            let n = normalised(key, shape);
            let k = reference.len().min(n.len());
            if reference[reference.len() - k..] != n[n.len() - k..] {
                problems.push(problem(key, format!("shape {shape:?} does not match `{first_key}` {first_shape:?}")));
            }
        }
    }
    problems
}

fn describe(e: &ReadError) -> String {
    match e {
        ReadError::OutOfRange { axis, index, size, .. } => format!("{axis} index {index} is out of range: the file has {size} along {axis}"),
        other => other.to_string(),
    }
}
