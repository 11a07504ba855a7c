//! Hydra 1.3 composition: the defaults tree (`_self_`, groups, packages, `override`, `optional`,
//! `null`, `???`, option lists, interpolated options), the merge of the final list, and the
//! command-line overrides applied to the result in struct mode.
//!
//! The algorithm mirrors Hydra's `defaults_list.py` step for step, because the order in which
//! overrides are recorded (command line first, then each defaults list from last entry to first)
//! decides which choice wins.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::defaults::{DefaultEntry, EntryKind, GroupValue};
use super::merge::merge_into;
use super::node::{Map, Node, Value};
use super::override_parser::{self, Element, Override, OverrideKind, OverrideValue};
use super::repo::{has_config_content, normalize, Repo, HYDRA_CONFIG};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, ErrorClass, SourceMap, Span};

/// What to compose: a config directory, a primary config name and command-line overrides.
#[derive(Debug, Clone)]
pub struct ComposeRequest {
    pub config_dir: PathBuf,
    pub config_name: String,
    pub overrides: Vec<String>,
    /// How many leading overrides the tool added itself (`experiment=x` for an experiment file);
    /// they are named `<experiment file>` and the user's are numbered from 1 after them.
    pub implicit_overrides: usize,
    /// The job name (`hydra.job.name`); Hydra uses the script's stem, we use the config's.
    pub job_name: Option<String>,
}

/// The composed (not yet resolved) config, with the `hydra` node, and where everything came from.
#[derive(Debug, Clone)]
pub struct Composed {
    pub config: Node,
    /// `hydra.runtime.choices`: group override key -> option (None for a null placeholder).
    pub choices: IndexMap<String, Option<String>>,
    /// The files merged, in order, with the package each landed in.
    pub merged: Vec<(String, String)>,
    pub sources: SourceMap,
    pub warnings: Diagnostics,
}

/// Composes a config as Hydra's `compose()` does (the result still holds `hydra`).
pub fn compose(req: &ComposeRequest) -> Result<Composed, (Diagnostics, SourceMap)> {
    let mut sources = SourceMap::default();
    let mut parsed = Vec::new();
    let mut errors = Diagnostics::new();
    for (i, line) in req.overrides.iter().enumerate() {
        let name = if i < req.implicit_overrides { "<experiment file>".to_string() } else { format!("<override {}>", i - req.implicit_overrides + 1) };
        let file = sources.add_override(name, line);
        let span = Span::new(file, 1, 1);
        match override_parser::parse_override(line) {
            Ok(o) => parsed.push((o, span)),
            Err(e) => errors.push(
                Diagnostic::error(format!("Error parsing override '{line}': {}", e.message), span.shifted(e.offset))
                    .with_class(ErrorClass::OverrideParseException)
                    .with_help("overrides look like `key=value`, `+key=value`, `++key=value`, `~key` or `group=option`"),
            ),
        }
    }
    if errors.has_errors() {
        return Err((errors, sources));
    }
    let mut repo = Repo::new(&req.config_dir, sources);
    if let Err(d) = apply_search_path(&mut repo, &req.config_name, &parsed) {
        return Err((d.into(), repo.sources));
    }
    let mut c = Composer { repo, warnings: Diagnostics::new() };
    match c.run(req, parsed) {
        Ok((config, choices, merged)) => Ok(Composed { config, choices, merged, sources: c.repo.sources, warnings: c.warnings }),
        Err(d) => Err((d, c.repo.sources)),
    }
}

/// Hydra's `hydra.searchpath`: extra config folders from the command line (first) or from the
/// primary config's own `hydra.searchpath`, searched after the config directory.
fn apply_search_path(repo: &mut Repo, config_name: &str, parsed: &[(Override, Span)]) -> Result<(), Diagnostic> {
    let from_cli = parsed.iter().find(|(o, _)| o.key_element() == "hydra.searchpath" && o.kind != OverrideKind::Delete);
    let (entries, span): (Vec<String>, Span) = match from_cli {
        Some((o, span)) => match &o.value {
            Some(OverrideValue::Element(Element::List(items))) => (
                items
                    .iter()
                    .map(|i| match i {
                        Element::Str { value, .. } => Ok(value.clone()),
                        other => Err(other.to_hydra_string()),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|v| Diagnostic::error(format!("hydra.searchpath must be a list of strings. Got: {v}"), *span))?,
                *span,
            ),
            _ => return Err(Diagnostic::error("hydra.searchpath must be a list of strings", *span)),
        },
        None => {
            let Some(primary) = repo.load(config_name)? else { return Ok(()) };
            let Some(sp) = primary.config.get_path("hydra.searchpath") else { return Ok(()) };
            match &sp.value {
                Value::Null => return Ok(()),
                Value::List(items) => {
                    let mut out = Vec::new();
                    for i in items {
                        match &i.value {
                            Value::Str(s) => out.push(s.clone()),
                            _ => return Err(Diagnostic::error("hydra.searchpath must be a list of strings", i.span)),
                        }
                    }
                    (out, sp.span)
                }
                _ => return Err(Diagnostic::error("hydra.searchpath must be a list of strings", sp.span)),
            }
        }
    };
    for entry in entries {
        if let Some(pkg) = entry.strip_prefix("pkg://") {
            return Err(Diagnostic::error(format!("search path entry `{entry}`: Python packages (`pkg://`) cannot be searched"), span)
                .with_help(format!("point at the folder instead: `file://path/to/{}`", pkg.replace('.', "/"))));
        }
        let path = entry.strip_prefix("file://").unwrap_or(&entry);
        repo.add_search_path(PathBuf::from(path));
    }
    Ok(())
}

struct Composer {
    repo: Repo,
    warnings: Diagnostics,
}

/// A node of the defaults tree; `children: None` is a leaf.
#[derive(Debug, Clone)]
struct Tree {
    node: DefaultEntry,
    children: Option<Vec<Child>>,
}

#[derive(Debug, Clone)]
enum Child {
    Leaf(DefaultEntry),
    Tree(Tree),
}

/// One element of the final defaults list: a file and the package its content lands in.
#[derive(Debug, Clone)]
struct ResultDefault {
    config_path: String,
    package: String,
    override_key: Option<String>,
    is_self: bool,
    span: Span,
}

#[derive(Debug, Clone)]
struct ChoiceOverride {
    value: GroupValue,
    used: bool,
    external: bool,
    containing: Option<String>,
    span: Span,
}

#[derive(Debug, Clone)]
struct Deletion {
    name: Option<String>,
    used: bool,
    input: String,
    span: Span,
}

/// Hydra's `Overrides`: group choices from the command line and from `override` entries.
#[derive(Debug, Default)]
struct Overrides {
    choices: IndexMap<String, ChoiceOverride>,
    append: Vec<DefaultEntry>,
    config: Vec<(Override, Span)>,
    known: IndexMap<String, Option<String>>,
    known_spans: HashMap<String, Span>,
    known_per_group: HashMap<String, BTreeSet<String>>,
    deletions: IndexMap<String, Deletion>,
}

fn element_to_choice(e: &Element) -> Option<GroupValue> {
    match e {
        Element::Str { value, .. } => Some(GroupValue::Name(Some(value.clone()))),
        Element::List(items) => {
            let mut names = Vec::new();
            for i in items {
                match i {
                    Element::Str { value, .. } => names.push(value.clone()),
                    other => names.push(other.to_hydra_string()),
                }
            }
            Some(GroupValue::Options(names))
        }
        _ => None,
    }
}

fn element_type_name(e: &Element) -> &'static str {
    match e {
        Element::Null => "NoneType",
        Element::Bool(_) => "bool",
        Element::Int(_) => "int",
        Element::Float(_) => "float",
        Element::Str { .. } => "str",
        Element::List(_) => "list",
        Element::Dict(_) => "dict",
    }
}

