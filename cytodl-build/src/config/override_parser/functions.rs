//! Hydra's grammar functions (`hydra/_internal/grammar/grammar_functions.py`): `int()`,
//! `float()`, `str()`, `bool()`, `sort()`, `shuffle()`, `choice()`, `range()`, `interval()`,
//! `tag()`, `glob()`, with Python's semantics from [`crate::python`].

use super::Element;
use crate::python::compare::{self, PyCompare, Seen, StrKind};
use crate::python::{float_from_str, float_repr, int_from_str, str_repr, Num};

/// A value while evaluating functions: an element or one of Hydra's sweep objects.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PV {
    E(Element),
    Choice { items: Vec<PV>, simple: bool },
    Range { start: Element, stop: Element, step: Element },
    Interval { start: Element, end: Element },
    Glob,
}

impl PV {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            PV::E(e) => el_type_name(e),
            PV::Choice { .. } => "ChoiceSweep",
            PV::Range { .. } => "RangeSweep",
            PV::Interval { .. } => "IntervalSweep",
            PV::Glob => "Glob",
        }
    }
    fn is_sweep(&self) -> bool {
        matches!(self, PV::Choice { .. } | PV::Range { .. } | PV::Interval { .. })
    }
}

fn el_type_name(e: &Element) -> &'static str {
    match e {
        Element::Null => "NoneType",
        Element::Bool(_) => "bool",
        Element::Int(_) => "int",
        Element::Float(_) => "float",
        Element::Str { quoted: true, .. } => "QuotedString",
        Element::Str { .. } => "str",
        Element::List(_) => "list",
        Element::Dict(_) => "dict",
    }
}

/// Top-level function arguments lose their quotes (Functions.eval does this).
pub(super) fn unquote(v: PV) -> PV {
    match v {
        PV::E(Element::Str { value, quoted: true }) => PV::E(Element::Str { value, quoted: false }),
        other => other,
    }
}

type EvalErr = (&'static str, String);

fn type_err(m: impl Into<String>) -> EvalErr {
    ("TypeError", m.into())
}
fn value_err(m: impl Into<String>) -> EvalErr {
    ("ValueError", m.into())
}
fn assert_err() -> EvalErr {
    ("AssertionError", String::new())
}

#[derive(Clone, Copy, PartialEq)]
enum PK {
    VarPos,
    Pos,
    PosReq,
    KwOnly,
}

/// Parameter kinds accepted by a type check.
#[derive(Clone, Copy)]
enum Ty {
    /// CastType: anything but Glob.
    Cast,
    /// Optional[CastType]
    OptCast,
    /// choice(): str/int/float/bool/dict/list/ChoiceSweep
    ChoiceArg,
    Num,
    OptNum,
    /// tag(): str or Sweep
    StrOrSweep,
    OptSweep,
    /// shuffle()/sort(): ElementType, ChoiceSweep, RangeSweep
    ShufArg,
    OptChoiceRange,
    OptList,
    StrictBool,
    StrOrList,
    OptStrOrList,
}

fn ty_ok(ty: Ty, v: &PV) -> bool {
    let is_none = matches!(v, PV::E(Element::Null));
    let num = matches!(v, PV::E(Element::Int(_) | Element::Float(_) | Element::Bool(_)));
    let elem_nonnull = matches!(v, PV::E(e) if !matches!(e, Element::Null));
    match ty {
        Ty::Cast | Ty::OptCast => !matches!(v, PV::Glob),
        Ty::ChoiceArg => elem_nonnull || matches!(v, PV::Choice { .. }),
        Ty::Num => num,
        Ty::OptNum => num || is_none,
        Ty::StrOrSweep => matches!(v, PV::E(Element::Str { .. })) || v.is_sweep(),
        Ty::OptSweep => is_none || v.is_sweep(),
        Ty::ShufArg => elem_nonnull || matches!(v, PV::Choice { .. } | PV::Range { .. }),
        Ty::OptChoiceRange => is_none || matches!(v, PV::Choice { .. } | PV::Range { .. }),
        Ty::OptList => is_none || matches!(v, PV::E(Element::List(_))),
        Ty::StrictBool => matches!(v, PV::E(Element::Bool(_))),
        Ty::StrOrList => matches!(v, PV::E(Element::Str { .. } | Element::List(_))),
        Ty::OptStrOrList => is_none || matches!(v, PV::E(Element::Str { .. } | Element::List(_))),
    }
}

fn ty_name(ty: Ty) -> &'static str {
    match ty {
        Ty::Cast => "Union[str, int, float, bool, List[Any], Dict[str, Any], QuotedString, NoneType, Sweep]",
        Ty::OptCast => "Optional[Union[str, int, float, bool, List[Any], Dict[str, Any], QuotedString, NoneType, Sweep]]",
        Ty::ChoiceArg => "Union[str, int, float, bool, Dict[Any, Any], List[Any], ChoiceSweep]",
        Ty::Num => "Union[int, float]",
        Ty::OptNum => "Optional[Union[int, float]]",
        Ty::StrOrSweep => "Union[str, Sweep]",
        Ty::OptSweep => "Optional[Sweep]",
        Ty::ShufArg => "Union[str, int, bool, float, list, dict, ChoiceSweep, RangeSweep]",
        Ty::OptChoiceRange => "Optional[Union[ChoiceSweep, RangeSweep]]",
        Ty::OptList => "Optional[List[Any]]",
        Ty::StrictBool => "bool",
        Ty::StrOrList => "Union[List[str], str]",
        Ty::OptStrOrList => "Optional[Union[List[str], str]]",
    }
}

