//! An experiment's resolved config as MLflow params: one param per leaf, keyed by its dotted
//! path (`model.optimizer.generator.lr`, the key a Hydra override names), list items by index
//! where they are maps (`data.transforms.train.transforms.3.keys`), lists of scalars as one
//! flow value (`[16, 32, 32]`). MLflow keeps a param's value to 6000 characters and its key to
//! 250: longer values are cut (and say so), longer keys left out (and counted).

use yaml_rust2::{Yaml, YamlLoader};

use crate::store::{MAX_KEY_LENGTH, MAX_PARAM_VALUE_LENGTH};

/// The params of a resolved config, and how many keys were too long for MLflow.
pub fn flatten_config(yaml: &str) -> Result<(Vec<(String, String)>, usize), String> {
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let Some(doc) = docs.first() {
        flatten(doc, String::new(), &mut out);
    }
    let before = out.len();
    out.retain(|(k, _)| k.len() <= MAX_KEY_LENGTH);
    let dropped = before - out.len();
    for (_, v) in &mut out {
        if v.chars().count() > MAX_PARAM_VALUE_LENGTH {
            const MARK: &str = "... (cut: see config/train.yaml)";
            *v = v.chars().take(MAX_PARAM_VALUE_LENGTH - MARK.len()).collect::<String>() + MARK;
        }
    }
    Ok((out, dropped))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn flatten(node: &Yaml, prefix: String, out: &mut Vec<(String, String)>) {
    match node {
        Yaml::Hash(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(v, join(&prefix, &scalar(k)), out);
            }
        }
        Yaml::Array(items) if items.iter().any(|i| matches!(i, Yaml::Hash(_) | Yaml::Array(_))) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, join(&prefix, &i.to_string()), out);
            }
        }
        leaf if !prefix.is_empty() => out.push((prefix, scalar(leaf))),
        _ => {}
    }
}

/// A leaf as it reads in YAML's flow style.
fn scalar(node: &Yaml) -> String {
    match node {
        Yaml::Real(s) | Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => "null".into(),
        Yaml::Array(items) => format!("[{}]", items.iter().map(scalar).collect::<Vec<_>>().join(", ")),
        Yaml::Hash(map) => format!("{{{}}}", map.iter().map(|(k, v)| format!("{}: {}", scalar(k), scalar(v))).collect::<Vec<_>>().join(", ")),
        Yaml::Alias(_) | Yaml::BadValue => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_by_dotted_path_lists_of_maps_by_index() {
        let yaml = "model:\n  lr: 0.001\n  filters: [16, 32]\n  empty: {}\ndata:\n  transforms:\n  - _target_: A\n    keys: [raw, seg]\n  - _target_: B\nname: null\nflag: true\n";
        let (params, dropped) = flatten_config(yaml).expect("yaml");
        let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("model.lr"), Some("0.001"));
        assert_eq!(get("model.filters"), Some("[16, 32]"));
        assert_eq!(get("model.empty"), Some("{}"));
        assert_eq!(get("data.transforms.0._target_"), Some("A"));
        assert_eq!(get("data.transforms.0.keys"), Some("[raw, seg]"));
        assert_eq!(get("data.transforms.1._target_"), Some("B"));
        assert_eq!((get("name"), get("flag")), (Some("null"), Some("true")));
        assert_eq!((params.len(), dropped), (8, 0));
    }

    #[test]
    fn long_values_are_cut_and_long_keys_counted() {
        let yaml = format!("a: {}\n{}: 1\n", "x".repeat(7000), "k".repeat(300));
        let (params, dropped) = flatten_config(&yaml).expect("yaml");
        assert_eq!(dropped, 1);
        assert_eq!(params[0].1.chars().count(), MAX_PARAM_VALUE_LENGTH);
        assert!(params[0].1.ends_with("see config/train.yaml)"));
    }
}
