//! The gateway's own settings, read from the
//! environment once at start. A value that does not parse is an error that
//! names its variable: the gateway does not start on a guess, and it does
//! not start without a key to check tokens unless told `OMS_AUTH=off`.

use crate::auth::Auth;
use crate::jwt::Keys;
use oms_runtime::{ConfigError, Env};
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
    pub fn read(env: &Env) -> Result<Settings, ConfigError> {
        let auth = match env.choice("OMS_AUTH", &["on", "off"], "on")? {
            "off" => Auth::Off,
            _ => Auth::Jwt(keys(env)?),
        };
        Ok(Settings {
            auth,
            rate_limit: env.whole("GATEWAY_RATE_LIMIT", 10_000, 0, u32::MAX.into())? as u32,
            max_connections: env.whole("GATEWAY_MAX_CONNECTIONS", 10_000, 1, 1 << 20)? as usize,
            header_timeout: env.seconds("GATEWAY_HEADER_TIMEOUT", 10.0, DAY)?,
            idle_timeout: env.seconds("GATEWAY_IDLE_TIMEOUT", 60.0, DAY)?,
            tls: crate::tls::from_vars(env.text("GATEWAY_TLS_CERT"), env.text("GATEWAY_TLS_KEY"))?,
        })
    }
}

const DAY: f64 = 86_400.0;

fn keys(env: &Env) -> Result<Keys, ConfigError> {
    let audience = env.text_or("OMS_JWT_AUDIENCE", "oms");
    let issuer = env.text("OMS_JWT_ISSUER");
    let error = |variable: &str, found: &str, expected: String| ConfigError {
        variable: variable.into(),
        found: found.into(),
        expected,
    };
    match (env.text("OMS_JWT_SECRET"), env.text("OMS_JWT_PUBLIC_KEYS")) {
        (Some(_), Some(path)) => Err(error(
            "OMS_JWT_PUBLIC_KEYS",
            &path,
            "to be unset when OMS_JWT_SECRET is set: one key source, not both".into(),
        )),
        (Some(secret), None) => Keys::secret(secret.as_bytes(), &audience, issuer.as_deref())
            .map_err(|why| error("OMS_JWT_SECRET", "(hidden)", why)),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|json| Keys::jwks(&json, &audience, issuer.as_deref()))
            .map_err(|why| error("OMS_JWT_PUBLIC_KEYS", &path, format!("a JWKS file ({why})"))),
        (None, None) => Err(error(
            "OMS_JWT_SECRET",
            "",
            "a key to check bearer tokens with: OMS_JWT_SECRET (HS256, for development) \
             or OMS_JWT_PUBLIC_KEYS (a JWKS file), or OMS_AUTH=off to serve every request as staff"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::read(&Env::table(vars)).map_err(|e| e.to_string())
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
            .starts_with("GATEWAY_TLS_CERT=\"/no/cert.pem\""));
        assert!(s.tls.is_none(), "plain HTTP by default");
        let fast = settings(&[SECRET, ("GATEWAY_HEADER_TIMEOUT", "0.5")]).unwrap();
        assert_eq!(fast.header_timeout, Duration::from_millis(500));
    }
}
