//! What the test suites share.
//!
//! - **Oracles.** Tests compare against `../shared` (Hydra conformance cases, cyto_dl's config
//!   tree, MONAI fixtures) and against Python's tifffile. When one is missing, [`skip`] fails the
//!   test under CI (`CI` set, as every CI service does) and otherwise prints a `SKIP` line and
//!   counts it, so a green run never hides a comparison that did not happen.
//! - **Counts.** [`oracle_ran`] records how many comparisons an oracle made; `.ci/run` sums the
//!   records (`CYTODL_TEST_LOG`) and prints them.
//! - **Binaries.** [`workspace_binary`] builds the workspace's binaries (the generated experiment
//!   binaries among them) with the same profile and feature selection as the running test
//!   build, so an end-to-end test never runs a stale binary or one an earlier build left.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Whether this run is CI's: there, every oracle must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

static SKIPS: AtomicUsize = AtomicUsize::new(0);

/// Appends one line to `$CYTODL_TEST_LOG` (when set), the file `.ci/run` sums.
fn log_line(line: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let Some(path) = std::env::var_os("CYTODL_TEST_LOG") else { return };
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// `test` cannot run because `reason`: a failure under CI, a counted `SKIP` line otherwise.
/// Returns `None` so callers can write `let Some(x) = ... else { return skip(...) }`.
#[track_caller]
pub fn skip<T>(test: &str, reason: &str) -> Option<T> {
    if in_ci() {
        panic!("{test}: {reason}. Under CI every oracle must be present (see .ci/run); unset CI to skip locally");
    }
    let n = SKIPS.fetch_add(1, Ordering::SeqCst) + 1;
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and a
    // skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIP #{n} {test}: {reason}");
    log_line(&format!("SKIP {test}: {reason}"));
    None
}

/// Records that `test` made `count` comparisons against `oracle` (e.g. `tifffile`).
pub fn oracle_ran(oracle: &str, test: &str, count: usize) {
    eprintln!("{oracle}: {count} comparisons in {test}");
    log_line(&format!("ORACLE {oracle} {count} {test}"));
}

/// `../shared` beside the checkout (the read-only oracles; `$CYTODL_SHARED` elsewhere), or a skip.
#[track_caller]
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let p = std::env::var_os("CYTODL_SHARED").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("../shared"));
    match p.is_dir() {
        true => Some(p.canonicalize().unwrap_or(p)),
        false => skip(test, &format!("the oracles folder {} does not exist (../shared beside the checkout, or $CYTODL_SHARED)", p.display())),
    }
}

/// A Python interpreter that imports every module of `modules`: `$CYTODL_PYTHON` (what `.ci/run`
/// sets to its venv), else `python3` on the PATH; or a skip.
#[track_caller]
pub fn python_with(test: &str, modules: &[&str]) -> Option<PathBuf> {
    let python = std::env::var_os("CYTODL_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let imports = format!("import {}", modules.join(", "));
    let ok = Command::new(&python).args(["-c", &imports]).output().map(|o| o.status.success()).unwrap_or(false);
    match ok {
        true => Some(python),
        false => skip(test, &format!("{} cannot `{imports}` (set CYTODL_PYTHON or pip install {})", python.display(), modules.join(" "))),
    }
}

/// A test's own empty folder under the system temp dir, removed when the test ends. A failing
/// test keeps it (its path is printed) so what the run wrote can be looked at.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<tmp>/cytodl-<name>-<pid>-<n>`: unique per process and per call, so tests running in
    /// parallel (or the same test twice) never share a folder.
    pub fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("cytodl-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the scratch folder {}: {e}", dir.display());
        }
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl From<&Scratch> for PathBuf {
    fn from(s: &Scratch) -> PathBuf {
        s.0.clone()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `target/<profile>` of the running test executable (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// Builds every binary and example of the workspace once per test process, with the running
/// test build's profile and target dir. Selecting the whole workspace keeps cargo's feature
/// unification that of `cargo test --workspace`, so only the binaries themselves are compiled.
fn build_workspace_binaries() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = profile_dir();
            let profile = match dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev".to_string(),
                Some(other) => other.to_string(),
            };
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(workspace_root()).args(["build", "--workspace", "--bins", "--examples", "--profile", &profile]);
            if let Some(target) = dir.parent() {
                cmd.arg("--target-dir").arg(target);
            }
            let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
            match out.status.success() {
                true => Ok(()),
                false => Err(format!("building the workspace binaries failed:\n{}", String::from_utf8_lossy(&out.stderr))),
            }
        })
        .clone()
}

/// The path of the workspace binary `name` (an experiment binary such as `segmentation`, or
/// `cytodl-build`), built now if it is missing or stale.
#[track_caller]
pub fn workspace_binary(name: &str) -> PathBuf {
    if let Err(e) = build_workspace_binaries() {
        panic!("{e}");
    }
    let p = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(p.is_file(), "{} is not a binary of this workspace", p.display());
    p
}

/// The path of the workspace example `name`, built now if it is missing or stale.
#[track_caller]
pub fn workspace_example(name: &str) -> PathBuf {
    if let Err(e) = build_workspace_binaries() {
        panic!("{e}");
    }
    let p = profile_dir().join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(p.is_file(), "{} is not an example of this workspace", p.display());
    p
}

