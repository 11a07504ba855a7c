//! Every name the code generator emits, made from a config's names by one scheme: Rust
//! keywords and leading digits are avoided, and names that would collide are told apart.

/// Rust's keywords (strict and reserved, 2021 edition), which no generated name may be.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop",
    "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// The words of a name: runs of ASCII letters and digits (`seg-mask_2d` -> `seg`, `mask`, `2d`).
fn words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// The experiment's name, from its file's stem (or its config path): lowercase words joined by
/// `_` (`bench-medium` -> `bench_medium`, `im2im/segmentation` -> `im2im_segmentation`), a
/// leading digit prefixed with `e` as in [`module_name`]. It names the generated folder; the
/// package and binary names are made from it by [`package_name`] and [`binary_name`].
pub fn experiment_name(stem: &str) -> String {
    let mut out = words(stem).join("_").to_ascii_lowercase();
    if out.is_empty() {
        out.push_str("experiment");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'e');
    }
    out
}

/// The package of an experiment's crate: `bench_medium` -> `cytodl-exp-bench-medium`.
pub fn package_name(experiment: &str) -> String {
    format!("cytodl-exp-{}", binary_name(experiment))
}

/// The experiment's binary: `bench_medium` -> `bench-medium`.
pub fn binary_name(experiment: &str) -> String {
    experiment.replace('_', "-")
}

/// The experiment's type: `segmentation` -> `Segmentation`, `bench_medium` -> `BenchMedium`;
/// `self` -> `SelfExperiment`, `2d` -> `E2d`.
pub fn type_name(name: &str) -> String {
    let mut out: String = words(name)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'E');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push_str("Experiment");
    }
    out
}

/// A module name: `im2im_segmentation`; a keyword gets a suffix (`self` -> `self_experiment`).
pub fn module_name(name: &str) -> String {
    let mut out = words(name).join("_").to_ascii_lowercase();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'e');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push_str("_experiment");
    }
    out
}

/// One constant name per column, in order: `raw` -> `RAW`, `seg-mask` -> `SEG_MASK`; a second
/// column with the same name gets `_2` (`seg_mask` after `seg-mask`), a leading digit a `C`.
pub fn column_constants(columns: &[String]) -> Vec<(String, String)> {
    let mut used: Vec<String> = Vec::new();
    columns
        .iter()
        .map(|c| {
            let mut base = words(c).join("_").to_ascii_uppercase();
            if base.is_empty() || base.starts_with(|ch: char| ch.is_ascii_digit()) {
                base.insert(0, 'C');
            }
            let mut name = base.clone();
            let mut n = 2;
            while used.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            used.push(name.clone());
            (c.clone(), name)
        })
        .collect()
}

/// A function name for a split's pipeline: `train` -> `train_transforms`.
pub fn split_fn(split: &str) -> String {
    format!("{}_transforms", module_name(split))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_names_are_one_scheme_for_folder_package_and_binary() {
        assert_eq!(experiment_name("bench-medium"), "bench_medium");
        assert_eq!(experiment_name("im2im/Segmentation.v2"), "im2im_segmentation_v2");
        assert_eq!(experiment_name("2d-seg"), "e2d_seg");
        assert_eq!(experiment_name("--"), "experiment");
        assert_eq!(package_name("bench_medium"), "cytodl-exp-bench-medium");
        assert_eq!(binary_name("bench_medium"), "bench-medium");
        let name = experiment_name("2d");
        assert_eq!((type_name(&name), module_name(&name)), ("E2d".to_string(), "e2d".to_string()), "the type and module follow the folder's name");
    }

    #[test]
    fn type_names_avoid_keywords_and_digits() {
        assert_eq!(type_name("segmentation"), "Segmentation");
        assert_eq!(type_name("bench_medium"), "BenchMedium");
        assert_eq!(type_name("im2im-seg"), "Im2imSeg");
        assert_eq!(type_name("2d"), "E2d");
        assert_eq!(type_name("self"), "SelfExperiment");
        assert_eq!(module_name("self"), "self_experiment");
        assert_eq!(module_name("Im2Im-Seg"), "im2im_seg");
    }

    #[test]
    fn colliding_columns_get_distinct_constants() {
        let c = column_constants(&["a-b".into(), "a_b".into(), "2x".into(), "raw".into()]);
        let names: Vec<&str> = c.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["A_B", "A_B_2", "C2X", "RAW"]);
    }
}
