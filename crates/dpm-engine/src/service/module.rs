//! What every module declares about itself, mirroring MaxScale's `MXS_DECLARE_MODULE`:
//! its type, name, maturity, version and description, plus the options it accepts (so a
//! startup file's options are checked before anything starts).
//!
//! The declarations are plain `'static` data: `dpm --list-modules` prints them without
//! creating any instance.

use std::fmt;

/// The module API a module implements.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ModuleType {
    /// Picks the backend(s) of a session and routes its requests.
    Router,
    /// Sits between the client and the router; sees requests downstream and replies upstream.
    Filter,
    /// Watches servers and publishes their state (up/down, role, lag).
    Monitor,
    /// Checks a client's credentials and logs in to backends.
    Authenticator,
    /// Tells what a statement is (type, writes, transaction boundaries, tables, digest).
    QueryClassifier,
    /// Speaks a wire protocol to clients or backends.
    Protocol,
}

impl ModuleType {
    /// The name used in listings and option errors (`router`, `filter`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleType::Router => "router",
            ModuleType::Filter => "filter",
            ModuleType::Monitor => "monitor",
            ModuleType::Authenticator => "authenticator",
            ModuleType::QueryClassifier => "query classifier",
            ModuleType::Protocol => "protocol",
        }
    }
}

impl fmt::Display for ModuleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far along a module is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Maturity {
    /// Being written; not for use.
    InDevelopment,
    /// Works for its tests; interfaces may change.
    Alpha,
    /// Feature-complete, being proven.
    Beta,
    /// Generally available: supported for production.
    Ga,
    /// An experiment that may go away.
    Experimental,
}

impl Maturity {
    /// The name used in listings (`in development`, `alpha`, `beta`, `GA`, `experimental`).
    pub fn as_str(self) -> &'static str {
        match self {
            Maturity::InDevelopment => "in development",
            Maturity::Alpha => "alpha",
            Maturity::Beta => "beta",
            Maturity::Ga => "GA",
            Maturity::Experimental => "experimental",
        }
    }
}

impl fmt::Display for Maturity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of value an option takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OptionKind {
    /// `true`/`false`.
    Bool,
    /// A whole number.
    Int,
    /// A string.
    Str,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A duration in milliseconds (a whole number).
    Millis,
    /// A table (in Lua; a list or a map), kept as JSON: a filter's rules, say.
    Table,
}

impl fmt::Display for OptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionKind::Bool => f.write_str("boolean"),
            OptionKind::Int => f.write_str("integer"),
            OptionKind::Str => f.write_str("string"),
            OptionKind::Millis => f.write_str("integer (milliseconds)"),
            OptionKind::Table => f.write_str("table"),
            OptionKind::Enum(values) => write!(f, "one of {}", values.join(", ")),
        }
    }
}

/// One option a module accepts.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// Its name in the startup file.
    pub name: &'static str,
    /// Its type.
    pub kind: OptionKind,
    /// Its default, as it would be written in the startup file (`None`: no default).
    pub default: Option<&'static str>,
    /// One line saying what it does.
    pub description: &'static str,
}

/// A module's declaration (MaxScale's `MXS_MODULE`).
#[derive(Clone, Copy, Debug)]
pub struct ModuleInfo {
    /// Which API it implements.
    pub kind: ModuleType,
    /// The name a startup file uses (`readconnroute`, `lua`, …).
    pub name: &'static str,
    /// How far along it is.
    pub maturity: Maturity,
    /// Its version (semver).
    pub version: &'static str,
    /// One line saying what it does.
    pub description: &'static str,
    /// The options it accepts.
    pub options: &'static [OptionSpec],
}

impl ModuleInfo {
    /// The declaration of option `name`, if the module has one.
    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}
