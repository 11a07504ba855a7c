//! The runtime's modules form layers without cycles (README's Layout lists them): model and task
//! types below the trainer, the trainer below the model families, those below the experiment
//! trait and the command line. Read from the sources' `crate::` and (inside `train/`) `super::`
//! paths, outside comments and `#[cfg(test)]` modules; a cycle fails with the modules on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `train/step.rs` -> `train::step`, `nn/heads.rs` -> `nn`, `lib.rs` -> none: `train`'s files
/// are modules of their own (the trainer's pieces), other folders count as one module.
fn module_of(relative: &Path) -> Option<String> {
    let mut parts: Vec<String> = relative.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    match parts.as_slice() {
        [] => None,
        [top, sub, ..] if top == "train" => Some(format!("train::{sub}")),
        [top, ..] => Some(top.clone()),
    }
}

/// The identifier starting `text`.
fn ident(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// The parts of a `{a::X, b::{Y, Z}}` group at its top level (`text` starts after the `{`).
fn group_parts(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0usize, 0usize, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(&text[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// The modules a path after `crate::` names: `train::step::X` -> `train::step`, `{a::X, b}` ->
/// `a`, `b`; `train::{step::X, trainer}` -> `train::step`, `train::trainer`.
fn targets(after: &str) -> Vec<String> {
    if let Some(group) = after.strip_prefix('{') {
        return group_parts(group).into_iter().flat_map(targets).collect();
    }
    let head = ident(after);
    if head.is_empty() {
        return Vec::new();
    }
    if head == "train" {
        let rest = &after[head.len()..];
        let subs: Vec<&str> = match rest.strip_prefix("::{") {
            Some(group) => group_parts(group).into_iter().map(ident).collect(),
            None => rest.strip_prefix("::").map(ident).into_iter().collect(),
        };
        let modules: Vec<String> =
            subs.into_iter().filter(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase())).map(|s| format!("train::{s}")).collect();
        if !modules.is_empty() {
            return modules;
        }
    }
    vec![head.to_string()]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f.strip_prefix(&src).ok()?)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let Some(from) = module_of(file.strip_prefix(&src).expect("under src")) else { continue };
        let text = std::fs::read_to_string(file).expect("read source");
        let before_tests = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        // Without comments (doc links are not imports), as one text: a `use` group may span lines.
        let code: String = before_tests.lines().map(str::trim_start).filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n");
        let mut named = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            named.extend(targets(&code[at + "crate::".len()..]));
        }
        if from == "train" {
            // `train/mod.rs` re-exporting from its modules stands for them.
            for (at, _) in code.match_indices("pub use ") {
                named.extend(targets(code[at + "pub use ".len()..].trim_start_matches("self::")).into_iter().map(|m| format!("train::{m}")));
            }
        }
        if from.starts_with("train::") {
            for (at, _) in code.match_indices("super::") {
                named.extend(targets(&code[at + "super::".len()..]).into_iter().map(|m| format!("train::{m}")));
            }
        }
        graph.entry(from.clone()).or_default().extend(named.into_iter().filter(|m| *m != from && modules.contains(m)));
    }
    graph
}

/// A cycle through `start`, if there is one: the modules in order.
fn cycle_through(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                return Some(path.iter().cloned().chain([next.clone()]).collect());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), path.iter().cloned().chain([next.clone()]).collect()));
            }
        }
    }
    None
}

#[test]
fn the_runtime_modules_have_no_import_cycle() {
    let graph = graph();
    for (module, uses) in &graph {
        println!("{module} -> {}", uses.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    for key in ["model", "task", "tensor", "train::trainer", "train::step", "family", "experiment", "cli"] {
        assert!(graph.contains_key(key), "module `{key}` not found: the test reads the wrong tree");
    }
    assert!(graph["model"].contains("task") && graph["train::trainer"].contains("task"), "edges are read");
    let cycles: Vec<String> = graph.keys().filter_map(|m| cycle_through(&graph, m)).map(|c| c.join(" -> ")).collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_finds_grouped_and_nested_paths() {
    assert_eq!(targets("{array::Array, data::loader::Batch}"), ["array", "data"]);
    assert_eq!(targets("train::step::Supervised"), ["train::step"]);
    assert_eq!(targets("train::TrainError"), ["train"]);
    assert_eq!(targets("train::{\n    step::Supervised,\n    trainer::{Trainer, TrainerConfig},\n};"), ["train::step", "train::trainer"]);
    assert_eq!(targets("{model::{to_array, Gan}, task::Im2Im}"), ["model", "task"]);
    assert_eq!(module_of(Path::new("train/step.rs")).as_deref(), Some("train::step"));
    assert_eq!(module_of(Path::new("nn/heads/mod.rs")).as_deref(), Some("nn"));
    assert_eq!(module_of(Path::new("lib.rs")), None);
    let cyclic: Graph = [("a", "b"), ("b", "c"), ("c", "a")].into_iter().map(|(f, t)| (f.to_string(), BTreeSet::from([t.to_string()]))).collect();
    assert_eq!(cycle_through(&cyclic, "a"), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
