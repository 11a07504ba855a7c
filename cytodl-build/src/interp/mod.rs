//! OmegaConf 2.3 interpolation: the grammar, resolution over the config tree, the resolvers
//! (`oc.*`, `now`, `hydra:`, `kv_to_dict`, `eval`), and `_aux` removal.

pub mod eval;
pub mod grammar;
pub mod resolve;
mod resolvers;

pub use resolve::{remove_aux, resolve_config, resolve_standalone, select_resolved, InterpError, ResolveOptions};
