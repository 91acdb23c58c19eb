//! TLS for `rediss://` URLs, through rustls with the `ring` provider: the
//! server's certificate must chain to the system's roots (on macOS, the
//! Mozilla roots compiled in: see Cargo.toml), or to the CA of `tls_ca` (a
//! PEM file, `redisTlsCa`), which then replaces them. Here: those CA
//! certificates, the client made with them, and what a refused certificate
//! means, in words that say what to do. Apart from link.rs so that all of
//! rustls is read in one place; its tests, which open a link, are in
//! tls_tests.rs.

use std::path::Path;
use std::sync::{Arc, Once};

use redis::{ConnectionInfo, RedisError, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::CertificateError;

use super::options::{is_tls_url, RedisOptions};

/// The CA certificates to trust instead of the system's: those of
/// `options.tls_ca`, which only a `rediss://` URL may give.
pub(super) fn certificates(options: &RedisOptions) -> Result<Option<TlsCertificates>, String> {
  if !is_tls_url(&options.url) {
    if options.tls_ca.is_some() {
      return Err("a TLS CA (redisTlsCa) applies only to a rediss:// URL".into());
    }
    return Ok(None);
  }
  install_crypto_provider();
  let Some(path) = &options.tls_ca else {
    return Ok(None);
  };
  Ok(Some(TlsCertificates {
    client_tls: None,
    root_cert: Some(read_ca(path)?),
  }))
}

/// The client of `info`, trusting `certificates` (over TLS) when given.
pub(super) fn client(
  info: ConnectionInfo,
  certificates: Option<TlsCertificates>,
) -> Result<redis::Client, String> {
  match certificates {
    None => redis::Client::open(info).map_err(|e| e.to_string()),
    Some(certificates) => {
      redis::Client::build_with_tls(info, certificates).map_err(|e| format!("the TLS CA file: {e}"))
    }
  }
}

/// The PEM file of `redisTlsCa`, checked to hold at least one certificate
/// (one that holds none would fail every handshake, later and less clearly).
fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
  let bytes = std::fs::read(path)
    .map_err(|e| format!("cannot read the TLS CA file {}: {e}", path.display()))?;
  let mut certificates = 0;
  for certificate in CertificateDer::pem_slice_iter(&bytes) {
    certificate.map_err(|e| format!("the TLS CA file {}: {e}", path.display()))?;
    certificates += 1;
  }
  if certificates == 0 {
    return Err(format!(
      "the TLS CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
      path.display()
    ));
  }
  Ok(bytes)
}

/// Makes `ring` rustls's process-wide crypto provider, once. The addon
/// builds rustls with `ring` alone, so rustls would pick it by itself; the
/// explicit choice keeps it so should another crate ever enable a second
/// provider (rustls then refuses to guess). A provider already installed
/// (`install_default` says so) is kept.
fn install_crypto_provider() {
  static INSTALLED: Once = Once::new();
  INSTALLED.call_once(|| {
    let _ = rustls::crypto::ring::default_provider().install_default();
  });
}

/// Why the server's certificate was refused, and what to do about it;
/// `tls_ca`: the CA file trusted instead of the system's roots, if any.
pub(super) fn untrusted(problem: &CertificateError, tls_ca: Option<&Path>) -> String {
  let why = match (problem, tls_ca) {
    (CertificateError::UnknownIssuer, Some(path)) => {
      format!("no CA certificate of {} signed it", path.display())
    }
    (CertificateError::UnknownIssuer, None) => "it does not chain to the system's root certificates; for a server with a self-signed certificate, give its CA's PEM file as redisTlsCa (or FALLBACK_MECHANISMS_REDIS_TLS_CA)".into(),
    (CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }, _) => {
      "it was not issued for the URL's host".into()
    }
    _ => "see the reason in parentheses".into(),
  };
  format!("the server's TLS certificate is not trusted ({problem:?}): {why}")
}

/// The certificate error of a refused TLS handshake: rustls's error, inside
/// the I/O error of tokio-rustls, inside redis-rs's (which holds it in an
/// `Arc`, so its `source` is the `Arc`).
pub(super) fn certificate_error(error: &RedisError) -> Option<&CertificateError> {
  type Shared = Arc<dyn std::error::Error + Send + Sync>;
  let source = std::error::Error::source(error)?;
  let io = match source.downcast_ref::<Shared>() {
    Some(shared) => shared.downcast_ref::<std::io::Error>(),
    None => source.downcast_ref::<std::io::Error>(),
  }?;
  match io.get_ref()?.downcast_ref::<rustls::Error>()? {
    rustls::Error::InvalidCertificate(problem) => Some(problem),
    _ => None,
  }
}
