//! Diagnostics: `file:line:col: error: ...` with the source line, a caret, the key path and the fix.
//!
//! Errors are collected, not first-only: every stage pushes into a [`Diagnostics`] list and the
//! CLI renders them all at once. Source texts live in a [`SourceMap`] so a [`Span`] stays `Copy`.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// Index of a source text in the [`SourceMap`]. `FileId(0)` is "unknown / built in".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId(pub u32);

/// Where a value came from: 1-based line and column in a file or a command-line override.
/// `line == 0` means the location is unknown (built-in values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub const UNKNOWN: Span = Span { file: FileId(0), line: 0, col: 0 };

    pub fn new(file: FileId, line: u32, col: u32) -> Self {
        Span { file, line, col }
    }

    pub fn is_known(&self) -> bool {
        self.line > 0
    }

    /// The span `offset` characters to the right on the same line (for errors inside a scalar).
    pub fn shifted(self, chars: usize) -> Span {
        if !self.is_known() {
            return self;
        }
        Span { col: self.col + chars as u32, ..self }
    }
}

/// What kind of source a file is: a YAML file on disk or one command-line override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    File(PathBuf),
    Override,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub kind: SourceKind,
    pub name: String,
    pub text: String,
}

/// All source texts seen during one compilation.
#[derive(Debug, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl Default for SourceMap {
    fn default() -> Self {
        SourceMap { files: vec![SourceFile { kind: SourceKind::Override, name: "<built-in>".into(), text: String::new() }] }
    }
}

impl SourceMap {
    pub fn add_file(&mut self, path: &Path, text: String) -> FileId {
        self.push(SourceFile { kind: SourceKind::File(path.to_path_buf()), name: display_path(path), text })
    }

    /// Registers one command-line override as a source of its own, named e.g. `<override 1>`.
    pub fn add_override(&mut self, name: String, text: &str) -> FileId {
        self.push(SourceFile { kind: SourceKind::Override, name, text: text.to_string() })
    }

    fn push(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId((self.files.len() - 1) as u32)
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn name(&self, id: FileId) -> &str {
        self.get(id).map(|f| f.name.as_str()).unwrap_or("<unknown>")
    }

    pub fn line_text(&self, span: Span) -> Option<&str> {
        let file = self.get(span.file)?;
        if span.line == 0 {
            return None;
        }
        file.text.lines().nth(span.line as usize - 1)
    }

    /// `file:line:col`, or just the file name when the position is unknown.
    pub fn location(&self, span: Span) -> String {
        if span.is_known() {
            format!("{}:{}:{}", self.name(span.file), span.line, span.col)
        } else {
            self.name(span.file).to_string()
        }
    }
}

/// Paths are shown relative to the working directory when they lie under it.
fn display_path(path: &Path) -> String {
    let path: PathBuf = path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    let path = path.as_path();
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    path.display().to_string()
}

/// The exception Hydra 1.3 / OmegaConf 2.3 / PyYAML raise for the same mistake. Shown with the
/// diagnostic (`= hydra: ConfigCompositionException`) so that a user can look it up as they
/// would a Python traceback, and compared by the conformance tests with what real Hydra raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    InterpolationKeyError,
    InterpolationResolutionError,
    InterpolationToMissingValueError,
    UnsupportedInterpolationType,
    GrammarParseError,
    MissingMandatoryValue,
    ConfigTypeError,
    ConfigKeyError,
    UnsupportedValueType,
    ValidationError,
    ValueError,
    TypeError,
    KeyError,
    /// PyYAML's parser and constructor.
    ParserError,
    ScannerError,
    ConstructorError,
    ComposerError,
}