impl Overrides {
    fn new(repo: &Repo, parsed: Vec<(Override, Span)>) -> Result<Self, Diagnostics> {
        let mut o = Overrides::default();
        let mut errors = Diagnostics::new();
        for (ov, span) in parsed {
            if let Some(OverrideValue::Sweep { text }) = &ov.value {
                let is_simple = !["choice(", "range(", "interval(", "glob(", "shuffle(", "tag(", "sort("].iter().any(|f| text.trim_start().starts_with(f));
                if !is_simple {
                    errors.push(
                        Diagnostic::error(format!("Sweep parameters '{}' requires --multirun", ov.input), span)
                            .with_help("cytodl runs one configuration at a time; choose a single value"),
                    );
                    continue;
                }
                errors.push(
                    Diagnostic::error(
                        format!(
                            "Ambiguous value for argument '{}'\n1. To use it as a list, use key=[value1,value2]\n2. To use it as string, quote the value: key='value1,value2'\n3. To sweep over it, add --multirun to your command line",
                            ov.input
                        ),
                        span,
                    )
                    .with_help(format!("sweeps are not supported; write `{}=[{}]` for a list", ov.key_element(), text)),
                );
                continue;
            }
            let is_group = repo.group_exists(&ov.key_or_group);
            let element = match &ov.value {
                Some(OverrideValue::Element(e)) => Some(e.clone()),
                _ => None,
            };
            let is_dict = matches!(element, Some(Element::Dict(_)));
            if is_dict || !is_group {
                o.config.push((ov, span));
                continue;
            }
            match ov.kind {
                OverrideKind::ForceAdd => {
                    errors.push(Diagnostic::error(format!("force-add of config groups is not supported: '{}'", ov.input), span).with_help(format!(
                        "use `+{}` to add a group, or `{}` to change its option",
                        &ov.input[2..],
                        &ov.input[2..]
                    )))
                }
                OverrideKind::Delete => {
                    let name = match &element {
                        None => None,
                        Some(Element::Str { value, .. }) => Some(value.clone()),
                        Some(other) => {
                            errors.push(Diagnostic::error(format!("Config group override deletion value must be a string : {}", ov.input), span));
                            Some(other.to_hydra_string())
                        }
                    };
                    o.deletions.insert(ov.key_element(), Deletion { name, used: false, input: ov.input.clone(), span });
                }
                _ => {
                    let Some(choice) = element.as_ref().and_then(element_to_choice) else {
                        let t = element.as_ref().map(element_type_name).unwrap_or("NoneType");
                        errors.push(
                            Diagnostic::error(format!("Config group override must be a string or a list. Got {t}"), span)
                                .with_class(ErrorClass::ValueError)
                                .with_help(format!(
                                    "`{}` is a config group: choose one of its options, e.g. `{}=<OPTION>` (options: {})",
                                    ov.key_or_group,
                                    ov.key_or_group,
                                    repo.group_options(&ov.key_or_group).join(", ")
                                )),
                        );
                        continue;
                    };
                    if ov.kind == OverrideKind::Add {
                        let mut d = DefaultEntry::group(&ov.key_or_group, choice, ov.package.clone(), span);
                        d.external_append = true;
                        o.append.push(d);
                    } else {
                        o.choices.insert(ov.key_element(), ChoiceOverride { value: choice, used: false, external: true, containing: None, span });
                    }
                }
            }
        }
        if errors.has_errors() {
            Err(errors)
        } else {
            Ok(o)
        }
    }

    fn add_override(&mut self, parent_path: &str, d: &DefaultEntry) {
        let key = d.override_key();
        if self.choices.contains_key(&key) {
            return;
        }
        let value = match &d.kind {
            EntryKind::Group { value, .. } => value.clone(),
            EntryKind::Config { .. } => return,
        };
        self.choices.insert(key, ChoiceOverride { value, used: false, external: false, containing: Some(parent_path.to_string()), span: d.span });
    }

