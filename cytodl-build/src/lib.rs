//! cytodl-build: the cytodl compiler front end.
//!
//! The pipeline is `compose` (Hydra defaults lists, packages, merge, command-line overrides) ->
//! `interp` (OmegaConf interpolation and resolvers, `_aux` removal) -> check -> codegen. Every stage
//! keeps source spans and reports [`diag::Diagnostics`], never panics on user input.
//! This crate has no burn dependency so that the CLI and `cytodl_experiment!` stay fast; the
//! components it checks configs against are declared in `cytodl-schema`.

pub mod check;
pub mod codegen;
pub mod compile;
pub mod config;
pub mod diag;
pub mod example_data;
pub mod expand;
pub mod explain;
pub mod frontend;
pub mod interp;
pub mod ir;
pub mod python;
pub mod workspace;
