//! Configuration from the environment, read once at start.
//!
//! Every binary takes the same variables, so `NATS_URL=... target/release/x`
//! is always a complete way to start one more instance. A malformed value
//! stops the process at start, naming the variable ([`crate::env`]).

use crate::env::{ConfigError, Env};
use std::str::FromStr;
use std::time::Duration;

/// What every OMS process needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// One server or several, comma-separated (a cluster).
    pub nats_url: String,
    pub nats_user: Option<String>,
    pub nats_password: Option<String>,
    pub nats_creds: Option<String>,
    /// TLS to NATS (`NATS_TLS_CA`: the CA of the server's certificate;
    /// `NATS_TLS_CERT` + `NATS_TLS_KEY`: a client certificate, mutual TLS).
    /// Any of them set makes TLS required; see [`crate::connect::tls`].
    pub nats_tls_ca: Option<String>,
    pub nats_tls_cert: Option<String>,
    pub nats_tls_key: Option<String>,
    pub bucket: String,
    /// Replicas of the bucket and the streams when `oms-init` creates them
    /// (`OMS_REPLICAS`, 1; 3 on a cluster).
    pub replicas: usize,
    /// How long a hold made without an order lasts before it is released.
    pub hold_ttl: Duration,
    pub gateway_addr: String,
    /// How long the gateway (and callers inside handlers) wait for a reply.
    pub request_timeout: Duration,
    /// How long an order may stay PENDING (unpaid) before it expires
    /// (`OMS_PENDING_TTL`, seconds; 0, the default: never).
    pub pending_ttl: Option<Duration>,
    /// Byte limits that `oms-init` sets on the bucket's stream
    /// (`OMS_BUCKET_MAX_BYTES`, 1 GiB), `OMS_EVENTS` (`OMS_EVENTS_MAX_BYTES`,
    /// 1 GiB) and `OMS_LEDGER` (`OMS_LEDGER_MAX_BYTES`, 1 GiB).
    pub bucket_max_bytes: i64,
    pub events_max_bytes: i64,
    pub ledger_max_bytes: i64,
    /// Deliveries of a consumer message before it goes to `OMS_DLQ`
    /// (`OMS_MAX_DELIVER`, 5).
    pub max_deliver: i64,
}

/// The longest any duration setting may be: a day.
const DAY: f64 = 86_400.0;
const GIB: i64 = 1 << 30;

/// A byte limit, 1 GiB when unset; a number that may end in `KiB`, `MiB`
/// or `GiB` (`OMS_BUCKET_MAX_BYTES=512MiB`).
fn bytes(env: &Env, name: &str) -> Result<i64, ConfigError> {
    let expected = "a positive number of bytes, which may end in KiB, MiB or GiB";
    Ok(env.parsed(name, expected, parse_bytes)?.unwrap_or(GIB))
}

fn parse_bytes(value: &str) -> Option<i64> {
    let (digits, unit) = [("GiB", 1i64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, unit)| Some((value.strip_suffix(suffix)?, unit)))
        .unwrap_or((value, 1));
    let number: i64 = digits.trim().parse().ok()?;
    number.checked_mul(unit).filter(|n| *n > 0)
}

