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
    /// How long an order may stay PENDING (unpaid) before it expires
    /// (`OMS_PENDING_TTL`, seconds; 0, the default: never).
    pub pending_ttl: Option<Duration>,
    pub gateway_addr: String,
    /// How long the gateway (and callers inside handlers) wait for a reply.
    pub request_timeout: Duration,
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
            pending_ttl: Some(secs("OMS_PENDING_TTL", 0.0)).filter(|ttl| !ttl.is_zero()),
            gateway_addr: var("GATEWAY_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            request_timeout: secs("OMS_REQUEST_TIMEOUT", 5.0),
        }
    }
}
