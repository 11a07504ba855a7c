//! The types a component's fields have, and how each reads itself from a config value, writes
//! itself back as YAML (defaults in listings and messages) and, for the code generator, as a Rust
//! literal.

use indexmap::IndexMap;

use crate::lit::Lit;
use crate::spec::Ty;

#[cfg(feature = "codegen")]
use proc_macro2::TokenStream;
#[cfg(feature = "codegen")]
use quote::quote;

/// What the code generator knows that a value does not: which strings are manifest columns
/// (written as `columns::RAW`).
#[cfg(feature = "codegen")]
pub trait Context {
    /// A manifest column: `columns::RAW` when it is one of `data.columns`, else a string literal.
    fn column(&self, key: &str) -> TokenStream;
}

/// A field of a component: its YAML type, and the conversions from and to config values.
pub trait Field: Sized + Clone + std::fmt::Debug + PartialEq {
    /// What YAML value it takes (for messages and `cytodl-build targets`).
    const TY: Ty;
    /// `null` is a value of it (an `Option`).
    const NULLABLE: bool = false;

    /// Reads a value the checker has already type-checked against [`Self::TY`]; the error says
    /// what is wrong with it ("must be at least 0").
    fn from_lit(lit: &Lit) -> Result<Self, String>;

    /// The value as a config value.
    fn to_lit(&self) -> Lit;

    /// The value as a Rust expression of this type.
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream;
}

fn wrong(lit: &Lit, ty: Ty) -> String {
    format!("must be {}, found {}", ty.describe(), lit.to_yaml())
}

/// An `f64` as an unsuffixed Rust literal that reads as written: `0.1`, `1.0`, `1e-8` (small
/// and large magnitudes in exponent form), `f64::INFINITY`.
#[cfg(feature = "codegen")]
pub fn float_literal(f: f64) -> TokenStream {
    if f.is_nan() {
        return quote!(f64::NAN);
    }
    if f.is_infinite() {
        return if f > 0.0 { quote!(f64::INFINITY) } else { quote!(f64::NEG_INFINITY) };
    }
    if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e7) {
        if let Ok(ts) = format!("{f:e}").parse::<TokenStream>() {
            return ts;
        }
    }
    let l = proc_macro2::Literal::f64_unsuffixed(f);
    quote!(#l)
}

impl Field for bool {
    const TY: Ty = Ty::Bool;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        lit.as_bool().ok_or_else(|| wrong(lit, Self::TY))
    }
    fn to_lit(&self) -> Lit {
        Lit::Bool(*self)
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        quote!(#self)
    }
}

impl Field for i64 {
    const TY: Ty = Ty::Int;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        lit.as_i64().ok_or_else(|| wrong(lit, Self::TY))
    }
    fn to_lit(&self) -> Lit {
        Lit::Int(*self)
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        quote!(#self)
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const TY: Ty = Ty::Int;
            fn from_lit(lit: &Lit) -> Result<Self, String> {
                let i = lit.as_i64().ok_or_else(|| wrong(lit, Self::TY))?;
                <$t>::try_from(i).map_err(|_| format!("must be at least 0, found {i}"))
            }
            fn to_lit(&self) -> Lit {
                Lit::Int(*self as i64)
            }
            #[cfg(feature = "codegen")]
            fn literal(&self, _: &dyn Context) -> TokenStream {
                quote!(#self)
            }
        }
    )*};
}
unsigned!(u32, u64, usize);

impl Field for f64 {
    const TY: Ty = Ty::Float;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        lit.as_f64().ok_or_else(|| wrong(lit, Self::TY))
    }
    fn to_lit(&self) -> Lit {
        Lit::Float(*self)
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        float_literal(*self)
    }
}

impl Field for String {
    const TY: Ty = Ty::Str;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        lit.as_str().map(str::to_string).ok_or_else(|| wrong(lit, Self::TY))
    }
    fn to_lit(&self) -> Lit {
        Lit::Str(self.clone())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        let s = self.as_str();
        quote!(#s.to_string())
    }
}

