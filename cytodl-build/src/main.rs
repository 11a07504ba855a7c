//! `cytodl-build`: compile cyto_dl-style experiment configs into experiment binaries.
//!
//! `cytodl-build [build] EXPERIMENT [OVERRIDE...]` generates `generated/<name>/` and builds it;
//! `check` stops before code generation; `generate` writes (or with `--check` verifies) the
//! crate; `resolve` prints the resolved config; `example-data DIR` writes a synthetic dataset.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cytodl_build::compile::{compile, CompileRequest, Compiled};
use cytodl_build::config::emit::to_yaml;
use cytodl_build::diag::{Diagnostic, Diagnostics, SourceMap, Span};
use cytodl_build::frontend::{locate_experiment, missing_diagnostics, resolve, Request, Resolved};
use cytodl_build::interp::ResolveOptions;
use cytodl_build::{example_data, explain, workspace};
use cytodl_schema::{registry, Effect};

#[derive(Parser)]
#[command(name = "cytodl-build", version, about = "Compile cyto_dl-style experiment configs into training binaries", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: `build`.
    #[command(flatten)]
    build: BuildArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the experiment's crate, `cargo build` it, and print the binary's path (last line).
    Build(BuildArgs),
    /// Compose, resolve and check everything up to code generation; report every problem.
    Check(ConfigArgs),
    /// Write the experiment's crate (default `generated/<name>/`). `--check` verifies instead;
    /// `--check` with no experiment verifies every `configs/experiment/**` against `generated/`.
    Generate(GenerateArgs),
    /// Print the composed and resolved config as YAML (without the `hydra` node).
    Resolve(ConfigArgs),
    /// Say where each value came from: the file:line:col (or override) that set it last, every
    /// source it overrode, and the interpolations it went through. KEYs are dotted paths
    /// (`model.optimizer.lr`); `--all` writes the provenance of every value to a file.
    Explain(ExplainArgs),
    /// Write a small synthetic dataset in cyto_dl's layout (OME-TIFF FOVs + CSVs).
    ExampleData {
        /// The folder (the example configs read `data/example`).
        dir: PathBuf,
        /// Fields of view per task (train gets all but two).
        #[arg(long, default_value_t = 8)]
        files: usize,
    },
    /// List the registry: every supported `_target_` with its parameters.
    Targets,
}

#[derive(Args, Clone, Default)]
struct ConfigArgs {
    /// The config tree (default: the nearest ancestor of EXPERIMENT_YAML holding the primary
    /// config, else `./configs`).
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// The primary config.
    #[arg(long, default_value = "train")]
    config_name: String,
    /// An experiment file (`configs/experiment/segmentation.yaml`) and/or Hydra overrides.
    #[arg(value_name = "EXPERIMENT_YAML | OVERRIDE")]
    args: Vec<String>,
}

#[derive(Args, Clone, Default)]
struct GenerateArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The crate's folder (default `<workspace>/generated/<name>/`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Verify that the generated files are current instead of writing them.
    #[arg(long)]
    check: bool,
}

#[derive(Args, Clone, Default)]
struct ExplainArgs {
    /// An experiment file, Hydra overrides, and the KEYs to explain (dotted paths: arguments with
    /// no `=` that are not files).
    #[command(flatten)]
    config: ConfigArgs,
    /// Explain every value, into `provenance.txt` next to the experiment's `resolved.yaml`
    /// (`generated/<name>/`), or into the folder `--out` names.
    #[arg(long)]
    all: bool,
    /// The folder `--all` writes `provenance.txt` into.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct BuildArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The crate's folder (default `<workspace>/generated/<name>/`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cargo features of the binary (`cuda`, `wgpu`).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Cargo profile: `release` (default) or `dev` (reuses a test build's artifacts).
    #[arg(long)]
    profile: Option<String>,
    /// Pass `--offline` to cargo.
    #[arg(long)]
    offline: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Build(a)) => build(a),
        None => build(cli.build),
        Some(Command::Check(a)) => check(a),
        Some(Command::Generate(a)) => generate(a),
        Some(Command::Resolve(a)) => resolve_cmd(a),
        Some(Command::Explain(a)) => explain_cmd(a),
        Some(Command::ExampleData { dir, files }) => match example_data::write(&dir, files, example_data::Shape::default()) {
            Ok(folders) => {
                for f in folders {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Some(Command::Targets) => {
            targets();
            ExitCode::SUCCESS
        }
    }
}

fn error(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// An argument is an experiment file when it names a YAML file and is not an override.
fn is_experiment_file(arg: &str) -> bool {
    !arg.contains('=') && !arg.starts_with(['+', '~']) && (arg.ends_with(".yaml") || arg.ends_with(".yml"))
}

fn request(a: &ConfigArgs) -> CompileRequest {
    let mut overrides = Vec::new();
    let mut experiment = None;
    for arg in &a.args {
        // A path to an existing file that is not YAML is a mistake, not an override.
        let names_a_file = !arg.contains('=') && Path::new(arg).is_file();
        if experiment.is_none() && (names_a_file || is_experiment_file(arg)) {
            experiment = Some(PathBuf::from(arg));
        } else {
            overrides.push(arg.clone());
        }
    }
    CompileRequest { experiment, config_dir: a.config_dir.clone(), config_name: a.config_name.clone(), overrides }
}

/// Compiles, printing warnings; `None` after printing the errors.
fn compiled(a: &ConfigArgs) -> Option<Compiled> {
    match compile(&request(a)) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                eprint!("{}", c.warnings.render(&c.sources));
            }
            Some(c)
        }
        Err(e) => {
            eprint!("{}", e.render());
            None
        }
    }
}