    fn is_overridden(&self, d: &DefaultEntry) -> bool {
        d.is_group() && self.choices.contains_key(&d.override_key())
    }

    fn override_default_option(&mut self, d: &mut DefaultEntry) {
        let key = d.override_key();
        if let Some(ch) = self.choices.get_mut(&key) {
            if let EntryKind::Group { value, .. } = &mut d.kind {
                *value = ch.value.clone();
                ch.used = true;
                // The choice now comes from the override: point diagnostics there.
                d.span = ch.span;
            }
        }
    }

    fn set_known_choice(&mut self, d: &DefaultEntry) -> Result<(), Diagnostic> {
        if !d.is_group() {
            return Ok(());
        }
        let key = d.override_key();
        let name = d.name();
        match self.known.get(&key) {
            None => {
                self.known.insert(key.clone(), name);
                self.known_spans.insert(key.clone(), d.span);
            }
            Some(prev) if *prev != name => {
                let prev = prev.clone().unwrap_or_else(|| "None".into());
                return Err(Diagnostic::error(
                    format!("Multiple values for {key}. To override a value use 'override {key}: {prev}'"),
                    d.span,
                )
                .with_note(self.known_spans.get(&key).copied().unwrap_or(Span::UNKNOWN), format!("`{key}` was chosen as `{prev}` here"))
                .with_help(format!(
                    "`{key}` is already chosen elsewhere in the defaults lists; to replace that choice write `override {key}: ...` (or `{key}=...` on the command line instead of `+{key}=...`)"
                )));
            }
            Some(_) => {}
        }
        self.known_per_group.entry(d.group_path()).or_default().insert(key);
        Ok(())
    }

    fn is_deleted(&self, d: &DefaultEntry) -> bool {
        if !d.is_group() {
            return false;
        }
        match self.deletions.get(&d.override_key()) {
            None => false,
            Some(del) => match &del.name {
                None => true,
                Some(n) => Some(n.clone()) == d.name(),
            },
        }
    }

    fn delete(&mut self, d: &mut DefaultEntry) {
        d.deleted = true;
        if let Some(del) = self.deletions.get_mut(&d.override_key()) {
            del.used = true;
        }
    }

    fn ensure_used(&self, repo: &Repo) -> Diagnostics {
        let mut errors = Diagnostics::new();
        for (key, ch) in &self.choices {
            if ch.used {
                continue;
            }
            let group = key.split('@').next().unwrap_or(key);
            let known: Vec<&String> = self.known_per_group.get(group).map(|s| s.iter().collect()).unwrap_or_default();
            let mut msg = match known.as_slice() {
                [] => format!("Could not override '{key}'. No match in the defaults list."),
                [one] => format!("Could not override '{key}'.\nDid you mean to override {one}?"),
                many => {
                    format!("Could not override '{key}'.\nDid you mean to override one of {}?", many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
                }
            };
            if let Some(c) = &ch.containing {
                msg = format!("In '{c}': {msg}");
            }
            let value = match &ch.value {
                GroupValue::Name(n) => n.clone().unwrap_or_else(|| "null".into()),
                GroupValue::Options(o) => format!("[{}]", o.join(",")),
            };
            let mut d = Diagnostic::error(msg.clone(), ch.span);
            if ch.external {
                d.message = format!("{msg}\nTo append to your default list use +{key}={value}");
                d = d.with_help(format!("`{group}` is not in the defaults list; add it with `+{key}={value}`"));
            } else {
                let groups: Vec<String> = self.known.keys().cloned().collect();
                if key.contains('@') && ch.containing.is_some() {
                    d = d.with_help(format!(
                        "an `override` only matches an entry of the same package; a config that overrides top-level groups needs `# @package _global_` and an absolute group (`override /{}: {value}`)",
                        group.rsplit('/').next().unwrap_or(group)
                    ));
                } else if let Some(h) = did_you_mean(key, groups.iter().map(|s| s.as_str())) {
                    d = d.with_help(h);
                }
            }
            let _ = repo;
            errors.push(d);
        }
        for (key, del) in &self.deletions {
            if !del.used {
                let desc = match &del.name {
                    Some(n) => format!("{key}={n}"),
                    None => key.clone(),
                };
                errors.push(
                    Diagnostic::error(format!("Could not delete '{desc}'. No match in the defaults list"), del.span)
                        .with_help(format!("`{}`: the defaults list has no entry `{desc}` to delete", del.input)),
                );
            }
        }
        errors
    }
}

type RunResult = (Node, IndexMap<String, Option<String>>, Vec<(String, String)>);

impl Composer {
    fn run(&mut self, req: &ComposeRequest, parsed: Vec<(Override, Span)>) -> Result<RunResult, Diagnostics> {
        let mut overrides = Overrides::new(&self.repo, parsed)?;
        let primary_name = normalize(&req.config_name).to_string();
        let mut primary = DefaultEntry::config(&primary_name, None, Span::UNKNOWN);
        primary.primary = true;
        let hydra = DefaultEntry::config(HYDRA_CONFIG, None, Span::UNKNOWN);

        // Hydra's virtual root is [hydra/config, primary], expanded last to first.
        let mut expanded = Vec::new();
        for (mut d, is_primary) in [(primary, true), (hydra, false)] {
            d.update_parent("", "");
            let t = self.tree(d, is_primary, false, None, &mut overrides).map_err(Diagnostics::from)?;
            expanded.push(match t.children {
                None => Child::Leaf(t.node),
                Some(_) => Child::Tree(t),
            });
        }
        expanded.reverse();
        let root = Tree { node: DefaultEntry::config("", None, Span::UNKNOWN), children: Some(expanded) };
        let mut list = Vec::new();
        dfs(&root, None, &mut list);
        let mut seen = BTreeSet::new();
        for r in &list {
            if r.is_self {
                continue;
            }
            if let Some(k) = &r.override_key {
                if !seen.insert(k.clone()) {
                    return Err(Diagnostic::error(format!("{k} appears more than once in the final defaults list"), r.span)
                        .with_help(format!("keep one `{k}` entry, or give the other a package: `{k}@other_name`"))
                        .into());
                }
            }
        }
        let unused = overrides.ensure_used(&self.repo);
        if unused.has_errors() {
            return Err(unused);
        }

        // Merge the final list in order.
        let mut cfg = Node::empty_map(Span::UNKNOWN);
        let mut merged = Vec::new();
        for r in &list {
            let Some(loaded) = self.repo.load(&r.config_path).map_err(Diagnostics::from)? else { continue };
            let content = embed(loaded.config, &r.package);
            if let Err(e) = merge_into(&mut cfg, content) {
                return Err(Diagnostic::error(format!("In '{}': ConfigTypeError raised while composing config:\n{}", r.config_path, e.message), e.span)
                    .with_key(e.key)
                    .with_help("a list cannot replace a mapping (or the reverse) when configs are merged; use `null` first, or the same type")
                    .into());
            }
            merged.push((r.config_path.clone(), r.package.clone()));
        }

        let mut errors = Diagnostics::new();
        for (ov, span) in &overrides.config {
            if let Err(d) = apply_config_override(&mut cfg, ov, *span, &self.repo) {
                errors.push(d);
            }
        }
        if errors.has_errors() {
            return Err(errors);
        }
        fill_hydra_runtime(&mut cfg, req, &overrides, &self.repo);
        Ok((cfg, overrides.known.clone(), merged))
    }

