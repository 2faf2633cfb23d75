//! Test certificates, made once per test run with rcgen and written as PEM files.
//!
//! Two independent CAs:
//! * the test CA ([`TlsFiles::ca`]) signs the MariaDB server certificate
//!   ([`TlsFiles::server_cert`]), dpm's certificate ([`TlsFiles::dpm_cert`]) and a client
//!   certificate ([`TlsFiles::client_cert`]);
//! * the other CA ([`TlsFiles::other_ca`]) signs one more server certificate
//!   ([`TlsFiles::other_cert`]), for "wrong CA" checks and for certificates replaced at
//!   run time (a client that trusts only `other_ca` connects only after the reload).
//!
//! Every server certificate names `localhost` and `127.0.0.1` (the tests connect to
//! the IP address, so the IP SAN is what clients that check the host name compare).
//! Keys are ECDSA P-256 (PKCS#8 PEM, `BEGIN PRIVATE KEY`): rcgen with the `ring`
//! backend cannot generate RSA keys, and MariaDB 10.11 with OpenSSL 3 accepts them.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Paths of the PEM files of this test run. Get them with [`tls_files`].
#[derive(Debug)]
pub struct TlsFiles {
    /// The directory holding every file (removed when the test process exits).
    pub dir: PathBuf,
    /// The test CA's certificate: what a client trusts to verify the servers below.
    pub ca: PathBuf,
    /// The MariaDB server's certificate and key (signed by `ca`).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// dpm's certificate and key for its client side (signed by `ca`).
    pub dpm_cert: PathBuf,
    pub dpm_key: PathBuf,
    /// A client certificate and key (signed by `ca`, extended key usage clientAuth).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A second, unrelated CA, and a server certificate and key signed by it (for
    /// `localhost` and `127.0.0.1` too): a client that trusts `ca` rejects
    /// `other_cert`, one that trusts `other_ca` accepts it.
    pub other_ca: PathBuf,
    pub other_cert: PathBuf,
    pub other_key: PathBuf,
}

/// The certificates of this test run, made and written on first use.
pub fn tls_files() -> &'static TlsFiles {
    static FILES: OnceLock<TlsFiles> = OnceLock::new();
    FILES.get_or_init(|| make_tls_files().unwrap_or_else(|e| panic!("test certificates: {e}")))
}

/// The host names every server certificate is valid for.
pub const CERT_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dpm tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A self-signed CA named `common_name`: its PEM certificate and its issuer.
fn make_ca(common_name: &str) -> Result<(String, Issuer<'static, KeyPair>), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

/// A leaf certificate named `common_name` for `names`, signed by `issuer`:
/// (certificate PEM, private key PEM).
fn make_leaf(
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = dn(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn make_tls_files() -> Result<TlsFiles, String> {
    let dir = tempfile::Builder::new()
        .prefix("dpm-it-tls-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    super::remove_at_exit(&dir);
    let e = |e: rcgen::Error| e.to_string();
    let (ca_pem, ca) = make_ca("dpm test CA").map_err(e)?;
    let (other_ca_pem, other_ca) = make_ca("dpm other test CA").map_err(e)?;
    let server = ExtendedKeyUsagePurpose::ServerAuth;
    let (server_cert, server_key) =
        make_leaf("dpm test MariaDB", &CERT_NAMES, server.clone(), &ca).map_err(e)?;
    let (dpm_cert, dpm_key) =
        make_leaf("dpm test proxy", &CERT_NAMES, server.clone(), &ca).map_err(e)?;
    let (other_cert, other_key) =
        make_leaf("dpm test proxy (other CA)", &CERT_NAMES, server, &other_ca).map_err(e)?;
    let (client_cert, client_key) = make_leaf(
        "dpm test client",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
    )
    .map_err(e)?;

    let write = |name: &str, pem: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    Ok(TlsFiles {
        ca: write("ca.pem", &ca_pem)?,
        server_cert: write("server-cert.pem", &server_cert)?,
        server_key: write("server-key.pem", &server_key)?,
        dpm_cert: write("dpm-cert.pem", &dpm_cert)?,
        dpm_key: write("dpm-key.pem", &dpm_key)?,
        client_cert: write("client-cert.pem", &client_cert)?,
        client_key: write("client-key.pem", &client_key)?,
        other_ca: write("other-ca.pem", &other_ca_pem)?,
        other_cert: write("other-cert.pem", &other_cert)?,
        other_key: write("other-key.pem", &other_key)?,
        dir,
    })
}

/// A path as a `String` (for command-line arguments and Lua strings).
pub fn path_str(p: &Path) -> String {
    p.to_str().expect("test paths are UTF-8").to_string()
}
