//! `/healthz` and `/readyz`.
//!
//! Health is "the process answers HTTP": it never looks at NATS, so a NATS
//! outage does not get healthy gateways restarted. Readiness is "a request
//! now would be served": NATS is connected and every service of the contract
//! has at least one instance answering `$SRV.PING.<service>`. The pings go
//! out concurrently and each waits [`PING_WINDOW`] at most; a service with
//! no instance at all is known at once (no responders). Both say whether
//! authentication is on (`"auth":"off"` with `OMS_AUTH=off`).

use crate::respond::{self, Body};
use crate::Gateway;
use hyper::{Response, StatusCode};
use oms_runtime::contract::OPERATIONS;
use oms_runtime::Problem;
use serde_json::json;
use std::time::Duration;
use tokio::task::JoinSet;

pub const PING_WINDOW: Duration = Duration::from_millis(500);

pub fn healthz() -> Response<Body> {
    respond::json(StatusCode::OK, json!({"status": "ok"}).to_string())
}

pub async fn readyz(gateway: &Gateway) -> Response<Body> {
    let services = services();
    let auth = if gateway.settings.auth.is_off() {
        "off"
    } else {
        "on"
    };
    let connected = gateway
        .nats()
        .filter(|c| c.connection_state() == async_nats::connection::State::Connected);
    let Some(client) = connected else {
        let problem = Problem::unavailable("the gateway is not connected to NATS")
            .with("auth", auth)
            .with("nats", "disconnected")
            .with("missing", &services);
        return respond::problem(&problem);
    };

    let mut pings = JoinSet::new();
    for (index, service) in services.iter().enumerate() {
        let client = client.clone();
        let subject = format!("$SRV.PING.{service}");
        pings.spawn(async move {
            let request = async_nats::Request::new().timeout(Some(PING_WINDOW));
            let answered = client
                .send_request(subject, request)
                .await
                .is_ok_and(|m| !m.payload.is_empty());
            (index, answered)
        });
    }
    let mut up = vec![false; services.len()];
    while let Some(joined) = pings.join_next().await {
        if let Ok((index, answered)) = joined {
            up[index] = answered;
        }
    }
    let missing: Vec<&str> = services
        .iter()
        .zip(&up)
        .filter(|(_, up)| !**up)
        .map(|(s, _)| *s)
        .collect();
    if missing.is_empty() {
        let body =
            json!({"status": "ready", "auth": auth, "nats": "connected", "services": services});
        respond::json(StatusCode::OK, body.to_string())
    } else {
        let problem =
            Problem::unavailable(format!("no instance answers for: {}", missing.join(", ")))
                .with("auth", auth)
                .with("nats", "connected")
                .with("missing", &missing);
        respond::problem(&problem)
    }
}

/// Every service of the contract, once, in table order.
fn services() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for op in OPERATIONS.iter() {
        if !names.contains(&op.service) {
            names.push(op.service);
        }
    }
    names
}