    fn not_found(&self, node: &DefaultEntry, parent: Option<&str>) -> Diagnostic {
        let path = node.config_path();
        if node.primary {
            return Diagnostic::error(format!("Cannot find primary config '{path}'. Check that it's in your config search path."), Span::UNKNOWN)
                .with_class(ErrorClass::MissingConfigException)
                .with_help(format!("no file {}/{}.yaml", self.repo.root().display(), normalize(&path)));
        }
        let mut msg;
        let mut help = None;
        if node.is_group() {
            let group = node.group_path();
            let options = self.repo.group_options(&group);
            msg = format!("Could not find '{path}'\n");
            if !options.is_empty() {
                msg.push_str(&format!("\nAvailable options in '{group}':\n"));
                msg.push_str(&options.iter().map(|o| format!("\t{o}")).collect::<Vec<_>>().join("\n"));
            }
            let name = node.name().unwrap_or_default();
            let deep = self.repo.group_options_deep(&group);
            help = did_you_mean(normalize(&name), deep.iter().map(|s| s.as_str()));
            if help.is_none() && !self.repo.group_exists(&group) {
                let groups = self.repo.all_groups();
                help = did_you_mean(&group, groups.iter().map(|s| s.as_str())).map(|h| format!("there is no config group `{group}`; {h}"));
            }
        } else {
            msg = format!("Could not load '{path}'.");
        }
        if let Some(p) = parent {
            msg = format!("In '{p}': {msg}");
        }
        let msg = msg.trim_end().to_string();
        let d = Diagnostic::error(msg, node.span).with_class(ErrorClass::MissingConfigException);
        match help {
            Some(h) => d.with_help(h),
            None => d,
        }
    }

    /// Hydra's `_create_defaults_tree_impl`.
    fn tree(&mut self, mut parent: DefaultEntry, is_root: bool, interpolated: bool, parent_path: Option<&str>, ov: &mut Overrides) -> Result<Tree, Diagnostic> {
        if is_root {
            parent.update_parent("", "");
            if !self.repo.config_exists(&parent.config_path()) {
                return Err(self.not_found(&parent, parent_path));
            }
        }
        if parent.name().is_some() && !parent.is_missing() {
            if let Some(l) = self.repo.load(&parent.config_path())? {
                if parent.package_header.is_none() {
                    parent.set_package_header(l.header_package.clone());
                }
            }
        }
        if ov.is_deleted(&parent) {
            ov.delete(&mut parent);
            return Ok(Tree { node: parent, children: None });
        }
        ov.set_known_choice(&parent)?;
        if parent.name().is_none() {
            return Ok(Tree { node: parent, children: None });
        }
        if parent.is_missing() {
            let key = parent.override_key();
            let options = self.repo.group_options(&parent.group_path());
            let mut msg = format!("You must specify '{key}', e.g, {key}=<OPTION>\nAvailable options:\n");
            msg.push_str(&options.iter().map(|o| format!("\t{o}")).collect::<Vec<_>>().join("\n"));
            return Err(Diagnostic::error(msg.trim_end().to_string(), parent.span)
                .with_help(format!("choose an option on the command line, e.g. `{key}={}`", options.first().map(|s| s.as_str()).unwrap_or("<OPTION>"))));
        }
        let path = parent.config_path();
        let Some(loaded) = self.repo.load(&path)? else {
            if parent.optional {
                parent.deleted = true;
                return Ok(Tree { node: parent, children: None });
            }
            return Err(self.not_found(&parent, parent_path));
        };
        let mut defaults = loaded.defaults.clone();
        let mut self_added = false;
        if !defaults.is_empty() || (is_root && !ov.append.is_empty()) {
            self_added = self.validate_self(&parent, &mut defaults, has_config_content(&loaded.config), loaded.file)?;
        }
        if is_root {
            defaults.extend(ov.append.iter().cloned());
        }
        update_overrides(&mut defaults, &parent, interpolated, ov)?;

        let parent_group = parent.group_path();
        let parent_pkg = parent.final_package(true);
        let mut children: Vec<Child> = Vec::new();
        for d in defaults.iter_mut().rev() {
            if d.is_self() {
                children.push(Child::Leaf(d.clone()));
                continue;
            }
            if d.is_override {
                continue;
            }
            d.update_parent(&parent_group, &parent_pkg);
            if ov.is_overridden(d) {
                ov.override_default_option(d);
            }
            if let (EntryKind::Group { group, .. }, Some(options)) = (&d.kind, d.options()) {
                for item in options.iter().rev() {
                    if item.contains("${") {
                        return Err(Diagnostic::error(format!("In '{path}': Defaults List interpolation is not supported in options list items"), d.span));
                    }
                    let mut node = DefaultEntry::config(&format!("{group}/{item}"), d.package.clone(), d.span);
                    node.optional = d.optional;
                    node.update_parent(&parent_group, &parent_pkg);
                    children.push(self.child(node, interpolated, &path, ov)?);
                }
            } else if d.is_interpolation() {
                children.push(Child::Leaf(d.clone()));
            } else {
                children.push(self.child(d.clone(), interpolated, &path, ov)?);
            }
        }

        // Interpolated options (`${db}_${engine}`) are resolved once the sibling choices are known.
        let known = interpolation_map(ov, &defaults, self_added);
        for child in children.iter_mut() {
            let Child::Leaf(d) = child else { continue };
            if !d.is_interpolation() {
                continue;
            }
            let mut d = d.clone();
            resolve_entry_interpolation(&mut d, &known)?;
            d.update_parent(&parent_group, &parent_pkg);
            let sub = self.tree(d, false, true, Some(&path), ov)?;
            *child = match sub.children {
                Some(_) => Child::Tree(sub),
                None => Child::Leaf(sub.node),
            };
        }
        children.reverse();
        let children = if children.is_empty() { None } else { Some(children) };
        Ok(Tree { node: parent, children })
    }

