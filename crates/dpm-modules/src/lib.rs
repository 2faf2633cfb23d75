//! dpm's built-in modules, one folder per module type: `classifier/` (the query
//! classifier), `routers/`, `filters/`. Each module implements the engine's traits and
//! declares itself with a [`dpm_engine::service::ModuleInfo`]; [`builtin_modules`] lists
//! the declarations (what `dpm --list-modules` prints).
//!
//! Modules must not touch sockets: the engine moves bytes, a module decides.

pub mod classifier;

use dpm_engine::service::ModuleInfo;

/// Every built-in module's declaration.
pub fn builtin_modules() -> Vec<&'static ModuleInfo> {
    vec![&classifier::INFO]
}
