//! Python's `==` and `<` once, for every value type that imitates Python: a value shows itself
//! as Python sees it ([`Seen`]) and [`eq`] / [`cmp`] do the rest — numbers across `bool`, `int`
//! and `float` exactly, strings by code point, lists and tuples element by element (the first
//! unequal pair decides, then the length), dicts equal by keys and values, everything else
//! unorderable (Python's `TypeError`).

use std::cmp::Ordering;

use super::Num;

/// What kind of string: Hydra's override grammar keeps a quoted string apart from a plain one
/// (`QuotedString` is not `str`: they are never equal and never ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    Plain,
    Quoted,
}

/// A value as Python compares it.
pub enum Seen<'a, T> {
    None,
    Number(Num),
    Str(&'a str, StrKind),
    List(&'a [T]),
    Tuple(&'a [T]),
    /// A dict: equality through [`PyCompare::dict_eq`], no order.
    Dict,
    /// Anything else (Hydra's sweeps): equal to nothing of another kind, never ordered.
    Other,
}

/// A value type Python's comparisons apply to.
pub trait PyCompare: Sized {
    fn seen(&self) -> Seen<'_, Self>;
    /// Python's name of the value's type, for the `TypeError` message.
    fn type_name(&self) -> &'static str;
    /// `==` of two dicts (called only when both are [`Seen::Dict`]).
    fn dict_eq(&self, other: &Self) -> bool;
}

/// Python `a == b`.
pub fn eq<T: PyCompare>(a: &T, b: &T) -> bool {
    match (a.seen(), b.seen()) {
        (Seen::Number(x), Seen::Number(y)) => x.py_eq(y),
        (Seen::None, Seen::None) => true,
        (Seen::Str(x, kx), Seen::Str(y, ky)) => kx == ky && x == y,
        (Seen::List(x), Seen::List(y)) | (Seen::Tuple(x), Seen::Tuple(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q)),
        (Seen::Dict, Seen::Dict) => a.dict_eq(b),
        _ => false,
    }
}

/// Python's order of `a` and `b`: `Ok(None)` where a NaN makes `<`, `<=`, `>` and `>=` all
/// false, `Err(Unorderable)` where Python raises `TypeError`.
pub fn cmp<T: PyCompare>(a: &T, b: &T) -> Result<Option<Ordering>, Unorderable> {
    match (a.seen(), b.seen()) {
        (Seen::Number(x), Seen::Number(y)) => Ok(x.py_cmp(y)),
        (Seen::Str(x, StrKind::Plain), Seen::Str(y, StrKind::Plain)) => Ok(Some(x.cmp(y))),
        (Seen::List(x), Seen::List(y)) | (Seen::Tuple(x), Seen::Tuple(y)) => match x.iter().zip(y).find(|(p, q)| !eq(*p, *q)) {
            Some((p, q)) => cmp(p, q),
            None => Ok(Some(x.len().cmp(&y.len()))),
        },
        _ => Err(Unorderable { left: a.type_name(), right: b.type_name() }),
    }
}

/// Python's `a < b`.
pub fn lt<T: PyCompare>(a: &T, b: &T) -> Result<bool, Unorderable> {
    cmp(a, b).map(|o| o == Some(Ordering::Less))
}

/// Two values without an order (Python raises `TypeError`); inside sequences, the first pair
/// that has none, as Python names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unorderable {
    pub left: &'static str,
    pub right: &'static str,
}

impl Unorderable {
    /// Python's message for the operator `op` (`<`, `>=`...).
    pub fn message(&self, op: &str) -> String {
        format!("'{op}' not supported between instances of '{}' and '{}'", self.left, self.right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal value type: what the override grammar and `eval` both have.
    #[derive(Debug)]
    enum V {
        N(Num),
        S(&'static str, StrKind),
        L(Vec<V>),
        T(Vec<V>),
        D(Vec<(&'static str, V)>),
        Nothing,
    }

    impl PyCompare for V {
        fn seen(&self) -> Seen<'_, Self> {
            match self {
                V::N(n) => Seen::Number(*n),
                V::S(s, k) => Seen::Str(s, *k),
                V::L(x) => Seen::List(x),
                V::T(x) => Seen::Tuple(x),
                V::D(_) => Seen::Dict,
                V::Nothing => Seen::None,
            }
        }
        fn type_name(&self) -> &'static str {
            match self {
                V::N(Num::Int(_)) => "int",
                V::N(Num::Float(_)) => "float",
                V::S(..) => "str",
                V::L(_) => "list",
                V::T(_) => "tuple",
                V::D(_) => "dict",
                V::Nothing => "NoneType",
            }
        }
        fn dict_eq(&self, other: &Self) -> bool {
            let (V::D(x), V::D(y)) = (self, other) else { return false };
            x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, w)| k == k2 && eq(v, w)))
        }
    }

    fn int(i: i64) -> V {
        V::N(Num::Int(i))
    }

    #[test]
    fn equality_as_python() {
        assert!(eq(&int(1), &V::N(Num::Float(1.0))), "1 == 1.0");
        assert!(!eq(&V::L(vec![int(1)]), &V::T(vec![int(1)])), "[1] != (1,)");
        assert!(!eq(&V::S("a", StrKind::Plain), &V::S("a", StrKind::Quoted)), "Hydra: str != QuotedString");
        assert!(eq(&V::D(vec![("a", int(1)), ("b", int(2))]), &V::D(vec![("b", int(2)), ("a", V::N(Num::Float(1.0)))])));
        assert!(eq(&V::Nothing, &V::Nothing) && !eq(&V::Nothing, &int(0)));
    }

    #[test]
    fn order_as_python() {
        assert_eq!(cmp(&V::L(vec![int(1), int(2)]), &V::L(vec![int(1)])), Ok(Some(Ordering::Greater)), "[1, 2] > [1]");
        assert_eq!(lt(&V::S("B", StrKind::Plain), &V::S("a", StrKind::Plain)), Ok(true), "by code point");
        assert_eq!(cmp(&V::L(vec![V::N(Num::Float(f64::NAN))]), &V::L(vec![int(1)])), Ok(None), "[nan] <= [1] is False");
        assert!(cmp(&V::S("a", StrKind::Quoted), &V::S("b", StrKind::Quoted)).is_err());
        assert_eq!(cmp(&V::L(vec![int(1)]), &V::T(vec![int(1)])), Err(Unorderable { left: "list", right: "tuple" }));
        assert_eq!(cmp(&V::D(vec![]), &V::D(vec![])), Err(Unorderable { left: "dict", right: "dict" }));
        let inner = cmp(&V::L(vec![int(1)]), &V::L(vec![V::S("1", StrKind::Plain)])).unwrap_err();
        assert_eq!(inner.message("<"), "'<' not supported between instances of 'int' and 'str'", "the inner pair, as Python names it");
    }
}
