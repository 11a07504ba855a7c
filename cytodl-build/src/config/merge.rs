//! OmegaConf's `merge_with` as Hydra uses it to stack configs: dicts merge deeply (existing keys
//! keep their position, new keys are appended), lists and scalars replace, `???` never overwrites.

use super::node::{Map, Node, Value};
use crate::interp::grammar::{self, Interp, Key, Piece};

/// OmegaConf refuses to merge a list onto a mapping or a mapping onto a list.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeError {
    /// The key path where the types clash.
    pub key: String,
    pub message: String,
    /// Where the incoming value was written.
    pub span: crate::diag::Span,
}

/// Merges `src` into `dest` in place. A snapshot of the destination is used when a dict lands
/// on an interpolation that points at a dict (OmegaConf expands it first).
pub fn merge_into(dest: &mut Node, src: Node) -> Result<(), MergeError> {
    let snapshot = dest.clone();
    merge_node(dest, src, &snapshot, &mut Vec::new())
}

fn clash(path: &[String], dest: &Node, src: &Node) -> MergeError {
    let what = |n: &Node| if matches!(n.value, Value::Map(_)) { "a mapping" } else { "a list" };
    MergeError { key: path.join("."), message: format!("cannot merge {} onto {} at `{}`", what(src), what(dest), path.join(".")), span: src.span }
}

fn merge_node(dest: &mut Node, src: Node, root: &Node, path: &mut Vec<String>) -> Result<(), MergeError> {
    if matches!((&dest.value, &src.value), (Value::Map(_), Value::List(_)) | (Value::List(_), Value::Map(_))) {
        return Err(clash(path, dest, &src));
    }
    match src.value {
        Value::Missing => {
            // A `???` in src only fills a hole; it never replaces an existing value.
        }
        Value::Map(src_map) => {
            if !matches!(dest.value, Value::Map(_)) {
                let expanded = match &dest.value {
                    Value::Str(s) if s.contains("${") => deref_to_map(s, root, path),
                    Value::Null | Value::Missing => Some(Map::new()),
                    _ => None,
                };
                match expanded {
                    Some(m) => dest.value = Value::Map(m),
                    None => {
                        *dest = Node::new(Value::Map(Map::new()), src.span).replacing(dest);
                    }
                }
            }
            let Value::Map(dest_map) = &mut dest.value else { return Ok(()) };
            for (k, v) in src_map {
                match dest_map.get_mut(&k) {
                    Some(existing) => {
                        path.push(k);
                        let r = merge_node(existing, v, root, path);
                        path.pop();
                        r?;
                    }
                    None => {
                        dest_map.insert(k, v);
                    }
                }
            }
        }
        _ => *dest = src.replacing(dest),
    }
    Ok(())
}

/// If `text` is exactly one node interpolation that names a mapping in `root`, a copy of it.
fn deref_to_map(text: &str, root: &Node, path: &[String]) -> Option<Map> {
    let pieces = grammar::parse_value(text).ok()?;
    let [Piece::Interp(Interp::Node { dots, keys, .. })] = pieces.as_slice() else {
        return Some(Map::new());
    };
    let mut parts: Vec<String> = if *dots == 0 {
        Vec::new()
    } else {
        // The container holding the value is `path[..len-1]`; each extra dot goes one level up.
        let base = path.len().checked_sub(*dots)?;
        path[..base].to_vec()
    };
    for k in keys {
        match k {
            Key::Lit(s) => parts.push(s.clone()),
            Key::Interp(_) => return Some(Map::new()),
        }
    }
    let mut cur = root;
    for p in &parts {
        cur = cur.child(p)?;
    }
    match &cur.value {
        Value::Map(m) => Some(m.clone()),
        _ => Some(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::load_config;
    use crate::diag::FileId;

    fn y(s: &str) -> Node {
        load_config(s, FileId(1)).unwrap()
    }

    fn merged(a: &str, b: &str) -> Node {
        let mut d = y(a);
        merge_into(&mut d, y(b)).unwrap();
        d
    }

    #[test]
    fn list_and_mapping_do_not_merge() {
        let mut d = y("x: {a: 1}");
        let e = merge_into(&mut d, y("x: [1]")).unwrap_err();
        assert_eq!(e.key, "x");
        let mut d = y("z: [1, 2]");
        assert!(merge_into(&mut d, y("z: {a: 1}")).is_err());
        // Scalars and null replace either.
        assert_eq!(merged("x: {a: 1}", "x: 3"), y("x: 3"));
        assert_eq!(merged("x: [1]", "x: null"), y("x: null"));
    }

    #[test]
    fn spec_vector_19() {
        assert_eq!(merged("a: {a1: 1, a2: 2}", "a: {a1: 2}"), y("a: {a1: 2, a2: 2}"));
        assert_eq!(merged("b: {c: 1}", "b: 1"), y("b: 1"));
        assert_eq!(merged("list: [1, 2, 3]", "list: [4, 5, 6]"), y("list: [4, 5, 6]"));
    }

    #[test]
    fn spec_vector_20() {
        assert_eq!(merged("a: {b: 10}", "a: ???"), y("a: {b: 10}"));
        assert_eq!(merged("{}", "a: ???"), y("a: ???"));
        assert_eq!(merged("n: {a: 10}\ni: ${n}", "i: {b: 20}"), y("n: {a: 10}\ni: {a: 10, b: 20}"));
    }

    #[test]
    fn null_and_order() {
        assert_eq!(merged("c: {x: 1}", "c: null"), y("c: null"));
        assert_eq!(merged("l: null", "l: {w: {t: 1}}"), y("l: {w: {t: 1}}"));
        let m = merged("a: 1\nb: 2", "c: 3\na: 4");
        assert_eq!(m.as_map().unwrap().keys().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }
}
