//! IR -> Rust. A generated experiment is its typed configs quoted as Rust literals — each
//! component writes itself ([`cytodl_schema::Component::literal`]), with its defaults already
//! filled by its declaration — plus the `columns` constants and the `impl Experiment` that hands
//! them to the runtime. [`crate_files`] adds Cargo.toml, main.rs and the `@generated` header;
//! [`ident`] makes every emitted name. The output is formatted with prettyplease and meant to be
//! read: literal values, one function per split's pipeline, no config parsing at run time.

pub mod crate_files;
pub mod ident;

use cytodl_schema::field::Context;
use cytodl_schema::{CallbackConfig, Component, Compose, Field, LoggerConfig, Map, ModelConfig};
use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote};

use crate::ir::Experiment;

pub use ident::type_name;

/// How the resolved config is embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// `include_str!("../resolved.yaml")` (a generated crate).
    File,
    /// A string literal (`cytodl_experiment!`).
    Inline,
}

/// The experiment's columns, for literals that name one.
struct Columns {
    constants: Vec<(String, String)>,
}

impl Context for Columns {
    fn column(&self, key: &str) -> TokenStream {
        match self.constants.iter().find(|(c, _)| c == key) {
            Some((_, name)) => {
                let id = format_ident!("{}", name);
                quote!(columns::#id)
            }
            None => quote!(#key),
        }
    }
}

/// `value` with the field `field` of its (outermost) struct literal replaced by `with`.
fn replace_field(value: TokenStream, field: &str, with: TokenStream) -> TokenStream {
    value
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace => {
                let mut out: Vec<TokenTree> = Vec::new();
                let mut inner = g.stream().into_iter().peekable();
                while let Some(t) = inner.next() {
                    let is_field = matches!(&t, TokenTree::Ident(i) if i == field);
                    out.push(t);
                    if is_field && matches!(inner.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':') {
                        out.extend(inner.next());
                        // Skip the old value, up to the next top-level comma.
                        while inner.peek().is_some_and(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == ',')) {
                            inner.next();
                        }
                        out.extend(with.clone());
                    }
                }
                let mut n = proc_macro2::Group::new(g.delimiter(), out.into_iter().collect());
                n.set_span(g.span());
                TokenTree::Group(n)
            }
            other => other,
        })
        .collect()
}

fn named_list<T: Field>(items: &[(String, T)], cx: &Columns) -> TokenStream {
    let items = items.iter().map(|(name, v)| {
        let v = v.literal(cx);
        quote!((#name.to_string(), #v))
    });
    quote!(Vec::from([#(#items),*]))
}

/// The items of the experiment module: the `columns` constants, the experiment type and its
/// `impl Experiment`, `data()` and one function per split's pipeline.
pub fn experiment_items(e: &Experiment, embed: Embed) -> TokenStream {
    let cx = Columns { constants: ident::column_constants(&e.columns) };
    let ty = format_ident!("{}", type_name(&e.name));
    let name = &e.name;
    let resolved = match embed {
        Embed::File => quote!(include_str!("../resolved.yaml")),
        Embed::Inline => {
            let y = &e.resolved_yaml;
            quote!(#y)
        }
    };
    let consts = cx.constants.iter().map(|(c, n)| {
        let id = format_ident!("{}", n);
        let doc = format!(" The `{c}` column of the manifest.");
        quote! { #[doc = #doc] pub const #id: &str = #c; }
    });

    // data(): the datamodule, its pipelines by name.
    let splits: Vec<(String, &Compose)> = e.data.transforms.iter().map(|(s, c)| (s.clone(), c)).collect();
    let calls = splits.iter().map(|(split, _)| {
        let f = format_ident!("{}", ident::split_fn(split));
        quote!((#split, #f()))
    });
    let mut shell = e.data.clone();
    shell.transforms = Map::default();
    let data = replace_field(Component::literal(&shell, &cx), "transforms", quote!(Map::of([#(#calls),*])));
    let pipelines = splits.iter().map(|(split, compose)| {
        let f = format_ident!("{}", ident::split_fn(split));
        let value = Component::literal(*compose, &cx);
        let doc = format!(" `data.transforms.{split}`: {} transforms.", compose.transforms.0.len());
        quote! {
            #[doc = #doc]
            pub fn #f() -> Compose {
                #value
            }
        }
    });

    let (model_ty, model) = match &e.model {
        ModelConfig::MultiTaskIm2Im(m) => (format_ident!("MultiTaskIm2Im"), Component::literal(m, &cx)),
        ModelConfig::GAN(m) => (format_ident!("GAN"), Component::literal(m, &cx)),
    };
    let trainer = Component::literal(&e.trainer, &cx);
    let callbacks = named_list::<CallbackConfig>(&e.callbacks, &cx);
    let loggers = named_list::<LoggerConfig>(&e.loggers, &cx);
    let (exp, run, log_dir) = (&e.experiment_name, &e.run_name, &e.log_dir);
    let seed = match e.seed {
        Some(seed) => quote!(Some(#seed)),
        None => quote!(None),
    };
    let ckpt_path = match &e.ckpt_path {
        Some(p) => quote!(Some(#p.into())),
        None => quote!(None),
    };
    let (train, test, weights_only, strict) = (e.train, e.test, e.weights_only, e.strict);
    let doc = format!(" The `{name}` experiment: everything its config describes, as Rust values.");
    quote! {
        use cytodl_runtime::config::*;
        use cytodl_runtime::experiment::{Experiment, Settings};

        /// The manifest columns the experiment reads (`data.columns`).
        pub mod columns {
            #(#consts)*
        }

        #[doc = #doc]
        pub struct #ty;

        impl Experiment for #ty {
            const NAME: &'static str = #name;
            const RESOLVED_YAML: &'static str = #resolved;

            type Model = #model_ty;

            fn settings() -> Settings {
                Settings {
                    experiment_name: #exp.into(),
                    run_name: #run.into(),
                    seed: #seed,
                    log_dir: #log_dir.into(),
                    lr: None,
                    data: data(),
                    trainer: #trainer,
                    callbacks: #callbacks,
                    loggers: #loggers,
                    train: #train,
                    test: #test,
                    ckpt_path: #ckpt_path,
                    weights_only: #weights_only,
                    strict: #strict,
                    save_dir: None,
                }
            }

            fn model() -> #model_ty {
                #model
            }
        }

        /// `data`: the manifest, the loader and each split's transforms.
        pub fn data() -> DataframeDatamodule {
            #data
        }

        #(#pipelines)*
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
                match SUFFIXES
                    .iter()
                    .find_map(|s| text.strip_suffix(s))
                    .filter(|d| !d.is_empty() && d.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()))
                {
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
