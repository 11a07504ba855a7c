//! Numbers as Python compares them: `bool` is an `int`, and `int` against `float` is exact
//! (`2**53 + 1 != float(2**53)`), not a conversion to `f64`.

use std::cmp::Ordering;

/// A Python number (`True` is `Int(1)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// The value as a float (Python's `float(x)`).
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Python `==`.
    pub fn py_eq(self, other: Num) -> bool {
        match (self, other) {
            (Num::Int(x), Num::Int(y)) => x == y,
            (Num::Float(x), Num::Float(y)) => x == y,
            (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => f.is_finite() && f.fract() == 0.0 && f as i128 == i as i128,
        }
    }

    /// Python's order; `None` when a NaN makes every comparison false.
    pub fn py_cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(p), Num::Int(q)) => Some(p.cmp(&q)),
            (Num::Int(p), Num::Float(q)) => cmp_int_float(p, q),
            (Num::Float(p), Num::Int(q)) => cmp_int_float(q, p).map(Ordering::reverse),
            (Num::Float(p), Num::Float(q)) => p.partial_cmp(&q),
        }
    }
}

/// `i` against `f`, exactly (an `i64` need not fit an `f64`).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f.is_infinite() {
        return Some(if f > 0.0 { Ordering::Less } else { Ordering::Greater });
    }
    // |f| < 2^63 here or the integer part decides; i128 holds both sides exactly.
    let whole = f.trunc();
    if whole.abs() >= 2f64.powi(100) {
        return Some(if f > 0.0 { Ordering::Less } else { Ordering::Greater });
    }
    Some((i as i128).cmp(&(whole as i128)).then(if f.fract() > 0.0 {
        Ordering::Less
    } else if f.fract() < 0.0 {
        Ordering::Greater
    } else {
        Ordering::Equal
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_comparisons_are_exact() {
        let big = 1i64 << 53;
        assert!(!Num::Int(big + 1).py_eq(Num::Float(big as f64)));
        assert_eq!(Num::Int(big + 1).py_cmp(Num::Float(big as f64)), Some(Ordering::Greater));
        assert!(Num::Int(3).py_eq(Num::Float(3.0)));
        assert_eq!(Num::Int(2).py_cmp(Num::Float(2.5)), Some(Ordering::Less));
        assert_eq!(Num::Int(-2).py_cmp(Num::Float(-2.5)), Some(Ordering::Greater));
        assert_eq!(Num::Int(i64::MAX).py_cmp(Num::Float(f64::INFINITY)), Some(Ordering::Less));
        assert_eq!(Num::Float(f64::NAN).py_cmp(Num::Int(1)), None);
        assert!(!Num::Float(f64::NAN).py_eq(Num::Float(f64::NAN)));
    }
}