fn check(a: ConfigArgs) -> ExitCode {
    let Some(c) = compiled(&a) else { return ExitCode::FAILURE };
    let e = &c.experiment;
    eprintln!(
        "ok: {} checks ({}D, {} column{}, head{} {}, {} transforms)",
        e.name,
        e.spatial_dims,
        e.columns.len(),
        if e.columns.len() == 1 { "" } else { "s" },
        if e.model.task_heads().0.len() == 1 { "" } else { "s" },
        e.model.task_heads().0.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
        e.data.transforms.iter().map(|(_, c)| c.transforms.0.len()).sum::<usize>()
    );
    ExitCode::SUCCESS
}

fn out_dir(out: &Option<PathBuf>, ws: &Path, e: &cytodl_build::ir::Experiment) -> PathBuf {
    out.clone().unwrap_or_else(|| workspace::default_out(ws, e))
}

fn generate(a: GenerateArgs) -> ExitCode {
    let ws = match workspace::root() {
        Ok(w) => w,
        Err(e) => return error(e),
    };
    let has_experiment = a.config.args.iter().any(|x| is_experiment_file(x));
    if a.check && !has_experiment {
        return check_all(&ws);
    }
    let Some(c) = compiled(&a.config) else { return ExitCode::FAILURE };
    let out = out_dir(&a.out, &ws, &c.experiment);
    match workspace::generate(&c.experiment, &ws, &out, a.check) {
        Ok(stale) if stale.is_empty() => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Ok(stale) => {
            for s in stale {
                eprintln!("stale: {}", s.display());
            }
            error(format!("{} is not current; run `cytodl-build generate {}`", out.display(), a.config.args.join(" ")))
        }
        Err(e) => error(e),
    }
}

