//! Connecting to NATS: retry with backoff until the server is there, then let
//! async-nats reconnect on its own for the rest of the process's life.
//!
//! TLS is async-nats' own, on rustls with ring (the crypto
//! the workspace builds async-nats with): `NATS_TLS_CA` names the CA that
//! signed the server's certificate, `NATS_TLS_CERT` and `NATS_TLS_KEY` a
//! client certificate for servers that verify clients (mutual TLS). Any of
//! them makes TLS required, so a server without TLS is refused rather than
//! spoken to in the clear. The files are checked once at start ([`tls`]):
//! a missing or malformed one is an error naming its variable, not a
//! connection that fails for ever.

use crate::Config;
use async_nats::rustls::pki_types::pem::{self, PemObject};
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use async_nats::rustls::{ClientConfig, RootCertStore};
use std::path::PathBuf;
use std::time::Duration;

/// Connects, waiting as long as it takes; logs each failed attempt and why.
/// TLS files that cannot be used ([`tls`]) end the process at once (exit
/// status 2) with a message naming the variable: retrying cannot help.
pub async fn connect(config: &Config, name: &str) -> async_nats::Client {
    let tls = match tls(config) {
        Ok(tls) => tls,
        Err(why) => {
            tracing::error!("{name} cannot start: {why}");
            std::process::exit(2);
        }
    };
    let mut backoff = crate::backoff::Backoff::default();
    loop {
        match try_connect(config, name, tls.as_ref()).await {
            Ok(client) => return client,
            Err(err) => {
                tracing::warn!(url = %config.nats_url, error = %err, retry_in = ?backoff.delay(), "NATS not reachable");
                backoff.wait().await;
            }
        }
    }
}

/// The TLS files of `config`, each read and parsed now.
pub struct Tls {
    /// The CA file; without one, the system's roots.
    pub ca: Option<PathBuf>,
    /// Certificate and key file of the client.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// `Ok(None)` when no `NATS_TLS_*` is set. Each file named must read and
/// hold what it should: certificates (PEM) that make trust anchors, a
/// private key (PEM: PKCS#8, SEC1 or PKCS#1) that matches the certificate.
/// The error names the variable, the file and what is wrong.
pub fn tls(config: &Config) -> Result<Option<Tls>, String> {
    let certificates = |var: &str, path: &str| {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{var} ({path}): {e}"))?;
        if certs.is_empty() {
            return Err(format!("{var} ({path}): no PEM certificate in it"));
        }
        Ok(certs)
    };
    let mut roots = RootCertStore::empty();
    if let Some(path) = &config.nats_tls_ca {
        for cert in certificates("NATS_TLS_CA", path)? {
            roots
                .add(cert)
                .map_err(|e| format!("NATS_TLS_CA ({path}): not a CA certificate: {e}"))?;
        }
    }
    let client = match (&config.nats_tls_cert, &config.nats_tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let chain = certificates("NATS_TLS_CERT", cert)?;
            let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
                pem::Error::NoItemsFound => {
                    format!("NATS_TLS_KEY ({key}): no PEM private key in it")
                }
                e => format!("NATS_TLS_KEY ({key}): {e}"),
            })?;
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, private)
                .map_err(|e| {
                    format!(
                        "NATS_TLS_CERT ({cert}) and NATS_TLS_KEY ({key}) do not go together: {e}"
                    )
                })?;
            Some((PathBuf::from(cert), PathBuf::from(key)))
        }
        (Some(_), None) => return Err("NATS_TLS_CERT is set without NATS_TLS_KEY".into()),
        (None, Some(_)) => return Err("NATS_TLS_KEY is set without NATS_TLS_CERT".into()),
    };
    let ca = config.nats_tls_ca.as_ref().map(PathBuf::from);
    Ok((ca.is_some() || client.is_some()).then_some(Tls { ca, client }))
}

async fn try_connect(
    config: &Config,
    name: &str,
    tls: Option<&Tls>,
) -> Result<async_nats::Client, async_nats::Error> {
    let mut options = match &config.nats_creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path).await?,
        None => async_nats::ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(tls) = tls {
        options = options.require_tls(true);
        if let Some(ca) = &tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let client = options
        .name(name)
        // Replies come under a prefix of this binary's own, which its NATS
        // user alone may subscribe to: no other user can read them.
        .custom_inbox_prefix(format!("_INBOX_{name}"))
        .connection_timeout(Duration::from_secs(2))
        // Never give up on a server that went away; back off instead.
        .max_reconnects(None)
        // async-nats asks this before the first attempt too: no wait then
        // (it is most of a cold start), then 100 ms doubling up to 2 s.
        .reconnect_delay_callback(|attempt| match attempt {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis((50u64 << n.min(6)).min(2_000)),
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                other => tracing::info!(event = %other, "NATS event"),
            }
        })
        // `NATS_URL` may list several servers, comma-separated (a cluster).
        .connect(
            config
                .nats_url
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .collect::<Vec<_>>(),
        )
        .await?;
    Ok(client)
}
