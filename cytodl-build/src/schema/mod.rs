//! The target registry: each runtime component's accepted `_target_` names and typed parameters.
//! (Filled in by the compiler issue; the config front end does not depend on it.)
