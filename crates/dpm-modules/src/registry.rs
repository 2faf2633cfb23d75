//! The module registry: every built-in module's declaration, and the factories that
//! create a router or filter instance by module name from checked options.

use std::sync::Arc;

use dpm_engine::pipeline::Router;
use dpm_engine::service::{
    define_filter, define_monitor, FilterDefinition, ModuleInfo, ModuleType, Monitor, OptionValue,
    Options, Server,
};

use crate::{classifier, filters, monitors, routers};

/// Every built-in module's declaration: routers, filters, the classifier.
pub fn builtin_modules() -> Vec<&'static ModuleInfo> {
    let mut all = vec![
        &routers::readconnroute::INFO,
        &routers::readwritesplit::INFO,
    ];
    all.extend(filters::modules());
    all.push(&monitors::mariadbmon::INFO);
    all.push(&classifier::INFO);
    all
}

/// The process-wide instance of filter `name` of module `module`: made from `options`
/// (checked against the module's declaration) by the first worker to define it, the
/// same one for the others. An unknown module or a bad option is an error saying which.
pub fn create_filter(
    name: &str,
    module: &str,
    options: Vec<(String, OptionValue)>,
) -> Result<Arc<dyn FilterDefinition>, String> {
    let info = find(ModuleType::Filter, module)?;
    let options = Options::validate(info, options)?;
    let made_from = format!("module {module}, options {}", options.to_json());
    define_filter(name, &made_from, || filters::create(name, module, &options))
}

/// Creates a router instance of module `name` from the startup file's `options`. An
/// unknown module, an unknown option or a wrong type is an error saying which.
pub fn create_router(
    name: &str,
    options: Vec<(String, OptionValue)>,
) -> Result<Arc<dyn Router>, String> {
    let info = find(ModuleType::Router, name)?;
    let options = Options::validate(info, options)?;
    match name {
        "readconnroute" => routers::readconnroute::ReadConnRoute::create(&options),
        "readwritesplit" => routers::readwritesplit::ReadWriteSplit::create(&options),
        _ => Err(format!("router '{name}' has no factory")),
    }
}

/// The process-wide monitor `name` of module `module` over `servers`: made and started
/// from `options` (checked) by the first worker to define it, the same for the others
/// (and at a reload, the one running if nothing of it changed).
pub fn create_monitor(
    name: &str,
    module: &str,
    servers: Vec<Arc<Server>>,
    options: Vec<(String, OptionValue)>,
) -> Result<Arc<dyn Monitor>, String> {
    let info = find(ModuleType::Monitor, module)?;
    let options = Options::validate(info, options)?;
    let watched: Vec<String> = servers
        .iter()
        .map(|s| format!("{} at {}", s.name, s.address))
        .collect();
    let made_from = format!(
        "module {module}, servers {}, options {}",
        watched.join(", "),
        options.to_json()
    );
    let watching = servers.clone();
    define_monitor(name, &made_from, &watching, || match module {
        "mariadbmon" => monitors::mariadbmon::MariaDbMonitor::start(name, servers, &options),
        _ => Err(format!("monitor '{module}' has no factory")),
    })
}

/// The declaration of module `name` of type `kind`, or an error listing the known ones.
pub fn find(kind: ModuleType, name: &str) -> Result<&'static ModuleInfo, String> {
    let all = builtin_modules();
    all.iter()
        .find(|m| m.kind == kind && m.name == name)
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = all
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| m.name)
                .collect();
            format!(
                "unknown {kind} module '{name}' (known: {})",
                known.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routers_are_made_by_name_with_checked_options() {
        let r = create_router(
            "readconnroute",
            vec![("router_options".into(), OptionValue::Str("replica".into()))],
        )
        .unwrap();
        assert_eq!(r.info().name, "readconnroute");
        assert_eq!(
            create_router("schemarouter", vec![]).err().unwrap(),
            "unknown router module 'schemarouter' (known: readconnroute, readwritesplit)"
        );
        assert!(
            create_router("readconnroute", vec![("x".into(), OptionValue::Int(1))])
                .err()
                .unwrap()
                .contains("has no option 'x'")
        );
    }
}