impl<T: Field> Field for Option<T> {
    const TY: Ty = T::TY;
    const NULLABLE: bool = true;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::Null => Ok(None),
            other => T::from_lit(other).map(Some),
        }
    }
    fn to_lit(&self) -> Lit {
        self.as_ref().map_or(Lit::Null, Field::to_lit)
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        match self {
            Some(v) => {
                let v = v.literal(cx);
                quote!(Some(#v))
            }
            None => quote!(None),
        }
    }
}

/// Elements of the "one or many" lists MONAI takes (`spatial_axis: 0` or `[0, 1]`).
pub trait Element: Field {
    /// The list's YAML type.
    const LIST_TY: Ty;
}

impl Element for i64 {
    const LIST_TY: Ty = Ty::Ints;
}
impl Element for u64 {
    const LIST_TY: Ty = Ty::Ints;
}
impl Element for usize {
    const LIST_TY: Ty = Ty::Ints;
}
impl Element for f64 {
    const LIST_TY: Ty = Ty::Floats;
}
impl Element for String {
    const LIST_TY: Ty = Ty::Strs;
}

/// A list that may be written as one value (MONAI's "int or sequence").
impl<T: Element> Field for Vec<T> {
    const TY: Ty = T::LIST_TY;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::List(items) => items.iter().map(T::from_lit).collect(),
            Lit::Null => Err(wrong(lit, Self::TY)),
            one => T::from_lit(one).map(|v| vec![v]),
        }
    }
    fn to_lit(&self) -> Lit {
        Lit::List(self.iter().map(Field::to_lit).collect())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let items = self.iter().map(|v| v.literal(cx));
        quote!(Vec::from([#(#items),*]))
    }
}

/// The columns a transform applies to (`keys: raw` or `keys: [raw, seg]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keys(pub Vec<String>);

impl Keys {
    pub fn of<const N: usize>(keys: [&str; N]) -> Self {
        Keys(keys.iter().map(|k| k.to_string()).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|k| k == key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Field for Keys {
    const TY: Ty = Ty::Keys;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        Vec::<String>::from_lit(lit).map(Keys).map_err(|_| wrong(lit, Self::TY))
    }
    fn to_lit(&self) -> Lit {
        self.0.to_lit()
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let items = self.0.iter().map(|k| cx.column(k));
        quote!(Keys::of([#(#items),*]))
    }
}

/// A mapping with free keys, in the config's order (`scales_dict: {raw: 1, seg: [1, 2, 2]}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Map<T>(pub IndexMap<String, T>);

impl<T> Default for Map<T> {
    fn default() -> Self {
        Map(IndexMap::new())
    }
}

impl<T> Map<T> {
    pub fn of<const N: usize>(entries: [(&str, T); N]) -> Self {
        Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.0.iter()
    }
}

impl<T: Field> Field for Map<T> {
    const TY: Ty = Ty::Map;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        let m = lit.as_map().ok_or_else(|| wrong(lit, Self::TY))?;
        m.iter().map(|(k, v)| T::from_lit(v).map(|v| (k.clone(), v)).map_err(|e| format!("`{k}` {e}"))).collect::<Result<_, _>>().map(Map)
    }
    fn to_lit(&self) -> Lit {
        Lit::Map(self.0.iter().map(|(k, v)| (k.clone(), v.to_lit())).collect())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let items = self.0.iter().map(|(k, v)| {
            let k = cx.column(k);
            let v = v.literal(cx);
            quote!((#k, #v))
        });
        quote!(Map::of([#(#items),*]))
    }
}

/// A configured path: a fixed place, or a place inside the run folder that the binary makes at
/// run time (`${paths.output_dir}/checkpoints` is `InRun("checkpoints")`; the compiler decides
/// which from `paths.output_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPath {
    Fixed(String),
    InRun(String),
}

impl ConfigPath {
    pub fn fixed(path: &str) -> Self {
        ConfigPath::Fixed(path.to_string())
    }

    pub fn in_run(rel: &str) -> Self {
        ConfigPath::InRun(rel.to_string())
    }

    /// The path for a run whose folder is `run_dir`.
    pub fn under(&self, run_dir: &std::path::Path) -> std::path::PathBuf {
        match self {
            ConfigPath::Fixed(p) => std::path::PathBuf::from(p),
            ConfigPath::InRun(rel) if rel.is_empty() => run_dir.to_path_buf(),
            ConfigPath::InRun(rel) => run_dir.join(rel),
        }
    }

    /// `InRun` when `self` is `output_dir` or lies under it (the compiler's `paths.output_dir`).
    pub fn relative_to_run(self, output_dir: &str) -> Self {
        let ConfigPath::Fixed(p) = &self else { return self };
        let base = output_dir.trim_end_matches('/');
        if base.is_empty() {
            return self;
        }
        if p == base || *p == format!("{base}/") {
            return ConfigPath::InRun(String::new());
        }
        match p.strip_prefix(&format!("{base}/")) {
            Some(rest) => ConfigPath::InRun(rest.trim_start_matches('/').to_string()),
            None => self,
        }
    }
}

impl Field for ConfigPath {
    const TY: Ty = Ty::Str;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        String::from_lit(lit).map(ConfigPath::Fixed)
    }
    fn to_lit(&self) -> Lit {
        match self {
            ConfigPath::Fixed(p) => Lit::Str(p.clone()),
            ConfigPath::InRun(rel) => Lit::Str(format!("${{paths.output_dir}}/{rel}")),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        match self {
            ConfigPath::Fixed(p) => quote!(ConfigPath::fixed(#p)),
            ConfigPath::InRun(rel) => quote!(ConfigPath::in_run(#rel)),
        }
    }
}

/// A manifest column named by a parameter (`x_key: raw`): written as `columns::RAW` in
/// generated code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column(pub String);

impl Field for Column {
    const TY: Ty = Ty::Str;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        String::from_lit(lit).map(Column)
    }
    fn to_lit(&self) -> Lit {
        Lit::Str(self.0.clone())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let c = cx.column(&self.0);
        quote!(Column(#c.to_string()))
    }
}

/// A value kept as written: the options cytodl accepts without using them (see
/// [`crate::component!`]'s `ignored` and `unsupported`), which generated code never carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw(pub Lit);

impl Field for Raw {
    const TY: Ty = Ty::Any;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        Ok(Raw(lit.clone()))
    }
    fn to_lit(&self) -> Lit {
        self.0.clone()
    }
    /// Never part of generated code (the checker types these values itself): a generated crate
    /// that holds one does not compile.
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        quote!(compile_error!("a raw config value reached generated code"))
    }
}

/// The YAML text of a default, for listings and messages.
pub fn default_text<T: Field>(value: &T) -> String {
    value.to_lit().to_yaml()
}
