//! Services: what a listener serves above raw DPM callbacks — a router, an ordered filter
//! chain and a set of servers — and the module declarations they are made of.

mod module;

pub use module::{Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec};
