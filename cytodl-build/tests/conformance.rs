//! The config front end against real Hydra 1.3.2 + OmegaConf 2.3.0: every case of
//! `../shared/conformance/cyto_dl/` and of our own corpus `tests/fixtures/hydra/` is run through
//! the `cytodl-build resolve` binary and compared as data with what Hydra produced.

mod common;

use std::path::Path;

use common::cytodl_build;
use cytodl_build::config::emit::to_yaml;
use cytodl_build::config::node::Node;
use cytodl_build::config::yaml::load_any;
use cytodl_build::diag::FileId;

fn parse(text: &str, what: &str) -> Node {
    match load_any(text, FileId(0)) {
        Ok(Some(n)) => n,
        Ok(None) => Node::empty_map(Default::default()),
        Err(e) => panic!("{what}: not YAML: {e}\n{text}"),
    }
}

/// Runs every line of a cases file from `cwd`; returns how many ran and the failures.
fn run_cases(cases: &Path, expected_dir: &Path, cwd: &Path, config_dir_for: impl Fn(&[&str]) -> (std::path::PathBuf, String, String)) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(cases).expect("cases file");
    let mut failures = Vec::new();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (dir, name, overrides) = config_dir_for(&cols);
        count += 1;
        let mut args = vec!["resolve".to_string(), "--config-dir".into(), dir.display().to_string(), "--config-name".into()];
        args.push(cols[cols.len() - 2].to_string());
        args.extend(overrides.split(' ').filter(|s| !s.is_empty()).map(str::to_string));
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let run = cytodl_build(cwd, &argv, &[("PROJECT_ROOT", "/proj")]);
        let expected = std::fs::read_to_string(expected_dir.join(format!("{name}.yaml"))).expect("expected file");
        if let Some(error) = expected.strip_prefix("error: ") {
            // `error: <Class>: <message>` as the oracle recorded it: we fail too, with the same
            // class (`= hydra: <Class>` in our diagnostic).
            let class = error.split(':').next().unwrap_or_default().trim();
            if run.ok {
                failures.push(format!("{name}: Hydra fails ({}) but we resolved it", expected.trim()));
            } else if !run.stderr.contains(&format!("= hydra: {class}\n")) {
                failures.push(format!("{name}: Hydra raises {class}; we failed with another error:\n{}", run.stderr));
            }
            continue;
        }
        if !run.ok {
            failures.push(format!("{name}: we failed where Hydra resolves:\n{}", run.stderr));
            continue;
        }
        let want = parse(&expected, "expected");
        let got = parse(&run.stdout, "our output");
        // As data, and in order: mappings compare equal whatever their key order, but Hydra's
        // order (defaults, `_self_`, merges) is part of what it produces.
        if want != got || to_yaml(&want) != to_yaml(&got) {
            failures.push(format!("{name}: resolved config differs\n--- hydra\n{expected}\n--- ours\n{}", run.stdout));
        }
    }
    (count, failures)
}

#[test]
fn cyto_dl_conformance_cases() {
    let Some(shared) = cytodl_testkit::shared_dir("cyto_dl_conformance_cases") else { return };
    let base = shared.join("conformance/cyto_dl");
    let configs = shared.join("reference/cyto_dl-configs");
    let (count, failures) = run_cases(&base.join("cases.tsv"), &base.join("expected"), Path::new("/"), |cols| {
        (configs.clone(), cols[0].to_string(), cols.get(2).copied().unwrap_or("").to_string())
    });
    assert!(count >= 30, "expected the 30 cyto_dl cases, found {count}");
    assert!(failures.is_empty(), "{} of {count} cases differ from Hydra:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn own_hydra_corpus() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hydra");
    assert!(base.join("cases.tsv").is_file(), "the Hydra corpus is part of the repository: {} is missing", base.display());
    // NAME<TAB>TREE<TAB>CONFIG_NAME<TAB>OVERRIDES; relative `file://` search paths are relative to the corpus.
    let (count, failures) = run_cases(&base.join("cases.tsv"), &base.join("expected"), &base, |cols| {
        (base.join(cols[1]), cols[0].to_string(), cols.get(3).copied().unwrap_or("").to_string())
    });
    assert!(count >= 200, "the corpus has {count} cases");
    assert!(failures.is_empty(), "{} of {count} cases differ from Hydra:\n{}", failures.len(), failures.join("\n"));
}