impl Config {
    /// The process environment's settings, or the first malformed one.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::read(&Env::process())
    }

    pub fn read(env: &Env) -> Result<Config, ConfigError> {
        let nats_url = env
            .parsed(
                "NATS_URL",
                "nats://host:port, comma-separated for several",
                |text| {
                    let urls: Vec<&str> = text.split(',').map(str::trim).collect();
                    urls.iter()
                        .all(|url| async_nats::ServerAddr::from_str(url).is_ok())
                        .then(|| urls.join(","))
                },
            )?
            .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
        let bucket = env
            .parsed(
                "OMS_BUCKET",
                "a bucket name: letters, digits, - and _",
                |text| {
                    text.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                        .then(|| text.to_string())
                },
            )?
            .unwrap_or_else(|| "oms".into());
        let gateway_addr = env
            .parsed("GATEWAY_ADDR", "an address like 127.0.0.1:8080", |text| {
                std::net::SocketAddr::from_str(text)
                    .ok()
                    .map(|_| text.to_string())
            })?
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        Ok(Config {
            nats_url,
            nats_user: env.text("NATS_USER"),
            nats_password: env.text("NATS_PASSWORD"),
            nats_creds: env.file("NATS_CREDS")?,
            nats_tls_ca: env.file("NATS_TLS_CA")?,
            nats_tls_cert: env.file("NATS_TLS_CERT")?,
            nats_tls_key: env.file("NATS_TLS_KEY")?,
            bucket,
            replicas: env.whole("OMS_REPLICAS", 1, 1, 5)? as usize,
            hold_ttl: env.seconds("OMS_HOLD_TTL", 60.0, DAY)?,
            gateway_addr,
            request_timeout: env.seconds("OMS_REQUEST_TIMEOUT", 5.0, 600.0)?,
            pending_ttl: env
                .parsed(
                    "OMS_PENDING_TTL",
                    "seconds (0 = never), at most 30 days",
                    |text| {
                        text.parse::<f64>()
                            .ok()
                            .filter(|s| s.is_finite() && (0.0..=30.0 * DAY).contains(s))
                            .map(Duration::from_secs_f64)
                    },
                )?
                .filter(|ttl| !ttl.is_zero()),
            bucket_max_bytes: bytes(env, "OMS_BUCKET_MAX_BYTES")?,
            events_max_bytes: bytes(env, "OMS_EVENTS_MAX_BYTES")?,
            ledger_max_bytes: bytes(env, "OMS_LEDGER_MAX_BYTES")?,
            max_deliver: env.whole("OMS_MAX_DELIVER", 5, 1, 1_000)? as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::read(&Env::table(&[])).unwrap();
        assert_eq!(config.nats_url, "nats://127.0.0.1:4222");
        assert_eq!((config.bucket.as_str(), config.replicas), ("oms", 1));
        assert_eq!(config.hold_ttl, Duration::from_secs(60));
        assert_eq!(config.request_timeout, Duration::from_secs(5));
        assert_eq!(config.gateway_addr, "127.0.0.1:8080");
    }

    #[test]
    fn byte_limits_are_positive_numbers_with_an_optional_unit() {
        assert_eq!(parse_bytes("300000"), Some(300_000));
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        for bad in ["", "0", "-1", "1GB", "lots", "9223372036854775807GiB"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        let config = Config::read(&Env::table(&[])).unwrap();
        assert_eq!((config.bucket_max_bytes, config.max_deliver), (GIB, 5));
    }

    #[test]
    fn several_servers_are_one_setting() {
        let env = Env::table(&[("NATS_URL", "nats://a:4222, nats://b:4223")]);
        assert_eq!(
            Config::read(&env).unwrap().nats_url,
            "nats://a:4222,nats://b:4223"
        );
    }

    #[test]
    fn every_malformed_value_names_its_variable() {
        for (name, value) in [
            ("NATS_URL", "nats://host:port:extra"),
            ("NATS_CREDS", "/no/such.creds"),
            ("OMS_BUCKET", "oms.orders"),
            ("OMS_REPLICAS", "three"),
            ("OMS_REPLICAS", "0"),
            ("OMS_HOLD_TTL", "1m"),
            ("OMS_HOLD_TTL", "-5"),
            ("GATEWAY_ADDR", "localhost"),
            ("OMS_REQUEST_TIMEOUT", "5s"),
            ("OMS_BUCKET_MAX_BYTES", "1GB"),
            ("OMS_MAX_DELIVER", "0"),
            ("OMS_PENDING_TTL", "1h"),
        ] {
            let err = Config::read(&Env::table(&[(name, value)])).unwrap_err();
            assert_eq!((err.variable.as_str(), err.found.as_str()), (name, value));
        }
    }
}
