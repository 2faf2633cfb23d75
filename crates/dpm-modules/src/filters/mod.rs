//! Built-in filters. `firewall/` is the firewall's rule engine (rule language, compiled
//! matcher); the filter that applies it to a session's statements is wired separately.

pub mod firewall;
