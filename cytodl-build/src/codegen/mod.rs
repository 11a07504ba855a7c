//! IR -> Rust. Each concern has its own module ([`data`]: columns, settings and the transform
//! pipelines; [`model`]: backbone, heads, losses, optimizer, schedule, inference and
//! postprocessing; [`crate_files`]: Cargo.toml, main.rs and the `@generated` header). The
//! output is formatted with prettyplease and meant to be read: literal values, one statement
//! per transform, no config parsing at run time.

pub mod crate_files;
pub mod data;
pub mod model;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ir::Experiment;

/// How the resolved config is embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// `include_str!("../resolved.yaml")` (a generated crate).
    File,
    /// A string literal (`cytodl_experiment!`).
    Inline,
}

/// The experiment's type name: `segmentation` -> `Segmentation`.
pub fn type_name(name: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c == '_' || c == '-' || !c.is_ascii_alphanumeric() {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'E');
    }
    out
}

/// The items of the experiment module: the `columns` module, the experiment type and its
/// `impl Experiment`, and one function per transform pipeline.
pub fn experiment_items(e: &Experiment, embed: Embed) -> TokenStream {
    let ty = format_ident!("{}", type_name(&e.name));
    let name = &e.name;
    let resolved = match embed {
        Embed::File => quote!(include_str!("../resolved.yaml")),
        Embed::Inline => {
            let y = &e.resolved_yaml;
            quote!(#y)
        }
    };
    let columns = data::columns_module(e);
    let x_key = data::column(e, &e.x_key);
    let in_channels = e.in_channels;
    let settings = data::settings(e);
    let (dispatch, pipelines) = data::pipelines(e);
    let loads = data::loads(e);
    let model = model::model_fn(e);
    let heads = model::heads_fn(e);
    let optimizer = model::optimizer(e);
    let schedule = model::schedule(e);
    let inference = model::inference(e);
    let postprocess = model::postprocess(e);
    let doc = format!(" The `{name}` experiment: everything its config describes, as Rust values.");
    quote! {
        use cytodl_runtime::data::manifest::Split;
        use cytodl_runtime::experiment::*;
        use cytodl_runtime::infer::*;
        use cytodl_runtime::io::*;
        use cytodl_runtime::loss::*;
        use cytodl_runtime::model::MultiTask;
        use cytodl_runtime::nn::heads::*;
        use cytodl_runtime::nn::*;
        use cytodl_runtime::optim::*;
        use cytodl_runtime::postprocess::{ActThreshLabel, Postprocess};
        use cytodl_runtime::train::early_stopping::Mode;
        use cytodl_runtime::transforms::*;
        use cytodl_runtime::burn::tensor::backend::Backend;
        use cytodl_runtime::indexmap::IndexMap;

        #columns

        #[doc = #doc]
        pub struct #ty;

        impl Experiment for #ty {
            const NAME: &'static str = #name;
            const RESOLVED_YAML: &'static str = #resolved;
            const X_KEY: &'static str = #x_key;
            const IN_CHANNELS: usize = #in_channels;

            #settings

            fn transforms(split: Split) -> Result<Pipeline, TransformError> {
                #dispatch
            }

            #loads
            #model
            #heads
            #optimizer
            #schedule
            #inference
            #postprocess
        }

        #pipelines
    }
}

/// Formats tokens as a Rust file: prettyplease, integer literals without type suffixes
/// (`16`, not `16usize`; every position is typed), and a blank line between items.
pub fn format(tokens: TokenStream) -> Result<String, String> {
    let file: syn::File = syn::parse2(unsuffixed(tokens)).map_err(|e| format!("generated code does not parse: {e}"))?;
    Ok(space_items(&prettyplease::unparse(&file)))
}

/// `16usize` -> `16` and `0.5f32` -> `0.5` throughout a token stream.
fn unsuffixed(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, Literal, TokenTree};
    const SUFFIXES: &[&str] = &["usize", "u64", "u32", "u16", "u8", "i64", "i32"];
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut n = Group::new(g.delimiter(), unsuffixed(g.stream()));
                n.set_span(g.span());
                TokenTree::Group(n)
            }
            TokenTree::Literal(l) => {
                let text = l.to_string();
                // `0.5f32` -> `0.5`, `1f32` -> `1.0` (the field's type makes it an f32).
                if let Some(num) = text.strip_suffix("f32").or_else(|| text.strip_suffix("f64")) {
                    if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')) {
                        let float = if num.contains(['.', 'e', 'E']) { num.to_string() } else { format!("{num}.0") };
                        if let Ok(ts) = float.parse::<TokenStream>() {
                            if let Some(TokenTree::Literal(lit)) = ts.into_iter().next() {
                                return TokenTree::Literal(lit);
                            }
                        }
                    }
                }
                match SUFFIXES.iter().find_map(|s| text.strip_suffix(s)).filter(|d| !d.is_empty() && d.trim_start_matches('-').chars().all(|c| c.is_ascii_digit())) {
                    Some(digits) => match digits.parse::<i128>() {
                        Ok(v) if v >= 0 => TokenTree::Literal(Literal::u64_unsuffixed(v as u64)),
                        Ok(v) => TokenTree::Literal(Literal::i64_unsuffixed(v as i64)),
                        Err(_) => TokenTree::Literal(l),
                    },
                    None => TokenTree::Literal(l),
                }
            }
            other => other,
        })
        .collect()
}

/// A blank line before each item or doc comment that follows other code (prettyplease packs
/// items together).
fn space_items(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut prev = "";
    for line in text.lines() {
        let t = line.trim_start();
        let starts_item = t.starts_with("///")
            || t.starts_with("#[")
            || ["pub fn ", "fn ", "pub mod ", "mod ", "pub struct ", "impl ", "pub const ", "const "].iter().any(|k| t.starts_with(k));
        let p = prev.trim();
        let prev_joins = p.is_empty() || p.ends_with('{') || p.starts_with("///") || p.starts_with("#[") || p.starts_with("//");
        if starts_item && !prev_joins {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        prev = line;
    }
    out
}

/// f64 literals that print as Rust floats (`1.0`, `0.0001`, `1e-8`).
pub(crate) fn float(v: f64) -> TokenStream {
    if v.is_infinite() {
        return if v > 0.0 { quote!(f64::INFINITY) } else { quote!(f64::NEG_INFINITY) };
    }
    // Small and large magnitudes read better in exponent form (`1e-8`, not `0.00000001`).
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e7) {
        if let Ok(ts) = format!("{v:e}").replace("e", if format!("{v:e}").contains('.') { "e" } else { ".0e" }).parse::<TokenStream>() {
            return ts;
        }
    }
    let lit = proc_macro2::Literal::f64_unsuffixed(v);
    quote!(#lit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        assert_eq!(type_name("segmentation"), "Segmentation");
        assert_eq!(type_name("bench_medium"), "BenchMedium");
        assert_eq!(type_name("2d"), "E2d");
    }
}
