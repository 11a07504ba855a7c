//! What the registry knows of a component: its role, the `_target_` names it answers to, and
//! each parameter's YAML type, default, documentation and effect. Produced by [`crate::component!`]
//! from the component's struct; read by the checker and `cytodl-build targets`.

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
    Inference,
    Discriminator,
    GanLoss,
    Metric,
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
            Kind::Inference => "sliding-window inference",
            Kind::Discriminator => "GAN discriminator",
            Kind::GanLoss => "adversarial loss",
            Kind::Metric => "metric",
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
    /// A string or a list of strings.
    Strs,
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
            Ty::Strs => "a string or a list of strings".into(),
            Ty::Enum(options) => format!("one of {}", options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")),
            Ty::Target(k) => format!("{} (a mapping with `_target_`)", k.with_article()),
            Ty::Targets(k) => format!("a list of {}s", k.describe()),
            Ty::Map => "a mapping".into(),
            Ty::Any => "any value".into(),
        }
    }
}

/// What a parameter does in cytodl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It is used.
    Used,
    /// Accepted, with no effect here (the reason is shown as a note when it is set).
    Ignored(&'static str),
    /// A cyto_dl option cytodl lacks: setting it (to anything but null/false/empty) is an error.
    Unsupported,
}

/// One parameter of a component.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// The YAML key.
    pub name: &'static str,
    pub ty: Ty,
    /// The default as YAML text (`None`: required).
    pub default: Option<fn() -> String>,
    /// `null` is accepted.
    pub nullable: bool,
    pub doc: &'static str,
    pub effect: Effect,
}

impl ParamSpec {
    /// The default as YAML text; `None` when the parameter is required.
    pub fn default_text(&self) -> Option<String> {
        self.default.map(|f| f())
    }

    pub fn required(&self) -> bool {
        self.default.is_none()
    }

    /// The documentation, without the doc comments' leading spaces.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }
}

/// One runtime component.
#[derive(Debug, Clone, Copy)]
pub struct ComponentSpec {
    /// Its config type in this crate (`RandFlipd`, `DiceCELoss`).
    pub native: &'static str,
    pub kind: Kind,
    /// Every `_target_` it answers to; the first is the canonical (cyto_dl / MONAI) one.
    pub names: &'static [&'static str],
    pub params: &'static [ParamSpec],
    pub doc: &'static str,
}

impl ComponentSpec {
    /// Whether `target` names this component (one of its `_target_` names, or its native name).
    pub fn answers(&self, target: &str) -> bool {
        self.names.contains(&target) || self.native == target
    }

    /// The documentation, without the doc comments' leading spaces.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Why a parameter has no effect here, when it has none.
    pub fn ignored_note(&self, name: &str) -> Option<&'static str> {
        match self.param(name)?.effect {
            Effect::Ignored(why) => Some(why),
            _ => None,
        }
    }
}