    fn child(&mut self, node: DefaultEntry, interpolated: bool, parent_path: &str, ov: &mut Overrides) -> Result<Child, Diagnostic> {
        let sub = self.tree(node, false, interpolated, Some(parent_path), ov)?;
        Ok(match sub.children {
            None => Child::Leaf(sub.node),
            Some(_) => Child::Tree(sub),
        })
    }

    /// Hydra's `_validate_self`: one `_self_` at most; appended last when missing.
    fn validate_self(
        &mut self,
        parent: &DefaultEntry,
        defaults: &mut Vec<DefaultEntry>,
        has_content: bool,
        file: crate::diag::FileId,
    ) -> Result<bool, Diagnostic> {
        let mut has_self = false;
        let mut has_non_override = false;
        let mut first_self = Span::UNKNOWN;
        for d in defaults.iter() {
            if !d.is_override {
                has_non_override = true;
            }
            if d.is_self() {
                if has_self {
                    return Err(Diagnostic::error(format!("Duplicate _self_ defined in {}", parent.config_path()), d.span)
                        .with_note(first_self, "first `_self_` here")
                        .with_help("keep a single `_self_` entry: it marks where this file's own content is merged"));
                }
                has_self = true;
                first_self = d.span;
            }
        }
        if (!has_self && has_non_override) || defaults.is_empty() {
            if parent.primary && has_content && has_non_override {
                self.warnings.push(
                    Diagnostic::warning(format!("In '{}': Defaults list is missing `_self_`.", parent.config_path()), Span::new(file, 1, 1))
                        .with_help("add `- _self_` to the defaults list; without it the file's content is merged last"),
                );
            }
            defaults.push(DefaultEntry::config("_self_", None, Span::UNKNOWN));
        }
        Ok(!has_self)
    }
}

/// Hydra's `_update_overrides`: `override` entries must come last, and each is recorded.
fn update_overrides(defaults: &mut [DefaultEntry], parent: &DefaultEntry, interpolated: bool, ov: &mut Overrides) -> Result<(), Diagnostic> {
    let mut last_override: Option<DefaultEntry> = None;
    let group = parent.group_path();
    let pkg = parent.final_package(true);
    let parent_path = parent.config_path();
    for d in defaults.iter_mut() {
        if d.is_self() {
            continue;
        }
        d.update_parent(&group, &pkg);
        if let Some(last) = &last_override {
            if !(d.is_override || d.external_append) {
                return Err(Diagnostic::error(
                    format!(
                        "In {parent_path}: Override '{} : {}' is defined before '{}: {}'.\nOverrides must be at the end of the defaults list",
                        last.override_key(),
                        last.value_display(),
                        d.override_key(),
                        d.value_display()
                    ),
                    last.span,
                )
                .with_note(d.span, "this entry comes after the override")
                .with_help("move every `override ...` entry after the plain entries of the defaults list"));
            }
        }
        if d.is_group() && d.is_override {
            last_override = Some(d.clone());
            if interpolated {
                return Err(Diagnostic::error(
                    format!(
                        "{parent_path}: Default List Overrides are not allowed in the subtree\nof an in interpolated config group (override {}={}).",
                        d.override_key(),
                        d.value_display()
                    ),
                    d.span,
                ));
            }
            ov.add_override(&parent_path, d);
        }
    }
    Ok(())
}

/// The values `${...}` in a defaults list can refer to: the choices made so far.
fn interpolation_map(ov: &Overrides, defaults: &[DefaultEntry], self_added: bool) -> Node {
    let mut m = Map::new();
    for (k, v) in &ov.known {
        let value = match v {
            Some(s) => Value::Str(s.clone()),
            None => Value::Null,
        };
        m.insert(k.clone(), Node::new(value, Span::UNKNOWN));
    }
    let mut list = Vec::new();
    for d in defaults {
        if self_added && d.is_self() {
            continue;
        }
        let item = match &d.kind {
            EntryKind::Config { .. } => Value::Str(d.config_path()),
            EntryKind::Group { value, .. } => {
                let v = match value {
                    GroupValue::Name(Some(n)) => Value::Str(n.clone()),
                    GroupValue::Name(None) => Value::Null,
                    GroupValue::Options(o) => Value::List(o.iter().map(|s| Node::new(Value::Str(s.clone()), Span::UNKNOWN)).collect()),
                };
                let mut mm = Map::new();
                mm.insert(d.override_key(), Node::new(v, Span::UNKNOWN));
                Value::Map(mm)
            }
        };
        list.push(Node::new(item, Span::UNKNOWN));
    }
    m.insert("defaults".into(), Node::new(Value::List(list), Span::UNKNOWN));
    Node::map(m, Span::UNKNOWN)
}

fn resolve_entry_interpolation(d: &mut DefaultEntry, known: &Node) -> Result<(), Diagnostic> {
    let text = match &d.kind {
        EntryKind::Config { .. } => d.config_path(),
        EntryKind::Group { value: GroupValue::Name(Some(n)), .. } => n.clone(),
        _ => return Ok(()),
    };
    let fail = || {
        let keys: Vec<&str> = known.as_map().map(|m| m.keys().map(|k| k.as_str()).filter(|k| *k != "defaults").collect()).unwrap_or_default();
        let msg = if keys.is_empty() {
            format!("Error resolving interpolation '{text}'")
        } else {
            format!("Error resolving interpolation '{text}', possible interpolation keys: {}", keys.join(", "))
        };
        Diagnostic::error(msg, d.span)
    };
    let resolved = match crate::interp::resolve_standalone(&text, known) {
        Ok(Value::Str(s)) => s,
        _ => return Err(fail()),
    };
    match &mut d.kind {
        EntryKind::Config { path } => *path = resolved,
        EntryKind::Group { value, .. } => *value = GroupValue::Name(Some(resolved)),
    }
    Ok(())
}

fn dfs(tree: &Tree, parent: Option<&Tree>, out: &mut Vec<ResultDefault>) {
    match &tree.children {
        None => collect(parent, &tree.node, out),
        Some(ch) if ch.is_empty() => collect(parent, &tree.node, out),
        Some(ch) => {
            for c in ch {
                match c {
                    Child::Leaf(d) => collect(Some(tree), d, out),
                    Child::Tree(t) => dfs(t, Some(tree), out),
                }
            }
        }
    }
}

fn collect(tree: Option<&Tree>, node: &DefaultEntry, out: &mut Vec<ResultDefault>) {
    if node.deleted || node.is_missing() || node.name().is_none() {
        return;
    }
    if node.is_self() {
        let Some(t) = tree else { return };
        out.push(ResultDefault {
            config_path: t.node.config_path(),
            package: t.node.final_package(true),
            override_key: None,
            is_self: true,
            span: t.node.span,
        });
    } else {
        if node.config_path().is_empty() {
            return;
        }
        out.push(ResultDefault {
            config_path: node.config_path(),
            package: node.final_package(true),
            override_key: node.is_group().then(|| node.override_key()),
            is_self: false,
            span: node.span,
        });
    }
}

/// Wraps a file's content into its package (`trainer` -> `{trainer: content}`).
fn embed(content: Node, package: &str) -> Node {
    if package.is_empty() {
        return content;
    }
    let span = content.span;
    let mut node = content;
    for part in package.rsplit('.') {
        let mut m = Map::new();
        m.insert(part.to_string(), node);
        node = Node::map(m, span);
    }
    node
}

/// A command-line value as a config node.
pub fn element_to_node(e: &Element, span: Span) -> Node {
    let value = match e {
        Element::Null => Value::Null,
        Element::Bool(b) => Value::Bool(*b),
        Element::Int(i) => Value::Int(*i),
        Element::Float(f) => Value::Float(*f),
        Element::Str { value, .. } if value == "???" => Value::Missing,
        Element::Str { value, .. } => Value::Str(value.clone()),
        Element::List(items) => Value::List(items.iter().map(|i| element_to_node(i, span)).collect()),
        Element::Dict(kv) => {
            let mut m = Map::new();
            for (k, v) in kv {
                let mut node = element_to_node(v, span);
                // The override grammar types dict keys like values: `{1: a}` has an int key.
                let lower = k.to_ascii_lowercase();
                node.typed_key =
                    k.parse::<i64>().is_ok() || (k.parse::<f64>().is_ok() && k.chars().any(|c| c.is_ascii_digit())) || lower == "true" || lower == "false";
                m.insert(k.clone(), node);
            }
            Value::Map(m)
        }
    };
    Node::new(value, span)
}

/// Splits `a.b[0].c` / `a.b.0.c` into keys.
fn key_parts(key: &str) -> Vec<String> {
    key.replace('[', ".").replace(']', "").split('.').filter(|s| !s.is_empty()).map(|s| s.to_string()).collect()
}

/// `OmegaConf.select(cfg, key)` without resolving: None when absent.
fn select<'a>(cfg: &'a Node, parts: &[String]) -> Option<&'a Node> {
    let mut cur = cfg;
    for p in parts {
        cur = cur.child(p)?;
    }
    Some(cur)
}

