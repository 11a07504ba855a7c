//! Where generated crates go and how they are built: one cargo target dir for the whole
//! workspace (burn is built once), crates under `generated/` as workspace members, crates
//! elsewhere as stand-alone workspaces sharing the same target dir and lock file.

use std::path::{Path, PathBuf};
use std::process::Command;

use cytodl_schema::Accelerator;

use crate::codegen::crate_files::{crate_files, stale, write, Layout};
use crate::codegen::ident::{binary_name, package_name};
use crate::ir::Experiment;

/// The cytodl workspace: `$CYTODL_WORKSPACE`, else the checkout this binary was built from.
pub fn root() -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("CYTODL_WORKSPACE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    if candidate.join("cytodl-runtime").join("Cargo.toml").is_file() {
        Ok(candidate)
    } else {
        Err(format!("{} is not a cytodl workspace (no cytodl-runtime/Cargo.toml); set CYTODL_WORKSPACE to the cytodl checkout", candidate.display()))
    }
}

/// The default crate folder of an experiment: `<workspace>/generated/<name>`.
pub fn default_out(workspace: &Path, e: &Experiment) -> PathBuf {
    workspace.join("generated").join(&e.name)
}

/// Generates the crate into `out`; with `check_only`, lists the stale files instead.
pub fn generate(e: &Experiment, workspace: &Path, out: &Path, check_only: bool) -> Result<Vec<PathBuf>, String> {
    let layout = Layout { workspace: workspace.to_path_buf(), out_dir: out.to_path_buf() };
    let files = crate_files(e, &layout)?;
    if check_only {
        return Ok(stale(out, &files));
    }
    write(out, &files).map_err(|err| format!("{}: {err}", out.display()))?;
    if !layout.in_workspace() {
        // Same dependency versions as the workspace, so its compiled burn is reused.
        let lock = out.join("Cargo.lock");
        if !lock.exists() {
            let _ = std::fs::copy(workspace.join("Cargo.lock"), lock);
        }
    }
    Ok(Vec::new())
}

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub features: Vec<String>,
    /// `release` (default) or `dev`.
    pub profile: Option<String>,
    pub offline: bool,
}

impl BuildOptions {
    /// The features asked for, however they were spelled (`--features cuda,wgpu` or repeated).
    fn has_feature(&self, wanted: &str) -> bool {
        self.features.iter().flat_map(|f| f.split([',', ' '])).any(|f| f.trim() == wanted || f.trim() == format!("cytodl-runtime/{wanted}"))
    }

    /// What the binary will say when it starts, said now: `trainer.accelerator` asks for a GPU
    /// backend this build leaves out (the binary then stops with an error unless told
    /// `--device cpu`), so the user learns it before copying the binary to a GPU node.
    pub fn accelerator_warning(&self, accelerator: Accelerator) -> Option<String> {
        let gpu = self.has_feature("cuda") || self.has_feature("cuda-autotune") || self.has_feature("libtorch") || self.has_feature("wgpu");
        let (missing, feature) = match accelerator {
            Accelerator::Gpu if !gpu => ("GPU backend", "cuda"),
            Accelerator::Cuda if !(self.has_feature("cuda") || self.has_feature("cuda-autotune") || self.has_feature("libtorch")) => ("CUDA backend", "cuda"),
            Accelerator::Mps if !self.has_feature("wgpu") => ("wgpu (Metal) backend", "wgpu"),
            _ => return None,
        };
        Some(format!(
            "warning: trainer.accelerator is {}, but this build has no {missing}: the binary will stop with an error unless run with `--device cpu` or `trainer.accelerator=cpu`; add `--features {feature}` to train on the GPU",
            accelerator.name()
        ))
    }
}

/// `cargo build` of the generated crate in the workspace's target dir; returns the binary.
pub fn build(e: &Experiment, workspace: &Path, out: &Path, opts: &BuildOptions) -> Result<PathBuf, String> {
    let layout = Layout { workspace: workspace.to_path_buf(), out_dir: out.to_path_buf() };
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build");
    let profile = opts.profile.clone().unwrap_or_else(|| "release".into());
    cmd.arg("--profile").arg(&profile);
    if layout.in_workspace() {
        cmd.arg("--manifest-path").arg(workspace.join("Cargo.toml")).arg("-p").arg(package_name(&e.name));
    } else {
        cmd.arg("--manifest-path").arg(out.join("Cargo.toml"));
    }
    if !opts.features.is_empty() {
        cmd.arg("--features").arg(opts.features.join(","));
    }
    if opts.offline {
        cmd.arg("--offline");
    }
    cmd.env("CARGO_TARGET_DIR", &target);
    let status = cmd.status().map_err(|err| format!("cannot run cargo: {err}"))?;
    if !status.success() {
        return Err(format!("cargo build of {} failed ({status})", out.display()));
    }
    let dir = if profile == "dev" { "debug".to_string() } else { profile };
    let file = format!("{}{}", binary_name(&e.name), std::env::consts::EXE_SUFFIX);
    let bin = target.join(dir).join(&file);
    if !bin.is_file() {
        return Err(format!("cargo finished but {} is not there", bin.display()));
    }
    if layout.in_workspace() {
        return Ok(bin);
    }
    // Crates outside the workspace share its target dir, where two experiments with the same
    // name would overwrite each other's binary: each gets its own copy in its crate folder.
    let own = out.join("bin").join(&file);
    std::fs::create_dir_all(out.join("bin")).and_then(|_| std::fs::copy(&bin, &own)).map_err(|err| format!("{}: {err}", own.display()))?;
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(features: &[&str]) -> BuildOptions {
        BuildOptions { features: features.iter().map(|f| f.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn a_gpu_accelerator_without_a_gpu_backend_is_said_at_build_time() {
        let warning = with(&[]).accelerator_warning(Accelerator::Gpu).expect("gpu without a GPU backend");
        assert!(warning.contains("trainer.accelerator is gpu") && warning.contains("--features cuda") && warning.contains("--device cpu"), "{warning}");
        assert!(with(&["cuda"]).accelerator_warning(Accelerator::Gpu).is_none());
        assert!(with(&["wgpu,libtorch"]).accelerator_warning(Accelerator::Gpu).is_none());
        assert!(with(&["wgpu"]).accelerator_warning(Accelerator::Cuda).is_some(), "wgpu is not CUDA");
        assert!(with(&["libtorch"]).accelerator_warning(Accelerator::Cuda).is_none());
        assert!(with(&["cuda"]).accelerator_warning(Accelerator::Mps).expect("mps runs on wgpu").contains("--features wgpu"));
        for quiet in [Accelerator::Cpu, Accelerator::Auto] {
            assert!(with(&[]).accelerator_warning(quiet).is_none(), "{quiet:?}");
        }
    }
}