const FUNCTIONS: &str = "bool,choice,float,glob,int,interval,range,shuffle,sort,str,tag";

/// Bound arguments: (param name, value) in parameter order; var-positional as a list.
struct Bound {
    var: Vec<PV>,
    named: Vec<(&'static str, PV)>,
}

impl Bound {
    fn get(&mut self, name: &str) -> Option<PV> {
        self.named.iter().position(|(n, _)| *n == name).map(|i| self.named.remove(i).1)
    }
}

/// Python's `inspect.Signature.bind` plus Hydra's per-parameter type check.
fn bind(params: &[(&'static str, PK, Ty)], pos: Vec<PV>, kw: Vec<(String, PV)>) -> Result<Bound, EvalErr> {
    let mut b = Bound { var: Vec::new(), named: Vec::new() };
    let mut pos = pos.into_iter();
    for (name, kind, _) in params {
        match kind {
            PK::VarPos => b.var.extend(pos.by_ref()),
            PK::Pos | PK::PosReq => {
                if let Some(v) = pos.next() {
                    b.named.push((name, v));
                }
            }
            PK::KwOnly => {}
        }
    }
    if pos.next().is_some() {
        return Err(type_err("too many positional arguments"));
    }
    for (k, v) in kw {
        let p = params.iter().find(|(n, kind, _)| *n == k && *kind != PK::VarPos);
        match p {
            None => return Err(type_err(format!("got an unexpected keyword argument '{}'", k))),
            Some((n, _, _)) => {
                if b.named.iter().any(|(bn, _)| bn == n) {
                    return Err(type_err(format!("multiple values for argument '{}'", n)));
                }
                b.named.push((n, v));
            }
        }
    }
    for (name, kind, _) in params {
        if *kind == PK::PosReq && !b.named.iter().any(|(n, _)| n == name) {
            return Err(type_err(format!("missing a required argument: '{}'", name)));
        }
    }
    // Type checks in parameter order.
    for (name, kind, ty) in params {
        if *kind == PK::VarPos {
            for (i, v) in b.var.iter().enumerate() {
                if !ty_ok(*ty, v) {
                    return Err(type_err(format!("mismatch type argument {}[{}]: {} is incompatible with {}", name, i, v.type_name(), ty_name(*ty))));
                }
            }
        } else if let Some((_, v)) = b.named.iter().find(|(n, _)| n == name) {
            if !ty_ok(*ty, v) {
                return Err(type_err(format!("mismatch type argument {}: {} is incompatible with {}", name, v.type_name(), ty_name(*ty))));
            }
        }
    }
    Ok(b)
}

#[derive(Clone, Copy, PartialEq)]
enum Cast {
    Int,
    Float,
    Str,
    Bool,
}

pub(super) fn call(name: &str, pos: Vec<PV>, kw: Vec<(String, PV)>) -> Result<PV, EvalErr> {
    use PK::*;
    let cast = match name {
        "int" => Some(Cast::Int),
        "float" => Some(Cast::Float),
        "str" => Some(Cast::Str),
        "bool" => Some(Cast::Bool),
        _ => None,
    };
    if let Some(c) = cast {
        let mut b = bind(&[("args", VarPos, Ty::Cast), ("value", KwOnly, Ty::OptCast)], pos, kw)?;
        let value = b.get("value").filter(|v| *v != PV::E(Element::Null));
        let v = match (b.var.len(), value) {
            (n, Some(_)) if n > 0 => return Err(type_err("cannot use both position and named arguments")),
            (_, Some(v)) => v,
            (0, None) => return Err(type_err("No positional args or value specified")),
            (1, None) => b.var.remove(0),
            _ => simple_choice(b.var)?,
        };
        return cast_pv(c, v);
    }
    match name {
        "choice" => {
            let b = bind(&[("args", VarPos, Ty::ChoiceArg)], pos, kw)?;
            let mut args = b.var;
            if args.is_empty() {
                return Err(value_err("empty choice is not legal"));
            }
            if args.len() == 1 {
                if let PV::Choice { simple, .. } = &mut args[0] {
                    if *simple {
                        *simple = false;
                        return Ok(args.remove(0));
                    }
                    return Err(value_err("nesting choices is not supported"));
                }
            }
            Ok(PV::Choice { items: args, simple: false })
        }
        "range" => {
            let mut b = bind(&[("start", PosReq, Ty::Num), ("stop", Pos, Ty::OptNum), ("step", Pos, Ty::Num)], pos, kw)?;
            let start = pv_el(b.get("start"));
            let stop = pv_el(b.get("stop"));
            let step = b.get("step").map_or(Element::Int(1), |v| pv_el(Some(v)));
            let (start, stop) = if stop == Element::Null { (Element::Int(0), start) } else { (start, stop) };
            Ok(PV::Range { start, stop, step })
        }
        "interval" => {
            let mut b = bind(&[("start", PosReq, Ty::Num), ("end", PosReq, Ty::Num)], pos, kw)?;
            let start = cast_el(Cast::Float, &pv_el(b.get("start")))?;
            let end = cast_el(Cast::Float, &pv_el(b.get("end")))?;
            Ok(PV::Interval { start, end })
        }
        "tag" => {
            let mut b = bind(&[("args", VarPos, Ty::StrOrSweep), ("sweep", KwOnly, Ty::OptSweep)], pos, kw)?;
            let mut args = b.var.split_off(0);
            if args.is_empty() {
                return Err(value_err("Not enough arguments to tag, must take at least a sweep"));
            }
            if let Some(s) = b.get("sweep").filter(|v| *v != PV::E(Element::Null)) {
                args.push(s);
            }
            let last = args.pop().unwrap_or(PV::E(Element::Null));
            if !last.is_sweep() {
                return Err(value_err("Last argument to tag() must be a choice(), range() or interval(), got NoneType"));
            }
            for t in &args {
                if !matches!(t, PV::E(Element::Str { .. })) {
                    return Err(value_err(format!("tag arguments type must be string, got {}", t.type_name())));
                }
            }
            Ok(last)
        }
        "shuffle" | "sort" => {
            let is_sort = name == "sort";
            let mut params = vec![("args", VarPos, Ty::ShufArg), ("sweep", KwOnly, Ty::OptChoiceRange), ("list", KwOnly, Ty::OptList)];
            if is_sort {
                params.push(("reverse", KwOnly, Ty::StrictBool));
            }
            let mut b = bind(&params, pos, kw)?;
            let reverse = matches!(b.get("reverse"), Some(PV::E(Element::Bool(true))));
            let list = b.get("list").filter(|v| *v != PV::E(Element::Null));
            let sweep = b.get("sweep").filter(|v| *v != PV::E(Element::Null));
            let mut args = b.var.split_off(0);
            if let Some(l) = list {
                args = vec![l];
            } else if let Some(s) = sweep {
                if is_sort {
                    return sort_sweep(s, reverse);
                }
                args = vec![s];
            }
            if args.len() == 1 {
                let arg = args.remove(0);
                return match arg {
                    PV::Choice { .. } | PV::Range { .. } if is_sort => sort_sweep(arg, reverse),
                    PV::Choice { .. } | PV::Range { .. } => Ok(arg),
                    // shuffle(list): the identity is one of the equally likely outcomes.
                    PV::E(Element::List(items)) if is_sort => {
                        let sorted = py_sorted(items.into_iter().map(PV::E).collect(), reverse)?;
                        Ok(PV::E(Element::List(sorted.into_iter().filter_map(pv_to_el).collect())))
                    }
                    PV::E(Element::List(_)) => Ok(arg),
                    PV::E(e) if is_sort => Ok(PV::E(e)),
                    PV::E(e) => Ok(PV::E(Element::List(vec![e]))),
                    other => Err(type_err(format!("Invalid arguments: ({},)", other.type_name()))),
                };
            }
            if !is_sort {
                let mut c = simple_choice(args)?;
                if let PV::Choice { simple, .. } = &mut c {
                    *simple = true;
                }
                return Ok(c);
            }
            for a in &args {
                if !matches!(a, PV::E(Element::Int(_) | Element::Float(_) | Element::Bool(_) | Element::Str { .. })) {
                    let reprs: Vec<String> = args.iter().map(py_repr).collect();
                    return Err(type_err(format!("Invalid arguments: ({})", reprs.join(", "))));
                }
            }
            if args.is_empty() {
                return Err(value_err("empty sort input"));
            }
            let sorted = py_sorted(args, reverse)?;
            Ok(PV::Choice { items: sorted, simple: true })
        }
        "glob" => {
            bind(&[("include", PosReq, Ty::StrOrList), ("exclude", Pos, Ty::OptStrOrList)], pos, kw)?;
            Ok(PV::Glob)
        }
        _ => Err(("HydraException", format!("Unknown function '{}'\nAvailable: {}\n", name, FUNCTIONS))),
    }
}

/// Approximation of Python's `repr()` for error messages.
fn py_repr(v: &PV) -> String {
    fn el(e: &Element) -> String {
        match e {
            Element::Null => "None".into(),
            Element::Bool(b) => (if *b { "True" } else { "False" }).into(),
            Element::Int(i) => i.to_string(),
            Element::Float(f) => float_repr(*f),
            Element::Str { value, quoted: false } => str_repr(value),
            Element::Str { value, quoted: true } => {
                format!("QuotedString(text={}, quote=<Quote.single: 0>)", str_repr(value))
            }
            Element::List(items) => {
                format!("[{}]", items.iter().map(el).collect::<Vec<_>>().join(", "))
            }
            Element::Dict(items) => format!("{{{}}}", items.iter().map(|(k, v)| format!("{}: {}", str_repr(k), el(v))).collect::<Vec<_>>().join(", ")),
        }
    }
    match v {
        PV::E(e) => el(e),
        other => format!("{}(...)", other.type_name()),
    }
}

fn pv_el(v: Option<PV>) -> Element {
    match v {
        Some(PV::E(e)) => e,
        _ => Element::Null,
    }
}

fn pv_to_el(v: PV) -> Option<Element> {
    match v {
        PV::E(e) => Some(e),
        _ => None,
    }
}

/// `_list_to_simple_choice`: every item must be a plain element (not a sweep).
fn simple_choice(args: Vec<PV>) -> Result<PV, EvalErr> {
    if args.iter().any(|a| !matches!(a, PV::E(_))) {
        return Err(assert_err());
    }
    Ok(PV::Choice { items: args, simple: true })
}

fn sort_sweep(s: PV, reverse: bool) -> Result<PV, EvalErr> {
    match s {
        PV::Choice { items, simple } => Ok(PV::Choice { items: py_sorted(items, reverse)?, simple }),
        other => Ok(other),
    }
}

fn cast_pv(c: Cast, v: PV) -> Result<PV, EvalErr> {
    match v {
        PV::E(e) => Ok(PV::E(cast_el(c, &e)?)),
        PV::Choice { items, simple } => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let r = cast_pv(c, it)?;
                if matches!(r, PV::E(Element::Null)) || !matches!(r, PV::E(_)) {
                    return Err(assert_err());
                }
                out.push(r);
            }
            Ok(PV::Choice { items: out, simple })
        }
        PV::Range { start, stop, step } => {
            if !matches!(c, Cast::Int | Cast::Float) {
                return Err(value_err("Range can only be cast to int or float"));
            }
            Ok(PV::Range { start: cast_el(c, &start)?, stop: cast_el(c, &stop)?, step: cast_el(c, &step)? })
        }
        PV::Interval { start, end } => match c {
            Cast::Str => Err(value_err("Intervals cannot be cast to str")),
            Cast::Bool => Err(value_err("Intervals cannot be cast to bool")),
            _ => Ok(PV::Interval { start: cast_el(c, &start)?, end: cast_el(c, &end)? }),
        },
        PV::Glob => Err(assert_err()),
    }
}

fn cast_el(c: Cast, e: &Element) -> Result<Element, EvalErr> {
    match e {
        Element::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                out.push(cast_el(c, it)?);
            }
            return Ok(Element::List(out));
        }
        Element::Dict(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (k, v) in items {
                out.push((k.clone(), cast_el(c, v)?));
            }
            return Ok(Element::Dict(out));
        }
        _ => {}
    }
    Ok(match c {
        Cast::Int => Element::Int(match e {
            Element::Bool(b) => i64::from(*b),
            Element::Int(i) => *i,
            Element::Float(f) => {
                if f.is_nan() {
                    return Err(value_err("cannot convert float NaN to integer"));
                }
                if f.is_infinite() {
                    return Err(("OverflowError", "cannot convert float infinity to integer".into()));
                }
                let t = f.trunc();
                let limit = 9_223_372_036_854_775_808.0_f64; // 2^63
                if !(-limit..limit).contains(&t) {
                    return Err(("OverflowError", "integer out of range".into()));
                }
                t as i64
            }
            Element::Str { value, .. } => int_from_str(value).ok_or_else(|| value_err(format!("invalid literal for int() with base 10: '{}'", value)))?,
            _ => return Err(assert_err()),
        }),
        Cast::Float => Element::Float(match e {
            Element::Bool(b) => f64::from(u8::from(*b)),
            Element::Int(i) => *i as f64,
            Element::Float(f) => *f,
            Element::Str { value, .. } => float_from_str(value).ok_or_else(|| value_err(format!("could not convert string to float: '{}'", value)))?,
            _ => return Err(assert_err()),
        }),
        Cast::Str => Element::Str {
            value: match e {
                Element::Bool(b) => b.to_string(),
                Element::Int(i) => i.to_string(),
                Element::Float(f) => float_repr(*f),
                Element::Str { value, .. } => value.clone(),
                _ => return Err(assert_err()),
            },
            quoted: false,
        },
        Cast::Bool => Element::Bool(match e {
            Element::Null => false,
            Element::Bool(b) => *b,
            Element::Int(i) => *i != 0,
            Element::Float(f) => *f != 0.0,
            Element::Str { value, .. } => match value.to_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(value_err(format!("Cannot cast '{}' to bool", value))),
            },
            _ => return Err(assert_err()),
        }),
    })
}

