//! TLS settings: what a listener (or service) presents to clients — [`ServerTls`] — and
//! how dpm checks a server it connects to — [`ClientTls`]. Both are built from PEM files
//! with rustls (ring provider).
//!
//! A [`ServerTls`] is process-wide and defined once per certificate/key pair: the startup
//! file runs once per worker, and every worker's listener gets the same one back, so a
//! reload ([`reload_all`], on SIGHUP or from Lua) swaps the certificate for every worker
//! at once. Sessions already running keep the TLS state they negotiated; only new
//! handshakes see the new certificate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why TLS settings cannot be used; the text names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    /// rustls refused the combination (key not matching the certificate, …).
    #[error("{0}")]
    Config(String),
    /// An option has a value dpm does not know.
    #[error("{0}")]
    Option(String),
}

/// The lowest TLS version a side accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl MinVersion {
    /// Parses `"1.2"`, `"1.3"` (also `"TLSv1.2"`, `"TLSv1.3"`).
    pub fn parse(text: &str) -> Result<MinVersion, TlsError> {
        match text.trim_start_matches("TLSv") {
            "1.2" => Ok(MinVersion::Tls12),
            "1.3" => Ok(MinVersion::Tls13),
            _ => Err(TlsError::Option(format!(
                "min_version must be \"1.2\" or \"1.3\", not \"{text}\""
            ))),
        }
    }

    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS12_AND_13: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            MinVersion::Tls12 => &TLS12_AND_13,
            MinVersion::Tls13 => &TLS13_ONLY,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a client-facing TLS setting is made of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerTlsOptions {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    pub min_version: MinVersion,
    /// Refuse clients that do not switch to TLS (ERR 3159).
    pub require: bool,
}

/// TLS offered to clients (see the module docs).
pub struct ServerTls {
    pub options: ServerTlsOptions,
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.options.cert)
            .field("require", &self.options.require)
            .finish()
    }
}

static SERVER_TLS: LazyLock<Mutex<HashMap<ServerTlsOptions, Arc<ServerTls>>>> =
    LazyLock::new(Default::default);

impl ServerTls {
    /// The settings for `options`: made (files read) the first time, shared after.
    pub fn define(options: ServerTlsOptions) -> Result<Arc<ServerTls>, TlsError> {
        let mut defined = SERVER_TLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tls) = defined.get(&options) {
            return Ok(tls.clone());
        }
        let config = server_config(&options)?;
        let tls = Arc::new(ServerTls {
            options: options.clone(),
            config: RwLock::new(config),
        });
        defined.insert(options, tls.clone());
        Ok(tls)
    }

    /// The configuration new handshakes use.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A fresh server-side TLS connection for one client.
    pub(crate) fn accept(&self) -> Result<rustls::Connection, TlsError> {
        rustls::ServerConnection::new(self.config())
            .map(rustls::Connection::Server)
            .map_err(|e| TlsError::Config(e.to_string()))
    }

    /// Rereads the certificate and key; on error the old ones stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.options)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }
}

/// Reloads every client-facing certificate; returns each one's certificate path and the
/// outcome (an error keeps the old certificate).
pub fn reload_all() -> Vec<(String, Result<(), TlsError>)> {
    let all: Vec<Arc<ServerTls>> = SERVER_TLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    all.iter()
        .map(|tls| (tls.options.cert.display().to_string(), tls.reload()))
        .collect()
}

fn server_config(options: &ServerTlsOptions) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = read_certs(&options.cert)?;
    let key = PrivateKeyDer::from_pem_file(&options.key).map_err(|e| TlsError::File {
        path: options.key.display().to_string(),
        problem: format!("no usable private key ({e})"),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(options.min_version.versions())
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError::Config(format!(
                "{} and {}: {e}",
                options.cert.display(),
                options.key.display()
            ))
        })?;
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let problem = |problem: String| TlsError::File {
        path: path.display().to_string(),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| problem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("bad PEM ({e})")))?;
    if certs.is_empty() {
        return Err(problem("no certificate in the file".into()));
    }
    Ok(certs)
}

/// What a server-facing TLS setting is made of.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ClientTlsOptions {
    /// PEM file of the certificate authorities to trust; `None`: the system's
    /// (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca: Option<PathBuf>,
    /// Check the server's certificate (chain and name). Off: any certificate is taken —
    /// the link is encrypted but not authenticated.
    pub verify: bool,
    /// The name the certificate must carry; default: the host connected to.
    pub server_name: Option<String>,
    pub min_version: MinVersion,
}

/// The system's bundle of certificate authorities (Debian's).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// TLS used towards a server (see the module docs).
pub struct ClientTls {
    pub options: ClientTlsOptions,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("options", &self.options)
            .finish()
    }
}

/// Client-side settings by what they are made of: one rustls configuration per set of
/// options, whatever the number of connections, so that its session cache lets dpm
/// resume TLS sessions with a server instead of a full handshake per connection (and
/// the CA file is read once).
static CLIENT_TLS: LazyLock<Mutex<HashMap<ClientTlsOptions, Arc<ClientTls>>>> =
    LazyLock::new(Default::default);

impl ClientTls {
    /// The settings for `options`: made (CA file read) the first time, shared after.
    pub fn define(options: ClientTlsOptions) -> Result<Arc<ClientTls>, TlsError> {
        let mut defined = CLIENT_TLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tls) = defined.get(&options) {
            return Ok(tls.clone());
        }
        let tls = ClientTls::new(options.clone())?;
        defined.insert(options, tls.clone());
        Ok(tls)
    }

    /// Builds the settings (reads the CA file).
    fn new(options: ClientTlsOptions) -> Result<Arc<ClientTls>, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(options.min_version.versions())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let config = if options.verify {
            let path = options
                .ca
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(&path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    path: path.display().to_string(),
                    problem: format!("unusable certificate authority ({e})"),
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth()
        };
        Ok(Arc::new(ClientTls {
            options,
            config: Arc::new(config),
        }))
    }

    /// The rustls configuration (shared by every connection made with these settings).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// A fresh client-side TLS connection to `host` (or the configured server name).
    pub(crate) fn connect(&self, host: &str) -> Result<rustls::Connection, TlsError> {
        let name = self.options.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| TlsError::Option(format!("'{name}' is not a valid server name")))?;
        rustls::ClientConnection::new(self.config.clone(), name)
            .map(rustls::Connection::Client)
            .map_err(|e| TlsError::Config(e.to_string()))
    }
}

/// `verify = false`: every certificate is accepted (signatures are still checked, so the
/// handshake itself is sound).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
