//! What `cytodl_experiment!` expands: the same front end, checker and code generator as the
//! CLI, driven from a user crate. The module holds exactly the items of a generated crate's
//! `experiment.rs` (with the resolved config inline), plus the list of composed YAML files, so
//! an edit to any of them rebuilds the calling crate.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::codegen::{experiment_items, Embed};
use crate::compile::{compile, CompileRequest};

/// The result of expanding one experiment.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The module's name (the file stem).
    pub name: String,
    /// `pub mod <name> { ... }`.
    pub tokens: TokenStream,
    /// The resolved config.
    pub resolved_yaml: String,
}

/// Expands `path` (relative to `manifest_dir`) with optional overrides; errors are rendered
/// diagnostics (`file:line:col: error: ...`), ready for `compile_error!`.
pub fn expand_experiment(manifest_dir: &Path, path: &str, overrides: &[String]) -> Result<Expansion, String> {
    let req = CompileRequest { experiment: Some(manifest_dir.join(path)), config_dir: None, config_name: "train".into(), overrides: overrides.to_vec() };
    let compiled = compile(&req).map_err(|e| e.render())?;
    let e = compiled.experiment;
    let module = format_ident!("{}", crate::codegen::ident::module_name(&e.name));
    let items = experiment_items(&e, Embed::Inline);
    let files: Vec<String> = e.sources.iter().map(|p| p.display().to_string()).collect();
    let doc = format!(" The `{}` experiment, expanded by `cytodl_experiment!(\"{path}\")`.", e.name);
    let tokens = quote! {
        #[doc = #doc]
        pub mod #module {
            #items

            /// The YAML files that were composed.
            pub const SOURCES: &[&str] = &[#(#files),*];
            // Any edit to a composed file rebuilds the calling crate.
            const _TRACK: &[&[u8]] = &[#(include_bytes!(#files)),*];
        }
    };
    Ok(Expansion { name: e.name, tokens, resolved_yaml: e.resolved_yaml })
}
