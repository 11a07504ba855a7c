//! The target registry: every runtime component, the `_target_` names it answers to (native,
//! cyto_dl, MONAI, torch, Lightning, serotiny), and its parameters with types, defaults and
//! documentation. The checker ([`crate::check`]) reads configs against it; `cytodl-build
//! targets` prints it.

mod registry;

pub use registry::{COMPONENTS, IGNORED_TRAINER_KEYS, INTERP_MODES, NOT_IMPLEMENTED};

/// What role a component plays; a `_target_` is looked up among the components of the role
/// its position in the config asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Datamodule,
    Transform,
    Reader,
    Model,
    Backbone,
    Head,
    Loss,
    Activation,
    Postprocess,
    Optimizer,
    Scheduler,
    Callback,
    Logger,
    Trainer,
}

impl Kind {
    /// "an optimizer", "a loss".
    pub fn with_article(self) -> String {
        let d = self.describe();
        let article = if d.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {d}")
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Datamodule => "data module",
            Kind::Transform => "transform",
            Kind::Reader => "image reader",
            Kind::Model => "model",
            Kind::Backbone => "backbone",
            Kind::Head => "task head",
            Kind::Loss => "loss",
            Kind::Activation => "activation",
            Kind::Postprocess => "postprocessing function",
            Kind::Optimizer => "optimizer",
            Kind::Scheduler => "learning-rate scheduler",
            Kind::Callback => "callback",
            Kind::Logger => "logger",
            Kind::Trainer => "trainer",
        }
    }
}

/// A parameter's type, as YAML can express it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    Bool,
    Int,
    /// An int or a float.
    Float,
    Str,
    /// An int or a list of ints (per axis / per level).
    Ints,
    /// A number or a list of numbers.
    Floats,
    /// A column name or a list of them (transform `keys`).
    Keys,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A nested component of this kind.
    Target(Kind),
    /// A list of nested components of this kind.
    Targets(Kind),
    /// A mapping with free keys.
    Map,
    /// Anything (checked elsewhere, or passed through).
    Any,
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::Bool => "a boolean".into(),
            Ty::Int => "an integer".into(),
            Ty::Float => "a number".into(),
            Ty::Str => "a string".into(),
            Ty::Ints => "an integer or a list of integers".into(),
            Ty::Floats => "a number or a list of numbers".into(),
            Ty::Keys => "a column name or a list of column names".into(),
            Ty::Enum(options) => format!("one of {}", options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")),
            Ty::Target(k) => format!("{} (a mapping with `_target_`)", k.with_article()),
            Ty::Targets(k) => format!("a list of {}s", k.describe()),
            Ty::Map => "a mapping".into(),
            Ty::Any => "any value".into(),
        }
    }
}

/// One parameter of a component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    /// The default as YAML text; `None` means required.
    pub default: Option<&'static str>,
    /// `null` is accepted.
    pub nullable: bool,
    pub doc: &'static str,
}

/// One runtime component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Component {
    /// The Rust name in `cytodl-runtime`.
    pub native: &'static str,
    pub kind: Kind,
    /// Every `_target_` it answers to; the first is the canonical (cyto_dl / MONAI) one.
    pub names: &'static [&'static str],
    pub params: &'static [Param],
    /// Accepted parameters that have no effect here, with why (reported as notes).
    pub ignored: &'static [(&'static str, &'static str)],
    pub doc: &'static str,
}

impl Component {
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn ignored_note(&self, name: &str) -> Option<&'static str> {
        self.ignored.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
    }
}

/// The component answering to `target`, of any kind.
pub fn lookup(target: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.names.contains(&target) || c.native == target)
}

/// Every `_target_` name of the components of `kind`.
pub fn names_of(kind: Kind) -> impl Iterator<Item = &'static str> {
    COMPONENTS.iter().filter(move |c| c.kind == kind).flat_map(|c| c.names.iter().copied())
}

/// A known cyto_dl / MONAI / torch target that cytodl does not implement yet.
pub fn not_implemented(target: &str) -> Option<&'static str> {
    NOT_IMPLEMENTED.iter().find(|(n, _)| *n == target).map(|(_, what)| *what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_parse() {
        let mut seen = std::collections::HashSet::new();
        for c in COMPONENTS {
            for n in c.names {
                assert!(seen.insert(*n), "{n} is registered twice");
            }
            let mut params = std::collections::HashSet::new();
            for p in c.params {
                assert!(params.insert(p.name), "{}.{} twice", c.native, p.name);
                if let Some(d) = p.default {
                    assert!(crate::config::yaml::load_any(d, crate::diag::FileId(0)).is_ok(), "{}.{} default {d}", c.native, p.name);
                }
            }
        }
        for (n, _) in NOT_IMPLEMENTED {
            assert!(lookup(n).is_none(), "{n} is both implemented and not");
        }
    }

    #[test]
    fn cyto_dl_monai_and_torch_names_resolve() {
        for name in [
            "monai.networks.nets.DynUNet",
            "monai.transforms.NormalizeIntensityd",
            "torch.optim.Adam",
            "cyto_dl.nn.BaseHead",
            "cyto_dl.models.im2im.MultiTaskIm2Im",
            "cyto_dl.datamodules.dataframe.DataframeDatamodule",
            "serotiny.datamodules.DataframeDatamodule",
            "lightning.pytorch.callbacks.ModelCheckpoint",
            "lightning.pytorch.loggers.csv_logs.CSVLogger",
            "cyto_dl.models.im2im.utils.postprocessing.ActThreshLabel",
            "cyto_dl.model.utils.postprocessing.rescale",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
    }
}
