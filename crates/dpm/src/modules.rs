//! `dpm --list-modules`: every module dpm has — the built-ins of `dpm-modules` and the
//! Lua filter adapter of `dpm-lua` — as a table or as JSON.

use dpm_engine::service::ModuleInfo;

/// Every module, in listing order.
fn all() -> Vec<&'static ModuleInfo> {
    let mut modules = dpm_modules::builtin_modules();
    modules.push(&dpm_lua::services::LUA_FILTER_INFO);
    modules
}

/// Every module as JSON (what the admin API's `GET /v1/modules` lists).
pub fn json_list() -> Vec<serde_json::Value> {
    all().iter().map(|m| to_json(m)).collect()
}

/// The listing in `format` (`table` or `json`).
pub fn listing(format: &str) -> String {
    let modules = all();
    if format == "json" {
        return serde_json::to_string_pretty(&json_list()).unwrap_or_default() + "\n";
    }
    let rows: Vec<[String; 5]> = modules
        .iter()
        .map(|m| {
            [
                m.kind.to_string(),
                m.name.to_string(),
                m.maturity.to_string(),
                m.version.to_string(),
                m.description.to_string(),
            ]
        })
        .collect();
    let header = ["TYPE", "NAME", "MATURITY", "VERSION", "DESCRIPTION"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn to_json(m: &ModuleInfo) -> serde_json::Value {
    serde_json::json!({
        "type": m.kind.as_str(),
        "name": m.name,
        "maturity": m.maturity.as_str(),
        "version": m.version,
        "description": m.description,
        "options": m.options.iter().map(|o| serde_json::json!({
            "name": o.name,
            "type": o.kind.to_string(),
            "default": o.default,
            "description": o.description,
        })).collect::<Vec<_>>(),
    })
}
