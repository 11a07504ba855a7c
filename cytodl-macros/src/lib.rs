//! `cytodl_experiment!("configs/experiment/segmentation.yaml")`: expands an experiment config
//! inside a user crate, at compile time, into the same typed module `cytodl-build` generates
//! (the crate needs `cytodl-runtime` as a dependency).
//!
//! The path is relative to the calling crate's `CARGO_MANIFEST_DIR`. Config errors become
//! compile errors at the macro call carrying the YAML `file:line:col`. Overrides may follow:
//! `cytodl_experiment!("...", "spatial_dims=2")`.

use proc_macro::TokenStream;
use proc_macro2::{Literal, Span, TokenStream as TokenStream2, TokenTree};

#[proc_macro]
pub fn cytodl_experiment(input: TokenStream) -> TokenStream {
    match expand(input.into()) {
        Ok(ts) => ts.into(),
        Err((span, msg)) => {
            let lit = Literal::string(&msg);
            quote::quote_spanned!(span=> compile_error!(#lit);).into()
        }
    }
}

/// The string literals of the invocation: the experiment path, then overrides.
fn string_args(input: TokenStream2) -> Result<Vec<(String, Span)>, (Span, String)> {
    let mut out = Vec::new();
    for tt in input {
        match tt {
            TokenTree::Literal(l) => {
                let text = l.to_string();
                let inner = text
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .ok_or_else(|| (l.span(), "expected a string literal: cytodl_experiment!(\"configs/experiment/x.yaml\")".to_string()))?;
                out.push((inner.replace("\\\\", "\\").replace("\\\"", "\""), l.span()));
            }
            TokenTree::Punct(p) if p.as_char() == ',' => {}
            other => return Err((other.span(), "expected string literals separated by commas".into())),
        }
    }
    Ok(out)
}

fn expand(input: TokenStream2) -> Result<TokenStream2, (Span, String)> {
    let args = string_args(input)?;
    let Some(((path, span), rest)) = args.split_first() else {
        return Err((Span::call_site(), "cytodl_experiment! needs the path of an experiment YAML file".into()));
    };
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| (*span, "CARGO_MANIFEST_DIR is not set".to_string()))?;
    let overrides: Vec<String> = rest.iter().map(|(s, _)| s.clone()).collect();
    let e = cytodl_build::expand::expand_experiment(std::path::Path::new(&manifest), path, &overrides)
        .map_err(|msg| (*span, format!("cytodl_experiment!(\"{path}\"):\n{msg}")))?;
    Ok(e.tokens)
}
