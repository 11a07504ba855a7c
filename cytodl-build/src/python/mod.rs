//! Python's value semantics, once, for everything that imitates Python: OmegaConf's string
//! rendering of config values, Hydra's override grammar functions (`int()`, `float()`,
//! `sort()`), and the `eval` resolver. Each place keeps its own value type (a config
//! [`Value`](crate::config::node::Value), an override element with Hydra's quoting, an `eval`
//! value with tuples), and they share these primitives:
//!
//! - [`repr`]: `repr(float)`, `repr(str)`, `str()`/`repr()` of config values;
//! - [`parse`]: `int(str)` and `float(str)` (signs, underscores, `inf`/`nan`);
//! - [`num`]: numbers across `bool`/`int`/`float`, with Python's exact mixed-type `==` and `<`;
//! - [`compare`]: `==` and `<` of whole values (sequences, dicts, strings), for any value type
//!   that shows itself through [`compare::PyCompare`].

pub mod compare;
pub mod num;
pub mod parse;
pub mod repr;

pub use compare::PyCompare;
pub use num::Num;
pub use parse::{float_from_str, int_from_str};
pub use repr::{float_repr, py_repr, py_str, str_repr};
