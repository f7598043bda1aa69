//! HTTPS: with `GATEWAY_TLS_CERT` (PEM certificate chain,
//! the server's first) and `GATEWAY_TLS_KEY` (its PEM private key) the
//! gateway speaks only TLS, offering HTTP/2 and HTTP/1.1 by ALPN.
//!
//! rustls and tokio-rustls are the ones async-nats already builds (with its
//! ring crypto, TLS 1.3), so HTTPS adds no crate to the build. The files are
//! read once at start: restart the gateway to change certificates.

use oms_runtime::ConfigError;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// What `GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY` ask for: `None` when
/// neither is set; an error naming the variable when a file is missing,
/// malformed, or the key is not the certificate's.
pub fn from_vars(
    cert: Option<String>,
    key: Option<String>,
) -> Result<Option<TlsAcceptor>, ConfigError> {
    let error = |variable: &str, found: &str, expected: String| ConfigError {
        variable: variable.into(),
        found: found.into(),
        expected,
    };
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(error(
                "GATEWAY_TLS_KEY",
                "",
                "a key file, since GATEWAY_TLS_CERT is set".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(error(
                "GATEWAY_TLS_CERT",
                "",
                "a certificate file, since GATEWAY_TLS_KEY is set".into(),
            ))
        }
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            error(
                "GATEWAY_TLS_CERT",
                &cert,
                format!("a PEM certificate file ({e})"),
            )
        })?;
    if chain.is_empty() {
        return Err(error(
            "GATEWAY_TLS_CERT",
            &cert,
            "a PEM certificate file (none in it)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| match e {
        pem::Error::NoItemsFound => error(
            "GATEWAY_TLS_KEY",
            &key,
            "a PEM private key file (none in it)".into(),
        ),
        e => error(
            "GATEWAY_TLS_KEY",
            &key,
            format!("a PEM private key file ({e})"),
        ),
    })?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            error(
                "GATEWAY_TLS_KEY",
                &key,
                format!("the key of GATEWAY_TLS_CERT ({e})"),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(std::sync::Arc::new(config))))
}
