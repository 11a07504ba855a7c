//! Every component, by concern. Each is declared once, with [`crate::component!`]; the kinds
//! with more than one member are exhaustive enums ([`crate::kind!`]).

pub mod data;
pub mod gan;
pub mod loss;
pub mod metric;
pub mod model;
pub mod optim;
pub mod postprocess;
pub mod trainer;
pub mod transforms;

pub use data::*;
pub use gan::*;
pub use loss::*;
pub use metric::*;
pub use model::*;
pub use optim::*;
pub use postprocess::*;
pub use trainer::*;
pub use transforms::*;