impl PyCompare for Element {
    fn seen(&self) -> Seen<'_, Self> {
        match self {
            Element::Null => Seen::None,
            Element::Bool(b) => Seen::Number(Num::Int(i64::from(*b))),
            Element::Int(i) => Seen::Number(Num::Int(*i)),
            Element::Float(f) => Seen::Number(Num::Float(*f)),
            Element::Str { value, quoted } => Seen::Str(value, if *quoted { StrKind::Quoted } else { StrKind::Plain }),
            Element::List(items) => Seen::List(items),
            Element::Dict(_) => Seen::Dict,
        }
    }
    fn type_name(&self) -> &'static str {
        el_type_name(self)
    }
    fn dict_eq(&self, other: &Self) -> bool {
        let (Element::Dict(x), Element::Dict(y)) = (self, other) else { return false };
        x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, w)| k == k2 && compare::eq(v, w)))
    }
}

/// Python `a < b`; Err(TypeError) for unorderable types.
fn py_lt(a: &PV, b: &PV) -> Result<bool, EvalErr> {
    match (a, b) {
        (PV::E(x), PV::E(y)) => compare::lt(x, y).map_err(|u| type_err(u.message("<"))),
        _ => Err(type_err(format!("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name()))),
    }
}

/// Python's `sorted(items, reverse=...)`: stable, only `<`, errors on unorderable pairs.
fn py_sorted(mut items: Vec<PV>, reverse: bool) -> Result<Vec<PV>, EvalErr> {
    if reverse {
        items.reverse();
    }
    let mut out = merge_sort(items)?;
    if reverse {
        out.reverse();
    }
    Ok(out)
}

fn merge_sort(mut v: Vec<PV>) -> Result<Vec<PV>, EvalErr> {
    if v.len() <= 1 {
        return Ok(v);
    }
    let right = v.split_off(v.len() / 2);
    let left = merge_sort(v)?;
    let right = merge_sort(right)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut l = left.into_iter().peekable();
    let mut r = right.into_iter().peekable();
    loop {
        let take_right = match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => py_lt(b, a)?,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => break,
        };
        let next = if take_right { r.next() } else { l.next() };
        out.extend(next);
    }
    Ok(out)
}