/// The largest `|a[i] - b[i]|` of two sequences of the same length (a different length fails).
/// A NaN or infinity on either side makes it infinite, so that a tolerance check fails instead
/// of passing over the value (`f32::max` drops NaN).
#[track_caller]
pub fn max_abs_diff<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared sequences differ in length");
    a.iter().zip(b).map(|(x, y)| (*x).into() - (*y).into()).fold(0.0, |m, d| if d.is_finite() { m.max(d.abs()) } else { f64::INFINITY })
}

/// The largest `|v|`, infinite when a value is NaN or infinite.
pub fn max_abs<A: Copy + Into<f64>>(values: &[A]) -> f64 {
    values.iter().map(|v| (*v).into()).fold(0.0, |m, v: f64| if v.is_finite() { m.max(v.abs()) } else { f64::INFINITY })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_folders_are_unique_and_removed() {
        let (a, b) = (Scratch::new("kit"), Scratch::new("kit"));
        assert_ne!(a.path(), b.path());
        std::fs::write(a.join("f"), "x").expect("write");
        let kept = a.to_path_buf();
        drop(a);
        assert!(!kept.exists() && b.is_dir());
    }

    #[test]
    fn differences_see_nan_and_lengths() {
        assert_eq!(max_abs_diff(&[1.0f32, 2.0], &[1.5f32, 1.0]), 1.0);
        assert_eq!(max_abs_diff(&[1.0f32, f32::NAN], &[1.0f32, 1.0]), f64::INFINITY);
        assert_eq!(max_abs(&[0.5f64, -3.0]), 3.0);
        assert_eq!(max_abs(&[f32::NAN]), f64::INFINITY);
        assert!(std::panic::catch_unwind(|| max_abs_diff(&[1.0f32], &[1.0f32, 2.0])).is_err());
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }
}

/// A Python with MLflow's server installed: `$CYTODL_MLFLOW_PYTHON` (what `.ci/run` installs
/// MLflow into), else `python3`; or a skip.
#[track_caller]
pub fn python_with_mlflow(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("CYTODL_MLFLOW_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&python).args(["-c", "import mlflow.server"]).output().map(|o| o.status.success()).unwrap_or(false);
    match ok {
        true => Some(python),
        false => skip(test, &format!("{} cannot `import mlflow.server` (set CYTODL_MLFLOW_PYTHON, or pip install mlflow)", python.display())),
    }
}

/// A real MLflow tracking server on loopback for a test: `mlflow server` from the Python named
/// by `$CYTODL_MLFLOW_PYTHON` (what `.ci/run` installs MLflow into; else `python3`), on a free
/// port, with its database and artifacts in the test's scratch folder. It can be killed and
/// started again on the same port and data (what a test of a server going away needs); it is
/// killed, with its workers, when dropped.
#[derive(Debug)]
pub struct MlflowServer {
    python: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl MlflowServer {
    /// How long a start may take (the first one creates the database).
    pub const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(240);

    /// A running server with its data in `dir`, or a skip when MLflow is not installed.
    #[track_caller]
    pub fn start(test: &str, dir: &Path) -> Option<MlflowServer> {
        let mut server = Self::not_started(test, dir)?;
        server.restart();
        Some(server)
    }

    /// A server with its port chosen but not started yet ([`MlflowServer::restart`] starts it):
    /// for a test of a server that is away when a run begins.
    #[track_caller]
    pub fn not_started(test: &str, dir: &Path) -> Option<MlflowServer> {
        let python = python_with_mlflow(test)?;
        std::fs::create_dir_all(dir).expect("the server's folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port");
        oracle_ran("mlflow-server", test, 1);
        Some(MlflowServer { python, dir: dir.to_path_buf(), port, child: None })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Starts the server (again) and waits until it answers.
    #[track_caller]
    pub fn restart(&mut self) {
        use std::os::unix::process::CommandExt as _;
        self.kill();
        let log = std::fs::File::create(self.dir.join("mlflow-server.log")).expect("server log");
        let db = format!("sqlite:///{}", self.dir.join("mlflow.db").display());
        let child = Command::new(&self.python)
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port", &self.port.to_string(), "--workers", "1"])
            .args(["--backend-store-uri", &db, "--artifacts-destination"])
            .arg(self.dir.join("artifacts"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // Its own process group, so that a kill takes its workers along.
            .process_group(0)
            .spawn()
            .expect("mlflow server starts");
        self.child = Some(child);
        let started = std::time::Instant::now();
        while started.elapsed() < Self::START_TIMEOUT {
            if self.answers() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir.join("mlflow-server.log")).unwrap_or_default();
                panic!("the mlflow server exited ({status}):\n{log}");
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!("the mlflow server did not answer within {:?}", Self::START_TIMEOUT);
    }

    /// Whether `/health` answers.
    pub fn answers(&self) -> bool {
        use std::io::{Read as _, Write as _};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
    }

    /// Kills the server and its workers (SIGKILL to its process group), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // kill(2) on the negative pid: the whole group. (Not `/bin/kill -9 -PID`: procps-ng
            // 4.0.2 reads that as `kill -9 -1`, every process of the user.)
            extern "C" {
                fn kill(pid: i32, signal: i32) -> i32;
            }
            const SIGKILL: i32 = 9;
            if let Ok(pgid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) takes plain integers; a group that is gone is ESRCH, harmless.
                unsafe { kill(-pgid, SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.kill();
    }
}