fn keys_near(cfg: &Node, parts: &[String]) -> Option<String> {
    let (last, parent_parts) = parts.split_last()?;
    let m = select(cfg, parent_parts)?.as_map()?;
    let prefix = if parent_parts.is_empty() { String::new() } else { format!("{}.", parent_parts.join(".")) };
    crate::diag::did_you_mean_in(&prefix, last, m.keys().map(|k| k.as_str()))
}

/// Applies one `key=value` / `+key=value` / `++key=value` / `~key` to the composed config
/// (Hydra's `_apply_overrides_to_config`, in struct mode).
fn apply_config_override(cfg: &mut Node, ov: &Override, span: Span, repo: &Repo) -> Result<(), Diagnostic> {
    if ov.package.is_some() {
        let groups = repo.all_groups();
        let mut d = Diagnostic::error(
            format!("Override {} looks like a config group override, but config group '{}' does not exist.", ov.input, ov.key_or_group),
            span,
        );
        if let Some(h) = did_you_mean(&ov.key_or_group, groups.iter().map(|s| s.as_str())) {
            d = d.with_help(h);
        }
        return Err(d);
    }
    let parts = key_parts(&ov.key_or_group);
    let value = match &ov.value {
        Some(OverrideValue::Element(e)) => Some(element_to_node(e, span)),
        _ => None,
    };
    match ov.kind {
        OverrideKind::Delete => {
            // Hydra reads the current value with `OmegaConf.select`: interpolations resolve, and
            // `null` or `???` count as "does not exist".
            let existing = crate::interp::select_resolved(cfg, &parts).map_err(|e| merge_failed(ov, span, &e.to_string()))?;
            let Some(existing) = existing else {
                let mut d = Diagnostic::error(format!("Could not delete from config. '{}' does not exist.", ov.key_or_group), span);
                if let Some(h) = keys_near(cfg, &parts) {
                    d = d.with_help(h);
                }
                return Err(d);
            };
            // `~k=null` is the same as `~k`.
            if let Some(v) = value.as_ref().filter(|v| !matches!(v.value, Value::Null)) {
                if existing != v.value {
                    let shown = crate::python::py_str(&existing);
                    return Err(Diagnostic::error(
                        format!("Could not delete from config. The value of '{}' is {} and not {}.", ov.key_or_group, shown, crate::python::py_str(&v.value)),
                        span,
                    )
                    .with_help(format!("use `~{}` to delete it whatever its value", ov.key_or_group)));
                }
            }
            let (last, parent) = parts.split_last().ok_or_else(|| Diagnostic::error("empty key", span))?;
            // A key reached only through an interpolation lives in a computed value: nothing to delete.
            let Some(container) = select_mut(cfg, parent) else { return Ok(()) };
            match &mut container.value {
                Value::Map(m) => {
                    m.shift_remove(last);
                    Ok(())
                }
                // Hydra deletes with `del node[key]`, which a list refuses for a string key.
                Value::List(_) => Err(merge_failed(ov, span, "TypeError: list indices must be integers or slices, not str")
                    .with_class(ErrorClass::TypeError)
                    .with_help("list items cannot be deleted from the command line; set the whole list: `key=[...]`")),
                _ => Ok(()),
            }
        }
        OverrideKind::Add => {
            let Some(value) = value else { return Err(Diagnostic::error(format!("Override '{}' has no value", ov.input), span)) };
            let existing = crate::interp::select_resolved(cfg, &parts).map_err(|e| merge_failed(ov, span, &e.to_string()))?;
            if existing.is_some() && !value.is_container() {
                let rest = &ov.input[1..];
                return Err(Diagnostic::error(
                    format!(
                        "Could not append to config. An item is already at '{}'.\nEither remove + prefix: '{}'\nOr add a second + to add or replace '{}': '+{}'",
                        ov.key_or_group, rest, ov.key_or_group, ov.input
                    ),
                    span,
                )
                .with_help(format!("`{}` already exists; write `{rest}` to change it", ov.key_or_group)));
            }
            update(cfg, &parts, value, true, span, ov, repo)
        }
        OverrideKind::ForceAdd => {
            let Some(value) = value else { return Err(Diagnostic::error(format!("Override '{}' has no value", ov.input), span)) };
            update(cfg, &parts, value, true, span, ov, repo)
        }
        OverrideKind::Change => {
            let Some(value) = value else { return Err(Diagnostic::error(format!("Override '{}' has no value", ov.input), span)) };
            update(cfg, &parts, value, false, span, ov, repo)
        }
    }
}

