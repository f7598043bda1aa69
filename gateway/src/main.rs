//! `gateway`: the REST front of the OMS operations. Configured by the
//! environment like every binary (`GATEWAY_ADDR`, `NATS_URL`, `OMS_JWT_*`,
//! ...; see the gateway's README).
//!
//! `gateway token staff|customer [sub]` prints a development token signed
//! with `OMS_JWT_SECRET` instead (what `just token` runs).

use gateway::settings::Settings;
use oms_runtime::Env;
use serde_json::json;
use std::process::ExitCode;

/// How long a development token lives.
const TOKEN_HOURS: u64 = 12;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("token") {
        return token(&args[1..]);
    }
    let (_logs, config) = oms_runtime::init("gateway");
    let settings = Settings::read(&Env::process()).unwrap_or_else(|err| {
        tracing::error!("gateway cannot start: {err}");
        std::process::exit(2)
    });
    if settings.auth.is_off() {
        tracing::warn!(
            "OMS_AUTH=off: every request acts as staff, without a token; \
             never run so where anyone but you can reach the gateway"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(gateway::run(config, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "gateway cannot start");
            ExitCode::FAILURE
        }
    }
}

/// Prints an HS256 token for `role` (`sub` defaults to `staff-1` / `c-1`)
/// with the audience and issuer the gateway checks.
fn token(args: &[String]) -> ExitCode {
    let role = args.first().map(String::as_str).unwrap_or("staff");
    if !matches!(role, "staff" | "customer") || args.len() > 2 {
        eprintln!("usage: gateway token staff|customer [sub]");
        return ExitCode::from(2);
    }
    let default_sub = if role == "staff" { "staff-1" } else { "c-1" };
    let sub = args.get(1).map_or(default_sub, String::as_str);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(secret) = var("OMS_JWT_SECRET") else {
        eprintln!("OMS_JWT_SECRET is not set: `just token` reads the one `just up` made");
        return ExitCode::from(2);
    };
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "sub": sub,
        "roles": [role],
        "aud": var("OMS_JWT_AUDIENCE").unwrap_or_else(|| "oms".into()),
        "iat": now,
        "exp": now + TOKEN_HOURS * 3600,
    });
    if let Some(issuer) = var("OMS_JWT_ISSUER") {
        claims["iss"] = json!(issuer);
    }
    match gateway::jwt::sign_hs256(secret.as_bytes(), &claims) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot sign: {err}");
            ExitCode::FAILURE
        }
    }
}
