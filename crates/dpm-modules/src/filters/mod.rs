//! The built-in filters, each a module of the service pipeline: `qla` (query log),
//! `regex` (rewrite), `firewall`, `tee` (mirror to a second service) and `top` (slowest
//! statements per session); `common/` holds what they share. A built-in filter is made
//! once per process ([`create`], a `FilterDefinition`) and each worker makes its own
//! `Filter` from it.

pub mod common;
pub mod firewall;
pub mod qla;
pub mod regex_rewrite;
pub mod tee;
pub mod top;

use std::sync::Arc;

use dpm_engine::service::{FilterDefinition, ModuleInfo, Options};

/// Every built-in filter module's declaration.
pub fn modules() -> Vec<&'static ModuleInfo> {
    vec![
        &firewall::INFO,
        &qla::INFO,
        &regex_rewrite::INFO,
        &tee::INFO,
        &top::INFO,
    ]
}

/// Makes filter `name` of module `module` from its checked options.
pub fn create(
    name: &str,
    module: &str,
    options: &Options,
) -> Result<Arc<dyn FilterDefinition>, String> {
    match module {
        "firewall" => firewall::Firewall::create(name, options),
        "qla" => qla::QueryLog::create(name, options),
        "regex" => regex_rewrite::RegexRewrite::create(name, options),
        "tee" => tee::Tee::create(name, options),
        "top" => top::TopStatements::create(name, options),
        _ => Err(format!("filter module '{module}' has no factory")),
    }
}