impl ErrorClass {
    /// The Python class name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::ConfigCompositionException => "ConfigCompositionException",
            ErrorClass::MissingConfigException => "MissingConfigException",
            ErrorClass::OverrideParseException => "OverrideParseException",
            ErrorClass::InterpolationKeyError => "InterpolationKeyError",
            ErrorClass::InterpolationResolutionError => "InterpolationResolutionError",
            ErrorClass::InterpolationToMissingValueError => "InterpolationToMissingValueError",
            ErrorClass::UnsupportedInterpolationType => "UnsupportedInterpolationType",
            ErrorClass::GrammarParseError => "GrammarParseError",
            ErrorClass::MissingMandatoryValue => "MissingMandatoryValue",
            ErrorClass::ConfigTypeError => "ConfigTypeError",
            ErrorClass::ConfigKeyError => "ConfigKeyError",
            ErrorClass::UnsupportedValueType => "UnsupportedValueType",
            ErrorClass::ValidationError => "ValidationError",
            ErrorClass::ValueError => "ValueError",
            ErrorClass::TypeError => "TypeError",
            ErrorClass::KeyError => "KeyError",
            ErrorClass::ParserError => "ParserError",
            ErrorClass::ScannerError => "ScannerError",
            ErrorClass::ConstructorError => "ConstructorError",
            ErrorClass::ComposerError => "ComposerError",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One message for the user, with everything needed to act on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// The config key the problem is about (`data.columns`), when there is one.
    pub key: Option<String>,
    /// Further locations that explain the error (the definition behind an interpolation, a cycle's links).
    pub notes: Vec<(Span, String)>,
    /// The fix: "did you mean ...", "set it with `k=v`".
    pub help: Option<String>,
    /// What Hydra / OmegaConf would raise (front-end errors only).
    pub class: Option<ErrorClass>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        Diagnostic { severity: Severity::Error, message: message.into(), span, key: None, notes: vec![], help: None, class: None }
    }

    pub fn warning(message: impl Into<String>, span: Span) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message, span) }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        if !key.is_empty() {
            self.key = Some(key);
        }
        self
    }

    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = Some(class);
        self
    }

    /// Sets the class unless one is set (an inner error's class stays the more precise one).
    pub fn or_class(mut self, class: ErrorClass) -> Self {
        self.class.get_or_insert(class);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    /// Renders the diagnostic rustc-style against the sources it points into.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{}: {}: {}", sources.location(self.span), level, self.message);
        render_snippet(&mut out, sources, self.span);
        if let Some(key) = &self.key {
            let _ = writeln!(out, "  = key: {key}");
        }
        for (span, note) in &self.notes {
            if span.is_known() {
                let _ = writeln!(out, "  = note: {}: {}", sources.location(*span), note);
                render_snippet(&mut out, sources, *span);
            } else {
                let _ = writeln!(out, "  = note: {note}");
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        if let Some(class) = self.class {
            let _ = writeln!(out, "  = hydra: {}", class.name());
        }
        out
    }
}

fn render_snippet(out: &mut String, sources: &SourceMap, span: Span) {
    let Some(line) = sources.line_text(span) else { return };
    let number = span.line.to_string();
    let pad = " ".repeat(number.len());
    let caret_pad: String = line.chars().take(span.col.saturating_sub(1) as usize).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{number} | {line}");
    let _ = writeln!(out, "{pad} | {caret_pad}^");
}

/// A collection of diagnostics; the error type of every stage of the compiler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&d.render(sources));
            out.push('\n');
        }
        let errors = self.items.iter().filter(|d| d.severity == Severity::Error).count();
        if errors > 1 {
            let _ = writeln!(out, "error: aborting due to {errors} errors");
        }
        out
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{}", d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Errors with the sources they point into: why resolving or compiling a config failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub diagnostics: Diagnostics,
    pub sources: SourceMap,
}

impl Failure {
    /// One diagnostic that points into no file (a missing experiment file, a bad request).
    pub fn single(d: Diagnostic) -> Self {
        Failure { diagnostics: d.into(), sources: SourceMap::default() }
    }

    /// Every diagnostic with its source lines, as the command line prints them.
    pub fn render(&self) -> String {
        self.diagnostics.render(&self.sources)
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidates closest to `name` (within a third of its length, at least 2 edits), best first.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let d = edit_distance(&name.to_lowercase(), &c.to_lowercase());
            // A candidate that contains the name (or the reverse) is a good guess too.
            let d = if c.contains(name) || name.contains(c) { d.min(limit) } else { d };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().map(|(_, c)| c).take(3).collect()
}

/// "did you mean `x`?" / "did you mean one of `x`, `y`?" for the nearest candidates, if any.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean_in("", name, candidates)
}

/// Like [`did_you_mean`] for the last part of a dotted key: ranks `name` against sibling keys and
/// names each suggestion in full (`prefix` is the parent path with its trailing dot).
pub fn did_you_mean_in<'a>(prefix: &str, name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let near = nearest(name, candidates);
    match near.as_slice() {
        [] => None,
        [one] => Some(format!("did you mean `{prefix}{one}`?")),
        many => Some(format!("did you mean one of {}?", many.iter().map(|c| format!("`{prefix}{c}`")).collect::<Vec<_>>().join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_rank_by_distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(nearest("segmentaton", ["segmentation", "labelfree", "gan"]), vec!["segmentation"]);
        assert!(nearest("zzz", ["segmentation"]).is_empty());
    }

    #[test]
    fn render_points_at_column() {
        let mut sm = SourceMap::default();
        let id = sm.add_file(Path::new("/nonexistent/a.yaml"), "a: 1\nb: ${c}\n".into());
        let d = Diagnostic::error("boom", Span::new(id, 2, 4)).with_key("b").with_help("fix it");
        let text = d.render(&sm);
        assert!(text.starts_with("/nonexistent/a.yaml:2:4: error: boom\n"), "{text}");
        assert!(text.contains("2 | b: ${c}\n  |    ^\n"), "{text}");
        assert!(text.contains("= key: b"));
        assert!(text.contains("= help: fix it"));
    }
}
