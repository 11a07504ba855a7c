//! Field types for the shapes MONAI and cyto_dl parameters take beyond plain scalars and lists:
//! an int or a list (`C: 0` vs `C: [0, 2]`), per-level kernel sizes, a channel axis or
//! `no_channel`, one interpolation mode or one per key, Lightning's int-or-fraction batch limits
//! and precision.

use crate::field::{Element, Field};
use crate::lit::Lit;
use crate::spec::Ty;

#[cfg(feature = "codegen")]
use crate::field::Context;
#[cfg(feature = "codegen")]
use proc_macro2::TokenStream;
#[cfg(feature = "codegen")]
use quote::quote;

fn wrong(lit: &Lit, ty: Ty) -> String {
    format!("must be {}, found {}", ty.describe(), lit.to_yaml())
}

/// An int or a list of ints, kept as written: `C: 0` selects a channel and drops the axis,
/// `C: [0]` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrInts {
    One(i64),
    Many(Vec<i64>),
}

impl IntOrInts {
    /// Every value, in order.
    pub fn values(&self) -> Vec<i64> {
        match self {
            IntOrInts::One(i) => vec![*i],
            IntOrInts::Many(v) => v.clone(),
        }
    }
}

impl Field for IntOrInts {
    const TY: Ty = Ty::Ints;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::Int(i) => Ok(IntOrInts::One(*i)),
            Lit::List(_) => Vec::<i64>::from_lit(lit).map(IntOrInts::Many),
            other => Err(wrong(other, Self::TY)),
        }
    }
    fn to_lit(&self) -> Lit {
        match self {
            IntOrInts::One(i) => Lit::Int(*i),
            IntOrInts::Many(v) => v.to_lit(),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        match self {
            IntOrInts::One(i) => quote!(IntOrInts::One(#i)),
            IntOrInts::Many(v) => {
                let v = v.literal(cx);
                quote!(IntOrInts::Many(#v))
            }
        }
    }
}

/// DynUNet's per-level arguments (`kernel_size`, `strides`, `upsample_kernel_size`): each level an
/// int (the same on every axis) or one int per axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(pub Vec<IntOrInts>);

impl Field for Levels {
    const TY: Ty = Ty::Any;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::List(items) => items.iter().map(IntOrInts::from_lit).collect::<Result<_, _>>().map(Levels),
            other => Err(format!("must be a list with an int or a list of ints per level, found {}", other.to_yaml())),
        }
    }
    fn to_lit(&self) -> Lit {
        Lit::List(self.0.iter().map(Field::to_lit).collect())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let items = self.0.iter().map(|l| l.literal(cx));
        quote!(Levels(Vec::from([#(#items),*])))
    }
}

/// `EnsureChannelFirstd`'s `channel_dim`: `no_channel` (add one) or the axis that holds channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelDim {
    NoChannel,
    Axis(i64),
}

impl Field for ChannelDim {
    const TY: Ty = Ty::Any;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::Str(s) if s == "no_channel" => Ok(ChannelDim::NoChannel),
            Lit::Int(i) => Ok(ChannelDim::Axis(*i)),
            other => Err(format!("must be `no_channel` or an axis index, found {}", other.to_yaml())),
        }
    }
    fn to_lit(&self) -> Lit {
        match self {
            ChannelDim::NoChannel => Lit::Str("no_channel".into()),
            ChannelDim::Axis(i) => Lit::Int(*i),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        match self {
            ChannelDim::NoChannel => quote!(ChannelDim::NoChannel),
            ChannelDim::Axis(i) => quote!(ChannelDim::Axis(#i)),
        }
    }
}

/// One value for every key, or one per key (MONAI's `mode: area` or `mode: [area, nearest]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PerKey<T>(pub Vec<T>);

impl<T: Field + Element> Field for PerKey<T> {
    const TY: Ty = Ty::Any;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        Vec::<T>::from_lit(lit).map(PerKey)
    }
    fn to_lit(&self) -> Lit {
        match self.0.as_slice() {
            [one] => one.to_lit(),
            many => Lit::List(many.iter().map(Field::to_lit).collect()),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let items = self.0.iter().map(|v| v.literal(cx));
        quote!(PerKey(Vec::from([#(#items),*])))
    }
}

/// A number kept as written: Lightning's `limit_train_batches: 2` counts batches, `1.0` is a
/// fraction (all of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Field for Number {
    const TY: Ty = Ty::Float;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::Int(i) => Ok(Number::Int(*i)),
            Lit::Float(f) => Ok(Number::Float(*f)),
            other => Err(wrong(other, Self::TY)),
        }
    }
    fn to_lit(&self) -> Lit {
        match self {
            Number::Int(i) => Lit::Int(*i),
            Number::Float(f) => Lit::Float(*f),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        match self {
            Number::Int(i) => quote!(Number::Int(#i)),
            Number::Float(f) => {
                let f = crate::field::float_literal(*f);
                quote!(Number::Float(#f))
            }
        }
    }
}

/// Lightning's `precision`, as text (`32`, `16-mixed`, `bf16-mixed`); YAML may give an int.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precision(pub String);

impl Field for Precision {
    const TY: Ty = Ty::Any;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::Int(i) => Ok(Precision(i.to_string())),
            Lit::Str(s) => Ok(Precision(s.clone())),
            other => Err(format!("must be a precision such as 32 or bf16-mixed, found {}", other.to_yaml())),
        }
    }
    fn to_lit(&self) -> Lit {
        match self.0.parse::<i64>() {
            Ok(i) => Lit::Int(i),
            Err(_) => Lit::Str(self.0.clone()),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        let s = self.0.as_str();
        quote!(Precision(#s.to_string()))
    }
}

/// Lightning's `devices`: how many devices train one model (data parallel), all the backend has
/// (`-1`, `"auto"`, or null as cyto_dl's `trainer/ddp.yaml` leaves it), or which ones (`[0, 2]`,
/// `"0,2"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices {
    Count(usize),
    All,
    Indices(Vec<usize>),
}

impl Devices {
    fn parse_text(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "auto" || text == "-1" {
            return Ok(Devices::All);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Self::count(n);
        }
        let indices: Result<Vec<usize>, _> = text.split(',').filter(|p| !p.trim().is_empty()).map(|p| p.trim().parse::<usize>()).collect();
        match indices {
            Ok(v) if !v.is_empty() => Self::indices(v),
            _ => Err(format!("must be a device count, -1, \"auto\" or device indices such as [0, 1], found {text:?}")),
        }
    }

    fn count(n: i64) -> Result<Self, String> {
        match n {
            -1 => Ok(Devices::All),
            n if n >= 1 => Ok(Devices::Count(n as usize)),
            n => Err(format!("must be at least 1 (or -1 for every device), found {n}")),
        }
    }

    fn indices(v: Vec<usize>) -> Result<Self, String> {
        let mut sorted = v.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != v.len() {
            return Err(format!("lists a device twice: {v:?}"));
        }
        Ok(Devices::Indices(v))
    }

    /// The devices a run uses, as indices into the backend's devices, given how many it has.
    pub fn select(&self, available: usize) -> Result<Vec<usize>, String> {
        let chosen = match self {
            Devices::Count(n) => (0..*n).collect(),
            Devices::All => (0..available.max(1)).collect(),
            Devices::Indices(v) => v.clone(),
        };
        match chosen.iter().find(|i| **i >= available) {
            Some(i) => Err(format!("asks for device {i}, but the backend has {available} device(s) (0..{})", available.saturating_sub(1))),
            None => Ok(chosen),
        }
    }
}

impl Field for Devices {
    const TY: Ty = Ty::Any;
    const NULLABLE: bool = true;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::Null => Ok(Devices::All),
            Lit::Int(i) => Self::count(*i),
            Lit::Str(s) => Self::parse_text(s),
            Lit::List(items) => {
                let v = items
                    .iter()
                    .map(|i| match i {
                        Lit::Int(n) if *n >= 0 => Ok(*n as usize),
                        other => Err(format!("device indices must be whole numbers >= 0, found {}", other.to_yaml())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if v.is_empty() {
                    return Err("lists no device".into());
                }
                Self::indices(v)
            }
            other => Err(format!("must be a device count, -1, \"auto\" or device indices such as [0, 1], found {}", other.to_yaml())),
        }
    }
    fn to_lit(&self) -> Lit {
        match self {
            Devices::Count(n) => Lit::Int(*n as i64),
            Devices::All => Lit::Int(-1),
            Devices::Indices(v) => Lit::List(v.iter().map(|i| Lit::Int(*i as i64)).collect()),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, _: &dyn Context) -> TokenStream {
        match self {
            Devices::Count(n) => quote!(Devices::Count(#n)),
            Devices::All => quote!(Devices::All),
            Devices::Indices(v) => quote!(Devices::Indices(vec![#(#v),*])),
        }
    }
}

impl std::str::FromStr for Devices {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "null" | "None" => Ok(Devices::All),
            t if t.starts_with('[') && t.ends_with(']') => Self::parse_text(&t[1..t.len() - 1]),
            t => Self::parse_text(t),
        }
    }
}

/// A nested component that may also be written as a list holding it (cyto_dl's
/// `reader: [{_target_: MonaiBioReader, ...}]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<T>(pub T);

impl<T: Field> Field for Listed<T> {
    const TY: Ty = Ty::Any;
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::List(items) if items.len() == 1 => T::from_lit(&items[0]).map(Listed),
            Lit::List(items) => Err(format!("must hold one value, found {}", items.len())),
            one => T::from_lit(one).map(Listed),
        }
    }
    fn to_lit(&self) -> Lit {
        self.0.to_lit()
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let inner = self.0.literal(cx);
        quote!(Listed(#inner))
    }
}

/// A list of nested components (a `Compose`'s `transforms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Targets<T>(pub Vec<T>);

impl<T: Field> Field for Targets<T> {
    const TY: Ty = match T::TY {
        Ty::Target(k) => Ty::Targets(k),
        other => other,
    };
    fn from_lit(lit: &Lit) -> Result<Self, String> {
        match lit {
            Lit::List(items) => items.iter().map(T::from_lit).collect::<Result<_, _>>().map(Targets),
            other => Err(wrong(other, Self::TY)),
        }
    }
    fn to_lit(&self) -> Lit {
        Lit::List(self.0.iter().map(Field::to_lit).collect())
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn Context) -> TokenStream {
        let items = self.0.iter().map(|v| v.literal(cx));
        quote!(Targets(Vec::from([#(#items),*])))
    }
}
