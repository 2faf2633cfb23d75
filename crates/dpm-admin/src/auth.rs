//! Who may use the admin API: HTTP basic with a user whose `caching_sha2_password` hash
//! the startup file gives (`dpm hash-password --plugin caching_sha2_password`), or
//! `Authorization: Bearer TOKEN` with one of its tokens. A listener declared without
//! either (allowed on loopback addresses only, `dpm_engine::control::admin`) lets every
//! request in.
//!
//! Checking a password against its hash takes 5,000 rounds of SHA-256 (a millisecond or
//! two): a status page polling every second would pay it on every poll, so passwords
//! that passed are remembered as a SHA-256 of `user:password` (never in clear), for the
//! life of the process. Checks run one at a time off the admin thread's runtime, and a
//! user that does not exist is checked against a dummy hash: a flood of guesses costs
//! one core at most and the answer's time does not tell which user names exist.
//!
//! Without credentials (loopback only) a request must name a loopback host (`Host:
//! 127.0.0.1:8989`, `localhost:8989`, `[::1]:8989`): a web page the operator visits cannot
//! reach the API through a name it points at 127.0.0.1 (DNS rebinding), and a request
//! that changes something from a page of another origin is refused.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use dpm_auth::caching_sha2::CachingSha2Hash;
use dpm_engine::control::admin::AdminSpec;
use sha2::{Digest, Sha256};

/// The credentials the admin listener accepts.
pub struct Auth {
    users: Vec<(String, CachingSha2Hash)>,
    tokens: Vec<String>,
    /// SHA-256 of `user:password` of logins that passed.
    passed: Mutex<HashSet<[u8; 32]>>,
    /// What a user that does not exist is checked against.
    dummy: CachingSha2Hash,
    /// One password check at a time.
    checking: tokio::sync::Semaphore,
}

impl Auth {
    /// The credentials of a (checked) declaration.
    pub fn new(spec: &AdminSpec) -> Result<Auth, String> {
        let users = spec
            .users
            .iter()
            .map(|(user, hash)| {
                CachingSha2Hash::parse(hash)
                    .map(|h| (user.clone(), h))
                    .map_err(|e| format!("admin user '{user}': {e}"))
            })
            .collect::<Result<_, _>>()?;
        let dummy = CachingSha2Hash::generate(b"no such admin user")
            .map_err(|e| format!("admin API: {e}"))?;
        Ok(Auth {
            users,
            tokens: spec.tokens.clone(),
            passed: Mutex::new(HashSet::new()),
            dummy,
            checking: tokio::sync::Semaphore::new(1),
        })
    }

    fn open(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty()
    }

    /// Whether a request with this `Authorization` header may go on; why not if not.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), &'static str> {
        if self.open() {
            return Ok(());
        }
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return Err("credentials required (HTTP basic or a bearer token)");
        };
        if let Some(token) = value.strip_prefix("Bearer ") {
            return if self
                .tokens
                .iter()
                .any(|t| same_bytes(t.as_bytes(), token.trim().as_bytes()))
            {
                Ok(())
            } else {
                Err("unknown token")
            };
        }
        let Some(encoded) = value.strip_prefix("Basic ") else {
            return Err("unsupported authorization scheme (use Basic or Bearer)");
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| "malformed basic credentials")?;
        let text = std::str::from_utf8(&decoded).map_err(|_| "malformed basic credentials")?;
        let (user, password) = text.split_once(':').ok_or("malformed basic credentials")?;
        let fingerprint: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if self.passed().contains(&fingerprint) {
            return Ok(());
        }
        let known = match self.users.iter().find(|(u, _)| u == user) {
            Some((_, hash)) => hash.verify_password(password.as_bytes()),
            None => {
                // As long as a real check: the time does not tell the name is unknown.
                let _ = self.dummy.verify_password(password.as_bytes());
                false
            }
        };
        if !known {
            return Err("wrong user or password");
        }
        self.passed().insert(fingerprint);
        Ok(())
    }

    fn passed(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.passed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Equality that takes as long whatever the first difference (a token compared with a
/// guess must not tell how much of it was right).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request to an API without credentials comes from this machine's own
/// pages and tools: its `Host` is a loopback name, and a request that changes something
/// carries no `Origin` of another host.
fn local_only(request: &Request) -> Result<(), &'static str> {
    let loopback = |hostport: &str| {
        let host = match hostport.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => hostport,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !loopback(host) {
        return Err("an admin API without credentials answers only requests to a loopback host");
    }
    if request.method() != axum::http::Method::GET {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            let origin = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            if !loopback(origin) {
                return Err("a change from a page of another origin is refused");
            }
        }
    }
    Ok(())
}

/// Middleware: lets authenticated requests through, answers the others 401 with
/// `WWW-Authenticate: Basic` and a JSON error (403 for a request an API without
/// credentials refuses).
pub async fn require(
    State(auth): State<std::sync::Arc<Auth>>,
    request: Request,
    next: Next,
) -> Response {
    if auth.open() {
        return match local_only(&request) {
            Ok(()) => next.run(request).await,
            Err(why) => {
                let body = serde_json::json!({ "error": why });
                (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
            }
        };
    }
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let verdict = {
        // One check at a time, on a blocking thread: 5,000 rounds of SHA-256 must not
        // stall the admin thread's other requests.
        let _turn = auth.checking.acquire().await;
        let auth = auth.clone();
        tokio::task::spawn_blocking(move || auth.check(authorization.as_ref()))
            .await
            .unwrap_or(Err("the credential check failed"))
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(why) => {
            let body = serde_json::json!({ "error": why });
            let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"dpm\""),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(users: &[(&str, &str)], tokens: &[&str]) -> AdminSpec {
        AdminSpec {
            listen: "127.0.0.1:1".parse().unwrap(),
            users: users
                .iter()
                .map(|(u, p)| {
                    (
                        u.to_string(),
                        dpm_auth::caching_sha2::hash_text(p.as_bytes()).unwrap(),
                    )
                })
                .collect(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let text = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {text}")).unwrap()
    }

    #[test]
    fn basic_users_and_bearer_tokens_are_checked() {
        let auth = Auth::new(&spec(&[("admin", "s3cret")], &["0123456789abcdef-token"])).unwrap();
        assert!(auth.check(None).is_err());
        assert!(auth.check(Some(&basic("admin", "s3cret"))).is_ok());
        // The second time from the remembered fingerprint: still exact.
        assert!(auth.check(Some(&basic("admin", "s3cret"))).is_ok());
        assert_eq!(
            auth.check(Some(&basic("admin", "s3cret!"))),
            Err("wrong user or password")
        );
        assert!(auth.check(Some(&basic("root", "s3cret"))).is_err());
        let bearer = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
        assert!(auth.check(Some(&bearer("0123456789abcdef-token"))).is_ok());
        assert_eq!(
            auth.check(Some(&bearer("0123456789abcdef-tokeN"))),
            Err("unknown token")
        );
        assert!(auth
            .check(Some(&HeaderValue::from_static("Digest x")))
            .is_err());
    }

    #[test]
    fn a_listener_without_credentials_lets_everyone_in() {
        let auth = Auth::new(&spec(&[], &[])).unwrap();
        assert!(auth.check(None).is_ok());
    }
}