fn select_mut<'a>(cfg: &'a mut Node, parts: &[String]) -> Option<&'a mut Node> {
    let mut cur = cfg;
    for p in parts {
        cur = cur.child_mut(p)?;
    }
    Some(cur)
}

fn could_not_override(cfg: &Node, parts: &[String], span: Span, ov: &Override, repo: &Repo) -> Diagnostic {
    let mut d = Diagnostic::error(format!("Could not override '{}'.\nTo append to your config use +{}", ov.key_or_group, ov.input), span);
    // Suggest the nearest existing key at the deepest level that exists.
    let mut depth = 0;
    while depth < parts.len() && select(cfg, &parts[..=depth]).is_some() {
        depth += 1;
    }
    let groups = repo.all_groups();
    let group_hint = if depth == 0 { parts.first().and_then(|p| did_you_mean(p, groups.iter().map(|s| s.as_str()))) } else { None };
    if let Some(h) = keys_near(cfg, &parts[..(depth + 1).min(parts.len())]) {
        d = d.with_help(h);
    } else if let Some(h) = group_hint {
        d = d.with_help(format!("{h} (a config group: `group=option`)"));
    } else {
        d = d.with_help(format!("`{}` is not in the config; to add it use `+{}`", ov.key_or_group, ov.input));
    }
    d
}