/// Every `configs/experiment/**/*.yaml` of the workspace against its crate in `generated/`.
fn check_all(ws: &Path) -> ExitCode {
    let dir = ws.join("configs").join("experiment");
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return error(format!("no experiments under {}", dir.display()));
    }
    let mut bad = 0;
    for f in &files {
        let args = ConfigArgs { args: vec![f.display().to_string()], config_name: "train".into(), ..Default::default() };
        let Some(c) = compiled(&args) else {
            bad += 1;
            continue;
        };
        let out = workspace::default_out(ws, &c.experiment);
        match workspace::generate(&c.experiment, ws, &out, true) {
            Ok(stale) if stale.is_empty() => println!("ok: {}", out.display()),
            Ok(stale) => {
                bad += 1;
                for s in stale {
                    eprintln!("stale: {} (from {})", s.display(), f.display());
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if bad > 0 {
        return error(format!("{bad} of {} experiments are not current; run `cytodl-build generate EXPERIMENT` for each", files.len()));
    }
    ExitCode::SUCCESS
}

fn build(a: BuildArgs) -> ExitCode {
    if a.config.args.is_empty() {
        return error("give an experiment file: `cytodl-build configs/experiment/segmentation.yaml`".into());
    }
    let ws = match workspace::root() {
        Ok(w) => w,
        Err(e) => return error(e),
    };
    let Some(c) = compiled(&a.config) else { return ExitCode::FAILURE };
    let out = out_dir(&a.out, &ws, &c.experiment);
    if let Err(e) = workspace::generate(&c.experiment, &ws, &out, false) {
        return error(e);
    }
    eprintln!("generated {}", out.display());
    let opts = workspace::BuildOptions { features: a.features.clone(), profile: a.profile.clone(), offline: a.offline };
    if let Some(w) = opts.accelerator_warning(c.experiment.trainer.accelerator) {
        eprintln!("{w}");
    }
    match workspace::build(&c.experiment, &ws, &out, &opts) {
        Ok(bin) => {
            println!("{}", bin.display());
            ExitCode::SUCCESS
        }
        Err(e) => error(e),
    }
}

fn targets() {
    let mut out = std::io::stdout().lock();
    for c in registry::all() {
        let _ = writeln!(out, "{} ({}) — {}", c.names[0], c.kind.describe(), c.doc());
        for alias in &c.names[1..] {
            let _ = writeln!(out, "  also: {alias}");
        }
        for p in c.params {
            let d = match p.default_text() {
                Some(d) => format!(" = {d}"),
                None => " (required)".into(),
            };
            let effect = match p.effect {
                Effect::Used => String::new(),
                Effect::Ignored(why) => format!(" [no effect: {why}]"),
                Effect::Unsupported => " [not supported: an error when set]".into(),
            };
            let _ = writeln!(out, "  {}: {}{} — {}{effect}", p.name, p.ty.describe(), d, p.doc());
        }
    }
    let _ = writeln!(out, "\nRecognised but not implemented yet:");
    for (n, what) in registry::NOT_IMPLEMENTED {
        let _ = writeln!(out, "  {n} ({what})");
    }
}

/// Composes and resolves `a` (no checks, no code), printing warnings; `None` after printing
/// the errors.
fn resolved_config(a: &ConfigArgs) -> Option<Resolved> {
    let req = request(a);
    let sources = SourceMap::default();
    let mut overrides = req.overrides.clone();
    let mut config_dir = req.config_dir.clone();
    if let Some(file) = &req.experiment {
        match locate_experiment(file, &req.config_name) {
            Ok((root, choice)) => {
                config_dir.get_or_insert(root);
                overrides.insert(0, choice);
            }
            Err(d) => {
                eprint!("{}", Diagnostics::from(d).render(&sources));
                return None;
            }
        }
    }
    let config_dir = config_dir.unwrap_or_else(|| PathBuf::from("configs"));
    if !config_dir.is_dir() {
        let d = Diagnostic::error(format!("config directory {} does not exist", config_dir.display()), Span::UNKNOWN)
            .with_help("pass `--config-dir DIR` or an experiment file inside a config tree");
        eprint!("{}", Diagnostics::from(d).render(&sources));
        return None;
    }
    let implicit_overrides = usize::from(req.experiment.is_some());
    let request = Request { config_dir, config_name: req.config_name, overrides, implicit_overrides };
    let resolved = match resolve(&request, &ResolveOptions::default()) {
        Ok(r) => r,
        Err(f) => {
            eprint!("{}", f.render());
            return None;
        }
    };
    let mut notes = resolved.warnings.clone();
    notes.extend(missing_diagnostics(&resolved.missing, false));
    if !notes.is_empty() {
        eprint!("{}", notes.render(&resolved.sources));
    }
    Some(resolved)
}

/// A KEY argument of `explain`: a dotted path, not an override or a file.
fn is_key(arg: &str) -> bool {
    !arg.contains('=') && !arg.starts_with(['+', '~']) && !is_experiment_file(arg) && !Path::new(arg).is_file()
}

fn explain_cmd(a: ExplainArgs) -> ExitCode {
    let (keys, rest): (Vec<String>, Vec<String>) = a.config.args.iter().cloned().partition(|arg| is_key(arg));
    if keys.is_empty() && !a.all {
        return error("explain needs KEYs to explain (dotted paths such as `model.optimizer.lr`) or --all".into());
    }
    let config = ConfigArgs { args: rest, ..a.config.clone() };
    let Some(resolved) = resolved_config(&config) else { return ExitCode::FAILURE };
    let mut failed = false;
    for key in &keys {
        match explain::explain_key(&resolved, key) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if a.all {
        let folder = match &a.out {
            Some(dir) => dir.clone(),
            None => {
                let Some(c) = compiled(&config) else {
                    return error("explain --all: the experiment does not compile, so it has no generated folder; pass --out DIR".into());
                };
                match workspace::root() {
                    Ok(ws) => workspace::default_out(&ws, &c.experiment),
                    Err(e) => return error(e),
                }
            }
        };
        let file = folder.join("provenance.txt");
        let written = std::fs::create_dir_all(&folder).and_then(|()| std::fs::write(&file, explain::explain_all(&resolved)));
        match written {
            Ok(()) => println!("{}", file.display()),
            Err(e) => return error(format!("{}: {e}", file.display())),
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn resolve_cmd(a: ConfigArgs) -> ExitCode {
    let Some(resolved) = resolved_config(&a) else { return ExitCode::FAILURE };
    let text = to_yaml(&resolved.config);
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
