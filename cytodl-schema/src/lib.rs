//! cytodl-schema: every runtime component's typed config, declared once.
//!
//! A component is one struct declared with [`component!`]: its fields are its parameters, with
//! their types, defaults and documentation, and the struct names the `_target_`s it answers to.
//! From that declaration:
//!
//! - the registry entry ([`ComponentSpec`]) that `cytodl-build check` reads configs against and
//!   `cytodl-build targets` lists;
//! - the typed constructor ([`Component::from_args`]) that turns checked config values into the
//!   config the code generator and the runtime share;
//! - the Rust literal of a config (`codegen` feature), which is what generated code holds.
//!
//! Components of one role form an exhaustive enum ([`kind!`]: [`TransformConfig`],
//! [`LossConfig`], ...): choosing a component is a `match`, never a fallback. The crate has no
//! burn dependency: the compiler (`cytodl-build`) and the runtime (`cytodl-runtime`) both use it.

pub mod component;
pub mod components;
pub mod field;
pub mod lit;
mod macros;
pub mod py;
pub mod registry;
pub mod spec;
pub mod values;

pub use component::{Args, Component, FieldError, FieldErrors, HYDRA_KEYS};
pub use components::*;
pub use field::{Column, ConfigPath, Field, Keys, Map, Raw};
pub use lit::Lit;
pub use spec::{ComponentSpec, Effect, Kind, ParamSpec, Ty};
pub use values::{ChannelDim, Devices, IntOrInts, Levels, Listed, Number, PerKey, Precision, Targets};

#[doc(hidden)]
pub use indexmap;
#[cfg(feature = "codegen")]
#[doc(hidden)]
pub use proc_macro2;
#[cfg(feature = "codegen")]
#[doc(hidden)]
pub use quote;
