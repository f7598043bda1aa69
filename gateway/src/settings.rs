//! The gateway's own settings (DESIGN §10.1, §10.4), read from the
//! environment once at start. A value that does not parse is an error that
//! names its variable: the gateway does not start on a guess, and it does
//! not start without a key to check tokens unless told `OMS_AUTH=off`.

use crate::auth::Auth;
use crate::jwt::Keys;
use std::time::Duration;

pub struct Settings {
    pub auth: Auth,
    /// Requests per second per caller, burst twice that; 0 = no limit.
    pub rate_limit: u32,
    pub max_connections: usize,
    /// From accept (or from the first byte of a later request) to a whole
    /// request head.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit with no request.
    pub idle_timeout: Duration,
    /// HTTPS (`GATEWAY_TLS_CERT`, `GATEWAY_TLS_KEY`); plain HTTP when `None`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let auth = match var("OMS_AUTH").as_deref() {
            Some("off") => Auth::Off,
            None | Some("on") => Auth::Jwt(keys(&var)?),
            Some(other) => return Err(format!("OMS_AUTH must be on or off, not {other:?}")),
        };
        Ok(Settings {
            auth,
            rate_limit: number(&var, "GATEWAY_RATE_LIMIT", 10_000, 0)?,
            max_connections: number(&var, "GATEWAY_MAX_CONNECTIONS", 10_000, 1)? as usize,
            header_timeout: seconds(&var, "GATEWAY_HEADER_TIMEOUT", 10.0)?,
            idle_timeout: seconds(&var, "GATEWAY_IDLE_TIMEOUT", 60.0)?,
            tls: crate::tls::from_vars(var("GATEWAY_TLS_CERT"), var("GATEWAY_TLS_KEY"))?,
        })
    }
}

fn keys(var: &impl Fn(&str) -> Option<String>) -> Result<Keys, String> {
    let audience = var("OMS_JWT_AUDIENCE").unwrap_or_else(|| "oms".into());
    let issuer = var("OMS_JWT_ISSUER");
    match (var("OMS_JWT_SECRET"), var("OMS_JWT_PUBLIC_KEYS")) {
        (Some(_), Some(_)) => {
            Err("set one of OMS_JWT_SECRET and OMS_JWT_PUBLIC_KEYS, not both".into())
        }
        (Some(secret), None) => Keys::secret(secret.as_bytes(), &audience, issuer.as_deref()),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|json| Keys::jwks(&json, &audience, issuer.as_deref()))
            .map_err(|e| format!("OMS_JWT_PUBLIC_KEYS ({path}): {e}")),
        (None, None) => Err("no key to check bearer tokens with: set OMS_JWT_SECRET \
             (HS256, for development) or OMS_JWT_PUBLIC_KEYS (a JWKS file), or \
             OMS_AUTH=off to serve every request as staff"
            .into()),
    }
}

fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u32,
    min: u32,
) -> Result<u32, String> {
    match var(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("{name} must be a whole number >= {min}, not {text:?}")),
    }
}

fn seconds(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: f64,
) -> Result<Duration, String> {
    let text = var(name).unwrap_or_else(|| default.to_string());
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{name} must be seconds, > 0 and at most a day, not {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    const SECRET: (&str, &str) = ("OMS_JWT_SECRET", "0123456789abcdef0123456789abcdef");

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let s = settings(&[SECRET]).unwrap();
        assert_eq!((s.rate_limit, s.max_connections), (10_000, 10_000));
        assert_eq!(
            (s.header_timeout, s.idle_timeout),
            (Duration::from_secs(10), Duration::from_secs(60))
        );
        let no_key = settings(&[]).err().unwrap();
        assert!(
            no_key.contains("OMS_JWT_SECRET")
                && no_key.contains("OMS_JWT_PUBLIC_KEYS")
                && no_key.contains("OMS_AUTH=off")
        );
        assert!(settings(&[("OMS_AUTH", "off")]).unwrap().auth.is_off());
        for (name, value) in [
            ("OMS_AUTH", "maybe"),
            ("GATEWAY_RATE_LIMIT", "-1"),
            ("GATEWAY_MAX_CONNECTIONS", "0"),
            ("GATEWAY_HEADER_TIMEOUT", "soon"),
            ("GATEWAY_IDLE_TIMEOUT", "0"),
            ("OMS_JWT_SECRET", "short"),
            ("OMS_JWT_PUBLIC_KEYS", "/no/such/file"),
            ("GATEWAY_TLS_CERT", "/no/such/file"),
            ("GATEWAY_TLS_KEY", "/no/such/file"),
        ] {
            let vars = if name.starts_with("OMS_JWT") {
                vec![(name, value)]
            } else {
                vec![(name, value), SECRET]
            };
            let err = settings(&vars).err().unwrap_or_default();
            assert!(err.contains(name), "{name}={value}: {err:?}");
        }
        assert_eq!(
            settings(&[SECRET, ("GATEWAY_RATE_LIMIT", "0")])
                .unwrap()
                .rate_limit,
            0
        );
        let missing = settings(&[
            SECRET,
            ("GATEWAY_TLS_CERT", "/no/cert.pem"),
            ("GATEWAY_TLS_KEY", "/no/key.pem"),
        ]);
        assert!(missing
            .err()
            .unwrap_or_default()
            .contains("GATEWAY_TLS_CERT (/no/cert.pem)"));
        assert!(s.tls.is_none(), "plain HTTP by default");
        let fast = settings(&[SECRET, ("GATEWAY_HEADER_TIMEOUT", "0.5")]).unwrap();
        assert_eq!(fast.header_timeout, Duration::from_millis(500));
    }
}
