//! The admin listener the startup file declares (`dpm.admin{ listen, users, tokens }`).
//!
//! The startup file runs once per worker, so the same declaration arrives once per
//! worker: the first one checks it and binds the port (an address in use is then the
//! file's `FILE:LINE` error, not a failure after start), the others must say the same.
//! The binary takes the bound listener once the workers run and serves the admin API on
//! it (crate `dpm-admin`); the engine only keeps the declaration.
//!
//! The admin listener is the process's: a reload's file may declare it again as it is,
//! but a declaration that differs (or a new one) fails the reload, saying that it takes
//! effect only at restart; a file without one leaves it serving.

use std::net::{SocketAddr, TcpListener};
use std::sync::{LazyLock, Mutex};

/// What the startup file asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSpec {
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// HTTP basic users: name → `caching_sha2_password` hash (`dpm hash-password
    /// --plugin caching_sha2_password`), never the password itself.
    pub users: Vec<(String, String)>,
    /// Bearer tokens accepted as they are (`Authorization: Bearer TOKEN`).
    pub tokens: Vec<String>,
}

impl AdminSpec {
    /// True when requests need credentials (any user or token is declared).
    pub fn has_credentials(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// Checks the declaration: hashes that parse, no empty token, and credentials on
    /// any address but loopback (an admin API open to the network without them could
    /// kill every session).
    fn check(&self) -> Result<(), String> {
        for (user, hash) in &self.users {
            if user.is_empty() || user.contains(':') {
                return Err(format!(
                    "dpm.admin: user name '{user}' is empty or has a ':' (HTTP basic cannot carry it)"
                ));
            }
            dpm_auth::caching_sha2::CachingSha2Hash::parse(hash).map_err(|e| {
                format!(
                    "dpm.admin: the hash of user '{user}' is not a caching_sha2_password hash \
                     (make one with `dpm hash-password --plugin caching_sha2_password`): {e}"
                )
            })?;
        }
        if self.tokens.iter().any(|t| t.len() < 16) {
            return Err("dpm.admin: a token must have at least 16 characters".to_string());
        }
        if !self.listen.ip().is_loopback() && !self.has_credentials() {
            return Err(format!(
                "dpm.admin: refusing to listen on {} (not a loopback address) without users or tokens",
                self.listen
            ));
        }
        Ok(())
    }
}

struct Declared {
    spec: AdminSpec,
    /// Bound by the first declaration, until the binary takes it.
    listener: Option<TcpListener>,
}

static DECLARED: LazyLock<Mutex<Option<Declared>>> = LazyLock::new(Default::default);

fn declared() -> std::sync::MutexGuard<'static, Option<Declared>> {
    DECLARED.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a reload's file is told when its `dpm.admin{}` is not the one serving.
const AT_RESTART: &str = "dpm.admin: the admin listener cannot change at a reload: \
                          a new or changed dpm.admin{} takes effect only at restart";

/// Declares the admin listener: the first declaration is checked and, with `bind`, its
/// port bound; a later one (another worker's, or a reload's) must be the same.
pub fn declare(spec: AdminSpec, bind: bool) -> Result<(), String> {
    let reloading = crate::service::generations::loading();
    let mut declared = declared();
    if let Some(existing) = declared.as_ref() {
        if existing.spec != spec {
            return Err(match reloading {
                true => AT_RESTART.to_string(),
                false => "dpm.admin: already declared with other settings (one admin listener per process)"
                    .to_string(),
            });
        }
        return Ok(());
    }
    if reloading {
        return Err(AT_RESTART.to_string());
    }
    spec.check()?;
    let listener = if bind {
        let listener = TcpListener::bind(spec.listen)
            .map_err(|e| format!("dpm.admin: cannot listen on {}: {e}", spec.listen))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("dpm.admin: {e}"))?;
        Some(listener)
    } else {
        None
    };
    *declared = Some(Declared { spec, listener });
    Ok(())
}

/// The declaration and its bound listener, once (None if the file declared none).
pub fn take() -> Option<(AdminSpec, TcpListener)> {
    let mut declared = declared();
    let d = declared.as_mut()?;
    Some((d.spec.clone(), d.listener.take()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::generations::{abort_load, begin_load, serial_test};

    fn spec(port: u16) -> AdminSpec {
        AdminSpec {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            users: vec![],
            tokens: vec![],
        }
    }

    #[test]
    fn a_reload_may_declare_the_admin_listener_again_but_not_move_it() {
        let _serial = serial_test();
        declare(spec(8989), false).unwrap();

        begin_load();
        declare(spec(8989), false).unwrap();
        let e = declare(spec(8990), false).unwrap_err();
        abort_load();

        assert!(e.contains("takes effect only at restart"), "{e}");
        assert_eq!(declared().as_ref().unwrap().spec, spec(8989));
        // Outside a reload a different declaration is another worker's mistake.
        assert!(declare(spec(8990), false)
            .unwrap_err()
            .contains("one admin listener per process"));
    }
}
