//! Module options: the values a startup file gives a module, checked against the
//! module's declared [`OptionSpec`]s before anything starts. An unknown option or a
//! value of the wrong type is an error naming the module, the option and what it takes.

use std::collections::BTreeMap;

use super::module::{ModuleInfo, OptionKind};

/// An option's value as the startup file wrote it.
#[derive(Clone, PartialEq, Debug)]
pub enum OptionValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A table, as JSON.
    Table(serde_json::Value),
}

impl OptionValue {
    fn type_name(&self) -> &'static str {
        match self {
            OptionValue::Bool(_) => "boolean",
            OptionValue::Int(_) => "integer",
            OptionValue::Str(_) => "string",
            OptionValue::Table(_) => "table",
        }
    }
}

/// Checked options of one module instance, defaults filled in.
#[derive(Clone, Default, Debug)]
pub struct Options {
    values: BTreeMap<String, OptionValue>,
}

impl Options {
    /// Checks `given` against `info`'s declarations and fills in defaults.
    pub fn validate(
        info: &ModuleInfo,
        given: impl IntoIterator<Item = (String, OptionValue)>,
    ) -> Result<Options, String> {
        let mut values = BTreeMap::new();
        for (name, value) in given {
            let Some(spec) = info.option(&name) else {
                let known: Vec<&str> = info.options.iter().map(|o| o.name).collect();
                return Err(format!(
                    "{} '{}' has no option '{name}' (its options: {})",
                    info.kind,
                    info.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            let fits = match (&spec.kind, &value) {
                (OptionKind::Bool, OptionValue::Bool(_)) => true,
                (OptionKind::Int | OptionKind::Millis, OptionValue::Int(_)) => true,
                (OptionKind::Str, OptionValue::Str(_)) => true,
                (OptionKind::Table, OptionValue::Table(_)) => true,
                (OptionKind::Enum(allowed), OptionValue::Str(s)) => allowed.contains(&s.as_str()),
                _ => false,
            };
            if !fits {
                let shown = match &value {
                    OptionValue::Str(s) => format!("'{s}'"),
                    other => other.type_name().to_string(),
                };
                return Err(format!(
                    "{} '{}': option '{name}' must be {}, not {shown}",
                    info.kind, info.name, spec.kind
                ));
            }
            values.insert(name, value);
        }
        for spec in info.options {
            if let (false, Some(default)) = (values.contains_key(spec.name), spec.default) {
                let value = match spec.kind {
                    OptionKind::Bool => OptionValue::Bool(default == "true"),
                    OptionKind::Int | OptionKind::Millis => {
                        OptionValue::Int(default.parse().unwrap_or(0))
                    }
                    OptionKind::Str | OptionKind::Enum(_) => OptionValue::Str(default.to_string()),
                    OptionKind::Table => OptionValue::Table(
                        serde_json::from_str(default).unwrap_or(serde_json::Value::Null),
                    ),
                };
                values.insert(spec.name.to_string(), value);
            }
        }
        Ok(Options { values })
    }

    /// A string (or enum) option.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(OptionValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer option.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.values.get(name) {
            Some(OptionValue::Int(n)) => Some(*n),
            _ => None,
        }
    }

    /// A boolean option.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.values.get(name) {
            Some(OptionValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A table option, as JSON.
    pub fn table(&self, name: &str) -> Option<&serde_json::Value> {
        match self.values.get(name) {
            Some(OptionValue::Table(t)) => Some(t),
            _ => None,
        }
    }

    /// The options as JSON (for diagnostics).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .values
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    OptionValue::Bool(b) => serde_json::Value::from(*b),
                    OptionValue::Int(n) => serde_json::Value::from(*n),
                    OptionValue::Str(s) => serde_json::Value::from(s.as_str()),
                    OptionValue::Table(t) => t.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::module::{Maturity, ModuleType, OptionSpec};

    static INFO: ModuleInfo = ModuleInfo {
        kind: ModuleType::Router,
        name: "demo",
        maturity: Maturity::Alpha,
        version: "1.0.0",
        description: "test",
        options: &[
            OptionSpec {
                name: "router_options",
                kind: OptionKind::Enum(&["primary", "replica", "running"]),
                default: Some("running"),
                description: "role",
            },
            OptionSpec {
                name: "max",
                kind: OptionKind::Int,
                default: None,
                description: "n",
            },
        ],
    };

    #[test]
    fn defaults_fill_in_and_bad_options_are_named() {
        let o = Options::validate(&INFO, []).unwrap();
        assert_eq!(o.str("router_options"), Some("running"));
        assert_eq!(o.int("max"), None);
        let o = Options::validate(&INFO, [("max".to_string(), OptionValue::Int(3))]).unwrap();
        assert_eq!(o.int("max"), Some(3));

        let e = Options::validate(&INFO, [("maxx".to_string(), OptionValue::Int(3))]).unwrap_err();
        assert_eq!(
            e,
            "router 'demo' has no option 'maxx' (its options: router_options, max)"
        );
        let e =
            Options::validate(&INFO, [("max".to_string(), OptionValue::Bool(true))]).unwrap_err();
        assert_eq!(
            e,
            "router 'demo': option 'max' must be integer, not boolean"
        );
        let e = Options::validate(
            &INFO,
            [(
                "router_options".to_string(),
                OptionValue::Str("master".into()),
            )],
        )
        .unwrap_err();
        assert_eq!(
            e,
            "router 'demo': option 'router_options' must be one of primary, replica, running, not 'master'"
        );
    }
}
