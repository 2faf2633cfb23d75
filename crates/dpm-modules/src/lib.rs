//! dpm's built-in modules, one folder per module type: `classifier/` (the query
//! classifier), `routers/`, `filters/`, `monitors/`. Each module implements the engine's traits and
//! declares itself with a [`dpm_engine::service::ModuleInfo`]; [`builtin_modules`] lists
//! the declarations (what `dpm --list-modules` prints).
//!
//! Modules must not touch sockets: the engine moves bytes, a module decides.

pub mod classifier;
pub mod filters;
pub mod monitors;
pub mod registry;
pub mod routers;

pub use registry::{builtin_modules, create_filter, create_monitor, create_router};
