//! What every component is: a spec for the registry and the checker, a constructor from
//! type-checked config values, and (for the code generator) a Rust literal of itself.

use indexmap::IndexMap;

use crate::field::Field;
use crate::lit::Lit;
use crate::spec::ComponentSpec;

#[cfg(feature = "codegen")]
use crate::field::Context;
#[cfg(feature = "codegen")]
use proc_macro2::TokenStream;

/// Keys Hydra's `instantiate` reads itself; never parameters.
pub const HYDRA_KEYS: &[&str] = &["_target_", "_partial_", "_convert_", "_recursive_", "_args_"];

/// A typed component config. Implemented by [`crate::component!`].
pub trait Component: Sized {
    const SPEC: ComponentSpec;

    /// Builds the config from its arguments (parameters absent from `args` take their
    /// defaults); every field that does not convert is reported.
    fn from_args(args: &Args) -> Result<Self, FieldErrors>;

    /// The config as arguments (every parameter, defaults included).
    fn to_args(&self) -> IndexMap<String, Lit>;

    /// The config as a Rust struct literal.
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream;
}

/// The arguments of one component, as the config gives them (Hydra's keys left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    pub values: IndexMap<String, Lit>,
}

impl Args {
    pub fn new(values: IndexMap<String, Lit>) -> Self {
        Args { values }
    }

    /// The arguments of a `{_target_: ..., k: v}` mapping.
    pub fn of_map(map: &IndexMap<String, Lit>) -> Self {
        Args { values: map.iter().filter(|(k, _)| !HYDRA_KEYS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect() }
    }

    /// The field `name`: the given value, else `default`; a value that does not convert, or
    /// a required field that is absent, is recorded in `errors`.
    pub fn take<T: Field>(&self, name: &'static str, default: Option<fn() -> T>, errors: &mut FieldErrors) -> Option<T> {
        match (self.values.get(name), default) {
            (Some(v), _) => match T::from_lit(v) {
                Ok(t) => Some(t),
                Err(message) => {
                    errors.0.push(FieldError { param: name.to_string(), message });
                    None
                }
            },
            (None, Some(d)) => Some(d()),
            (None, None) => {
                errors.0.push(FieldError { param: name.to_string(), message: "is required".into() });
                None
            }
        }
    }
}

/// One field that did not convert: the parameter and what is wrong ("must be at least 0").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub param: String,
    pub message: String,
}

/// Every field of a component that did not convert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("`{}` {}", e.param, e.message)).collect();
        f.write_str(&parts.join("; "))
    }
}

/// A component as a config value: `{_target_: <its first name>, ...every parameter}`.
/// The component with every parameter at its declared default. For components whose every
/// parameter has a default (a loss, Adam); a required parameter is a bug in the declaration.
pub fn declared_defaults<C: Component>() -> C {
    C::from_args(&Args::default()).unwrap_or_else(|e| panic!("{}: a parameter without a default: {e}", C::SPEC.names[0]))
}

pub fn component_lit<C: Component>(c: &C) -> Lit {
    let mut m = IndexMap::new();
    m.insert("_target_".to_string(), Lit::Str(C::SPEC.names[0].to_string()));
    m.extend(c.to_args());
    Lit::Map(m)
}

/// Reads a nested component of type `C` from a `{_target_: ..., ...}` mapping.
pub fn component_from_lit<C: Component>(lit: &Lit) -> Result<C, String> {
    let Some(map) = lit.as_map() else { return Err(format!("must be {}", crate::Ty::Target(C::SPEC.kind).describe())) };
    let target = map.get("_target_").and_then(Lit::as_str).unwrap_or_default();
    if !C::SPEC.answers(target) {
        return Err(format!("must be `{}`, found `{target}`", C::SPEC.names[0]));
    }
    C::from_args(&Args::of_map(map)).map_err(|e| e.to_string())
}

/// Builds a struct literal `Name { field: value, ... }` (what [`crate::component!`] emits).
#[cfg(feature = "codegen")]
pub fn struct_literal(name: &str, fields: Vec<(&str, TokenStream)>) -> TokenStream {
    let name = proc_macro2::Ident::new(name, proc_macro2::Span::call_site());
    let fields = fields.into_iter().map(|(f, v)| {
        let f = proc_macro2::Ident::new(f, proc_macro2::Span::call_site());
        quote::quote!(#f: #v)
    });
    quote::quote!(#name { #(#fields),* })
}
