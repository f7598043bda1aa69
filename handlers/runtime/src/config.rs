//! Configuration from the environment, read once at start (DESIGN §9).
//!
//! Every binary takes the same variables, so `NATS_URL=... target/release/x`
//! is always a complete way to start one more instance.

use std::time::Duration;

/// What every OMS process needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    pub nats_user: Option<String>,
    pub nats_password: Option<String>,
    pub nats_creds: Option<String>,
    pub bucket: String,
    /// Replicas of the bucket and the event stream when this process creates
    /// them (`OMS_REPLICAS`, 1; 3 on a cluster).
    pub replicas: usize,
    /// How long a reservation may wait for its order before it is released.
    pub hold_ttl: Duration,
    pub gateway_addr: String,
    /// How long the gateway (and callers inside handlers) wait for a reply.
    pub request_timeout: Duration,
    /// Byte limits (DESIGN §12) that `oms-init` sets on the bucket's stream
    /// (`OMS_BUCKET_MAX_BYTES`, 1 GiB), `OMS_EVENTS` (`OMS_EVENTS_MAX_BYTES`,
    /// 1 GiB) and `OMS_LEDGER` (`OMS_LEDGER_MAX_BYTES`, 1 GiB).
    pub bucket_max_bytes: i64,
    pub events_max_bytes: i64,
    pub ledger_max_bytes: i64,
    /// Deliveries of a consumer message before it goes to `OMS_DLQ`
    /// (`OMS_MAX_DELIVER`, 5).
    pub max_deliver: i64,
}

impl Config {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let secs = |name: &str, default: f64| {
            var(name)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(Duration::from_secs_f64(default))
        };
        Config {
            nats_url: var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            nats_user: var("NATS_USER"),
            nats_password: var("NATS_PASSWORD"),
            nats_creds: var("NATS_CREDS"),
            bucket: var("OMS_BUCKET").unwrap_or_else(|| "oms".into()),
            replicas: var("OMS_REPLICAS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            hold_ttl: secs("OMS_HOLD_TTL", 60.0),
            gateway_addr: var("GATEWAY_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            request_timeout: secs("OMS_REQUEST_TIMEOUT", 5.0),
            bucket_max_bytes: limit("OMS_BUCKET_MAX_BYTES", var, GIB),
            events_max_bytes: limit("OMS_EVENTS_MAX_BYTES", var, GIB),
            ledger_max_bytes: limit("OMS_LEDGER_MAX_BYTES", var, GIB),
            max_deliver: limit("OMS_MAX_DELIVER", var, 5),
        }
    }
}

const GIB: i64 = 1 << 30;

/// A positive count, bytes optionally with a `KiB`/`MiB`/`GiB` suffix
/// (`OMS_BUCKET_MAX_BYTES=512MiB`). A malformed value stops the process
/// with a message naming the variable: a limit is never silently replaced.
fn limit(name: &str, var: impl Fn(&str) -> Option<String>, default: i64) -> i64 {
    let Some(value) = var(name) else {
        return default;
    };
    parse_limit(&value).unwrap_or_else(|| {
        eprintln!("{name}: {value:?} is not a positive number (bytes may end in KiB, MiB or GiB)");
        std::process::exit(2)
    })
}

fn parse_limit(value: &str) -> Option<i64> {
    let value = value.trim();
    let (digits, unit) = [("GiB", 1i64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, unit)| Some((value.strip_suffix(suffix)?, unit)))
        .unwrap_or((value, 1));
    let number: i64 = digits.trim().parse().ok()?;
    number.checked_mul(unit).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_are_positive_numbers_with_an_optional_unit() {
        use super::parse_limit;
        assert_eq!(parse_limit("300000"), Some(300_000));
        assert_eq!(parse_limit("512MiB"), Some(512 << 20));
        assert_eq!(parse_limit("2 GiB"), Some(2 << 30));
        for bad in ["", "0", "-1", "1GB", "lots", "9223372036854775807GiB"] {
            assert_eq!(parse_limit(bad), None, "{bad}");
        }
    }
}