/// `OmegaConf.update(cfg, key, value, merge=True)`; `force_add` creates missing keys.
fn update(cfg: &mut Node, parts: &[String], value: Node, force_add: bool, span: Span, ov: &Override, repo: &Repo) -> Result<(), Diagnostic> {
    let Some((last, parents)) = parts.split_last() else {
        return Err(Diagnostic::error(format!("Override '{}' has an empty key", ov.input), span));
    };
    let snapshot = cfg.clone();
    let mut cur = &mut *cfg;
    for p in parents {
        let exists = cur.child(p).is_some();
        if !exists {
            if !force_add {
                return Err(could_not_override(&snapshot, parts, span, ov, repo));
            }
            match &mut cur.value {
                Value::Map(m) => {
                    m.insert(p.clone(), Node::empty_map(span));
                }
                Value::Null | Value::Missing => {
                    let mut m = Map::new();
                    m.insert(p.clone(), Node::empty_map(span));
                    cur.value = Value::Map(m);
                }
                _ => return Err(not_a_container(&snapshot, parts, span, ov)),
            }
        } else if force_add && cur.child(p).is_some_and(|n| !n.is_container() || n.is_interpolation()) {
            // `OmegaConf.update(force_add=True)` replaces a scalar, `null`, `???` or an
            // interpolation on the way with an empty mapping.
            if let Some(n) = cur.child_mut(p) {
                n.value = Value::Map(Map::new());
            }
        }
        cur = match cur.child_mut(p) {
            Some(n) => n,
            None => return Err(not_a_container(&snapshot, parts, span, ov)),
        };
        if !cur.is_container() && !matches!(cur.value, Value::Null | Value::Missing) {
            return Err(not_a_container(&snapshot, parts, span, ov));
        }
    }
    match &mut cur.value {
        Value::Map(m) => match m.get_mut(last) {
            Some(existing) => {
                if !force_add {
                    if let (Value::Map(dst), Value::Map(src)) = (&existing.value, &value.value) {
                        if let Some(k) = src.keys().find(|k| !dst.contains_key(*k)) {
                            return Err(Diagnostic::error(format!("Error merging override {}\nKey '{k}' is not in struct", ov.input), span)
                                .with_help(format!("to add new keys use `++{}`", ov.input)));
                        }
                    }
                }
                if matches!(value.value, Value::Missing) {
                    // An override to `???` makes the value mandatory again (merge would keep it).
                    *existing = value.replacing(existing);
                    return Ok(());
                }
                merge_into(existing, value).map_err(|e| merge_error(ov, span, e))
            }
            None if force_add => {
                m.insert(last.clone(), value);
                Ok(())
            }
            None => Err(could_not_override(&snapshot, parts, span, ov, repo)),
        },
        Value::List(l) => {
            let idx = last.parse::<usize>().ok().filter(|i| *i < l.len());
            match idx {
                Some(i) if matches!(value.value, Value::Missing) => {
                    l[i] = value.replacing(&l[i]);
                    Ok(())
                }
                Some(i) => merge_into(&mut l[i], value).map_err(|e| merge_error(ov, span, e)),
                None => {
                    Err(Diagnostic::error(format!("Error merging override {}\nIndex '{last}' is out of range for a list of {} items", ov.input, l.len()), span))
                }
            }
        }
        Value::Null | Value::Missing if force_add => {
            let mut m = Map::new();
            m.insert(last.clone(), value);
            cur.value = Value::Map(m);
            Ok(())
        }
        _ => Err(could_not_override(&snapshot, parts, span, ov, repo)),
    }
}

fn merge_failed(ov: &Override, span: Span, cause: &str) -> Diagnostic {
    Diagnostic::error(format!("Error merging override {}\n{cause}", ov.input), span)
}

fn merge_error(ov: &Override, span: Span, e: super::merge::MergeError) -> Diagnostic {
    Diagnostic::error(format!("Error merging override {}\n{}", ov.input, e.message), span)
        .with_help("a list cannot replace a mapping (or the reverse); delete the key first (`~key`) and add it again (`+key=...`)")
}

fn not_a_container(cfg: &Node, parts: &[String], span: Span, ov: &Override) -> Diagnostic {
    let _ = cfg;
    Diagnostic::error(format!("Error merging override {}\nA key of `{}` is not a container", ov.input, parts.join(".")), span)
}

/// Fills what Hydra sets at compose time: choices, overrides, cwd, job name and override_dirname.
fn fill_hydra_runtime(cfg: &mut Node, req: &ComposeRequest, ov: &Overrides, repo: &Repo) {
    let _ = repo;
    let Some(root) = cfg.as_map_mut() else { return };
    let hydra = root.entry("hydra".to_string()).or_insert_with(|| Node::empty_map(Span::UNKNOWN));
    if !matches!(hydra.value, Value::Map(_)) {
        hydra.value = Value::Map(Map::new());
    }
    let s = |v: &str| Node::new(Value::Str(v.to_string()), Span::UNKNOWN);
    let Some(h) = hydra.as_map_mut() else { return };
    let runtime = h.entry("runtime".to_string()).or_insert_with(|| Node::empty_map(Span::UNKNOWN));
    if let Some(rt) = runtime.as_map_mut() {
        let mut choices = Map::new();
        for (k, v) in &ov.known {
            let value = match v {
                Some(x) => Value::Str(x.clone()),
                None => Value::Null,
            };
            choices.insert(k.clone(), Node::new(value, Span::UNKNOWN));
        }
        rt.insert("choices".into(), Node::map(choices, Span::UNKNOWN));
        let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
        rt.insert("cwd".into(), s(&cwd));
        rt.insert("version".into(), s("1.3.2"));
        rt.insert("version_base".into(), s("1.3"));
    }
    let job = h.entry("job".to_string()).or_insert_with(|| Node::empty_map(Span::UNKNOWN));
    if let Some(j) = job.as_map_mut() {
        if !j.contains_key("name") {
            let name = req
                .job_name
                .clone()
                .unwrap_or_else(|| Path::new(normalize(&req.config_name)).file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default());
            j.insert("name".into(), s(&name));
        }
        let mut task: Vec<String> = req.overrides.clone();
        task.sort();
        j.insert("override_dirname".into(), s(&task.join(",")));
        j.insert("config_name".into(), s(&req.config_name));
    }
    let overrides = h.entry("overrides".to_string()).or_insert_with(|| Node::empty_map(Span::UNKNOWN));
    if let Some(o) = overrides.as_map_mut() {
        let (hydra_ov, task_ov): (Vec<&String>, Vec<&String>) = req
            .overrides
            .iter()
            .partition(|l| l.trim_start_matches(['+', '~']).starts_with("hydra.") || l.trim_start_matches(['+', '~']).starts_with("hydra/"));
        o.insert("hydra".into(), Node::new(Value::List(hydra_ov.iter().map(|x| s(x)).collect()), Span::UNKNOWN));
        o.insert("task".into(), Node::new(Value::List(task_ov.iter().map(|x| s(x)).collect()), Span::UNKNOWN));
    }
}
