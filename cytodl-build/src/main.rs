//! `cytodl-build`: compose, resolve and (later) compile cyto_dl-style experiment configs.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cytodl_build::config::emit::to_yaml;
use cytodl_build::diag::{Diagnostics, SourceMap};
use cytodl_build::frontend::{locate_experiment, missing_diagnostics, resolve, Request};
use cytodl_build::interp::ResolveOptions;

#[derive(Parser)]
#[command(name = "cytodl-build", version, about = "Compile cyto_dl-style experiment configs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the composed and resolved config as YAML (without the `hydra` node).
    Resolve(ConfigArgs),
    /// Compose and resolve, and fail on anything left unset (`???`).
    Check(ConfigArgs),
}

#[derive(Args)]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Resolve(a) => run(a, false),
        Command::Check(a) => run(a, true),
    }
}

fn fail(d: Diagnostics, sources: &SourceMap) -> ExitCode {
    eprint!("{}", d.render(sources));
    ExitCode::FAILURE
}

/// An argument is an experiment file when it names a YAML file and is not an override.
fn is_experiment_file(arg: &str) -> bool {
    !arg.contains('=') && !arg.starts_with(['+', '~']) && (arg.ends_with(".yaml") || arg.ends_with(".yml"))
}

fn run(a: ConfigArgs, strict: bool) -> ExitCode {
    let mut overrides = Vec::new();
    let mut experiment = None;
    for arg in a.args {
        if experiment.is_none() && is_experiment_file(&arg) {
            experiment = Some(PathBuf::from(arg));
        } else {
            overrides.push(arg);
        }
    }
    let sources = SourceMap::default();
    let mut config_dir = a.config_dir.clone();
    if let Some(file) = &experiment {
        match locate_experiment(file, &a.config_name) {
            Ok((root, choice)) => {
                if config_dir.is_none() {
                    config_dir = Some(root);
                }
                overrides.insert(0, choice);
            }
            Err(d) => return fail(d.into(), &sources),
        }
    }
    let config_dir = config_dir.unwrap_or_else(|| PathBuf::from("configs"));
    if !config_dir.is_dir() {
        return fail(
            cytodl_build::diag::Diagnostic::error(
                format!("config directory {} does not exist", config_dir.display()),
                cytodl_build::diag::Span::UNKNOWN,
            )
            .with_help("pass `--config-dir DIR` or an experiment file inside a config tree")
            .into(),
            &sources,
        );
    }
    let implicit_overrides = usize::from(experiment.is_some());
    let req = Request { config_dir, config_name: a.config_name, overrides, implicit_overrides };
    let resolved = match resolve(&req, &ResolveOptions::default()) {
        Ok(r) => r,
        Err(f) => {
            eprint!("{}", f.render());
            return ExitCode::FAILURE;
        }
    };
    let mut notes = resolved.warnings.clone();
    notes.extend(missing_diagnostics(&resolved.missing, strict));
    if !notes.is_empty() {
        eprint!("{}", notes.render(&resolved.sources));
    }
    if strict {
        if notes.has_errors() {
            return ExitCode::FAILURE;
        }
        eprintln!("ok: {} resolves", req.config_name);
        return ExitCode::SUCCESS;
    }
    let text = to_yaml(&resolved.config);
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
