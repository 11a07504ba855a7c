//! One `_target_` node against its component's spec: the target exists and plays the role the
//! position asks for, every parameter is known (or a did-you-mean), has the right type, is not
//! null unless it may be, is not an option cytodl lacks; required parameters are present.
//! Nested components (`Ty::Target` parameters) are checked the same way.

use cytodl_schema::registry;
use cytodl_schema::{ComponentSpec, Effect, Kind, Ty, HYDRA_KEYS};

use super::{fits, lit, show, Checker};
use crate::config::node::{Node, Value};
use crate::diag::did_you_mean;

/// Ignored keys whose value asks for nothing cytodl would not do anyway (no note needed):
/// null, false, and settings that every cyto_dl template carries.
fn benign(key: &str, value: &Node) -> bool {
    const ALWAYS: &[&str] = &[
        "pin_memory",
        "default_root_dir",
        "persistent_workers",
        "max_depth",
        "verbose",
        "strict",
        "image_only",
        "track_meta",
        "log_every_n_steps",
        "enable_progress_bar",
        "enable_model_summary",
    ];
    matches!(value.value, Value::Null | Value::Bool(false)) || ALWAYS.contains(&key)
}

impl Checker<'_> {
    /// A `_target_` node of `kind`, checked against its spec; the spec when it is valid.
    pub(super) fn component(&mut self, node: &Node, path: &str, kind: Kind) -> Option<&'static ComponentSpec> {
        let Some(map) = node.as_map() else {
            self.err(format!("expected {} (a mapping with `_target_`), found {}", kind.with_article(), show(node)), node, path, None);
            return None;
        };
        let Some(target_node) = map.get("_target_") else {
            let names = registry::names_of(kind);
            self.err(
                format!("this {} has no `_target_`", kind.describe()),
                node,
                path,
                Some(format!("add `_target_: {}`", names.first().copied().unwrap_or("..."))),
            );
            return None;
        };
        let tpath = format!("{path}._target_");
        let Some(target) = target_node.as_str() else {
            self.err(format!("`_target_` must be a string, found {}", show(target_node)), target_node, &tpath, None);
            return None;
        };
        let component = match registry::lookup(target) {
            Some(c) if c.kind == kind => c,
            Some(c) => {
                self.err(
                    format!("`{target}` is {}, but {} is expected here", c.kind.with_article(), kind.with_article()),
                    target_node,
                    &tpath,
                    did_you_mean(target, registry::names_of(kind)),
                );
                return None;
            }
            None => {
                if let Some(what) = registry::not_implemented(target) {
                    let supported: Vec<&str> = registry::all().into_iter().filter(|c| c.kind == kind).map(|c| c.names[0]).collect();
                    self.err(
                        format!("`{target}` ({what}) is not implemented in cytodl yet"),
                        target_node,
                        &tpath,
                        Some(format!("supported {}s: {}", kind.describe(), supported.join(", "))),
                    );
                } else {
                    self.err(format!("unknown {} `{target}`", kind.describe()), target_node, &tpath, did_you_mean(target, registry::names_of(kind)));
                }
                return None;
            }
        };
        self.parameters(component, node, map, path).then_some(component)
    }

    /// The parameters of `node` against `component`'s spec; whether they are all valid.
    fn parameters(&mut self, component: &'static ComponentSpec, node: &Node, map: &crate::config::node::Map, path: &str) -> bool {
        let name = component.names[0];
        let mut ok = true;
        for (key, value) in map {
            if HYDRA_KEYS.contains(&key.as_str()) {
                continue;
            }
            let kpath = format!("{path}.{key}");
            let Some(param) = component.param(key) else {
                self.err(
                    format!("`{name}` has no parameter `{key}`"),
                    value,
                    &kpath,
                    did_you_mean(key, component.params.iter().map(|p| p.name))
                        .or_else(|| Some(format!("its parameters: {}", component.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")))),
                );
                ok = false;
                continue;
            };
            let default = param.default_text();
            if let Effect::Ignored(why) = param.effect {
                if !benign(key, value) && Some(lit(value).to_yaml()) != default {
                    self.warn(format!("`{key}` has no effect in cytodl: {why}"), value, &kpath);
                }
            }
            if matches!(value.value, Value::Missing) {
                ok = false;
                continue;
            }
            if matches!(value.value, Value::Null) {
                if !(param.nullable || default.as_deref() == Some("null")) {
                    self.err(
                        format!("`{key}` of `{name}` cannot be null; it must be {}", param.ty.describe()),
                        value,
                        &kpath,
                        default.map(|d| format!("remove it to use the default {d}")),
                    );
                    ok = false;
                }
                continue;
            }
            if !fits(param.ty, value) {
                self.err(format!("`{key}` of `{name}` must be {}, found {}", param.ty.describe(), show(value)), value, &kpath, None);
                ok = false;
                continue;
            }
            if param.effect == Effect::Unsupported
                && !matches!(value.value, Value::Null | Value::Bool(false))
                && !matches!(&value.value, Value::Str(t) if t.is_empty())
            {
                self.err(format!("`{key}` of `{name}` is not supported by cytodl"), value, &kpath, Some("remove it (cytodl has no equivalent yet)".into()));
                ok = false;
                continue;
            }
            if let Ty::Enum(options) = param.ty {
                let s = value.as_str().unwrap_or_default();
                if !options.contains(&s) {
                    self.err(
                        format!("`{key}` of `{name}` must be {}, found \"{s}\"", param.ty.describe()),
                        value,
                        &kpath,
                        did_you_mean(s, options.iter().copied()),
                    );
                    ok = false;
                    continue;
                }
            }
            if let Ty::Target(k) = param.ty {
                if self.component(value, &kpath, k).is_none() {
                    ok = false;
                }
            }
        }
        for param in component.params {
            if map.contains_key(param.name) || !param.required() {
                continue;
            }
            self.err(
                format!("`{name}` needs `{}` ({})", param.name, param.doc()),
                node,
                path,
                Some(format!("add `{}: <{}>`", param.name, param.ty.describe())),
            );
            ok = false;
        }
        ok
    }
}
