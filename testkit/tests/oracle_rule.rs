//! The oracle rule itself, run in a child process so that its environment is the test's to set:
//! a missing oracle fails the run under CI and is a counted `SKIP` line anywhere else.

use std::process::{Command, Output};

/// What the tests below run as a child (`--ignored`): asks for two oracles that do not exist.
#[test]
#[ignore = "run as a child process by the tests below"]
fn child_asks_for_missing_oracles() {
    assert!(cytodl_testkit::shared_dir("child").is_none());
    assert!(cytodl_testkit::python_with("child", &["no_such_module_for_cytodl"]).is_none());
}

fn child(ci: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("the test binary");
    let out: Output = Command::new(exe)
        .args(["--exact", "child_asks_for_missing_oracles", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CI", ci)
        .env("CYTODL_SHARED", "/nonexistent/cytodl-shared")
        // Not CI's own record: the child's skips must not count as the suite's.
        .env_remove("CYTODL_TEST_LOG")
        .output()
        .expect("run the child");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_missing_oracle_fails_the_run_under_ci() {
    let (ok, text) = child("true");
    assert!(!ok, "the child passed under CI:\n{text}");
    assert!(text.contains("the oracles folder /nonexistent/cytodl-shared does not exist"), "{text}");
    assert!(text.contains("Under CI every oracle must be present"), "{text}");
    assert!(!text.contains("SKIP #"), "under CI nothing is skipped:\n{text}");
}

#[test]
fn a_missing_oracle_is_a_counted_skip_outside_ci() {
    for unset in ["", "0", "false"] {
        let (ok, text) = child(unset);
        assert!(ok, "CI={unset:?}: the child failed:\n{text}");
        assert!(text.contains("SKIP #1 child: the oracles folder /nonexistent/cytodl-shared does not exist"), "CI={unset:?}:\n{text}");
        assert!(text.contains("SKIP #2 child:") && text.contains("no_such_module_for_cytodl"), "CI={unset:?}:\n{text}");
    }
}
