//! The REST gateway: every REST route of the contract is one NATS request
//! to its operation's subject. It holds no state of its own, so any number
//! of gateways can run side by side.
//!
//! A request goes: [`routes`] (which operation, which path parameters) ->
//! [`auth`] (who asks), [`limit`] (how often), [`policy`] (may they) ->
//! [`forward`] (body checks in [`body`], payload in [`payload`], the NATS
//! request) -> [`reply`] (NATS outcome to HTTP). Around that, [`Gateway::handle`]
//! gives each request an id, a deadline, a log span and its metrics;
//! [`server`] runs hyper with limits, [`conn`] deadlines and graceful shutdown.

pub mod auth;
pub mod body;
pub mod conn;
pub mod endpoint;
pub mod forward;
pub mod health;
pub mod jwt;
pub mod limit;
pub mod metrics;
pub mod openapi;
pub mod payload;
pub mod policy;
pub mod reply;
pub mod respond;
pub mod routes;
pub mod server;
pub mod settings;
pub mod tls;
pub mod url;

use auth::Caller;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ALLOW};
use hyper::{HeaderMap, Request, Response, StatusCode};
use oms_runtime::service::{REQUEST_ID, TRACEPARENT};
use oms_runtime::{Config, Problem};
use policy::Access;
use respond::Body;
use routes::{Lookup, Table, Target};
use settings::Settings;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What every request shares.
pub struct Gateway {
    pub config: Config,
    pub settings: Settings,
    limiter: Option<limit::Limiter>,
    pub table: Table,
    pub metrics: metrics::Metrics,
    /// Set once the first connection to NATS is made; until then requests
    /// that need NATS get a 503 while `/healthz` already answers.
    nats: OnceLock<async_nats::Client>,
    openapi: Bytes,
}

impl Gateway {
    pub fn new(config: Config, settings: Settings) -> Arc<Gateway> {
        let table = Table::from_contract();
        let openapi = Bytes::from(
            serde_json::to_vec_pretty(&openapi::document(&table)).expect("openapi is JSON"),
        );
        Arc::new(Gateway {
            config,
            limiter: limit::Limiter::new(settings.rate_limit),
            settings,
            table,
            metrics: metrics::Metrics::default(),
            nats: OnceLock::new(),
            openapi,
        })
    }

    pub fn set_nats(&self, client: async_nats::Client) {
        let _ = self.nats.set(client);
    }

    pub fn nats(&self) -> Option<&async_nats::Client> {
        self.nats.get()
    }

    /// Longest a request may take in all: its body, then its NATS request.
    /// Past it the client gets a 504 rather than waiting on.
    pub fn deadline(&self) -> Duration {
        body::BODY_TIMEOUT + self.config.request_timeout + Duration::from_secs(1)
    }

    /// Every request, whatever its route: id, deadline, metrics, log line.
    pub async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let _in_flight = self.metrics.start();
        drop_oms_headers(request.headers_mut());
        let request_id = header(&request, REQUEST_ID)
            .filter(|id| id.len() <= 128)
            .map(str::to_string)
            .unwrap_or_else(|| nuid::next().to_string());
        let traceparent = header(&request, TRACEPARENT)
            .filter(|tp| valid_traceparent(tp))
            .map(str::to_string);
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);

        let (label, mut response) =
            match self.table.find(&method, &path) {
                Lookup::Found(route, params) => {
                    let trace = forward::Trace {
                        request_id: &request_id,
                        traceparent: traceparent.as_deref(),
                    };
                    let work = self.serve(route, params, request, trace, peer);
                    let response =
                        match tokio::time::timeout(self.deadline(), work.instrument(span.clone()))
                            .await
                        {
                            Ok(response) => response,
                            Err(_) => respond::problem(&Problem::timeout(
                                "the request did not complete in time",
                            )),
                        };
                    (route.path, response)
                }
                unmatched => match self.over_limit(&limit::address_key(peer.ip())) {
                    Some(wait) => ("unmatched", respond::too_many_requests(wait)),
                    None => ("unmatched", self.unmatched(unmatched, &method, &path)),
                },
            };

        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics.observe(&method, label, status, elapsed);
        span.in_scope(|| tracing::info!(status, micros = elapsed.as_micros() as u64, "answered"));
        response
    }

    /// A matched route: who asks, may they, then its work.
    async fn serve(
        &self,
        route: &routes::Route,
        params: routes::Params<'_>,
        request: Request<Incoming>,
        trace: forward::Trace<'_>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let caller = match self.admit(route.access, request.headers(), peer) {
            Ok(caller) => caller,
            Err(refusal) => return body::refuse(request, *refusal).await,
        };
        let grant = match policy::decide(route.access, &caller) {
            Ok(grant) => grant,
            Err(problem) => return body::refuse(request, respond::problem(&problem)).await,
        };
        match &route.target {
            Target::Operation(endpoint) => {
                let who = forward::Who {
                    caller: &caller,
                    grant,
                };
                forward::forward(self, endpoint, params, request, trace, who)
                    .await
                    .unwrap_or_else(|problem| respond::problem(&problem))
            }
            Target::Health => health::healthz(),
            Target::Ready => health::readyz(self).await,
            Target::Metrics => self.metrics_page().await,
            Target::OpenApi => respond::json(StatusCode::OK, self.openapi.clone()),
        }
    }

    /// 405 with `Allow`, or 404.
    fn unmatched(
        &self,
        lookup: Lookup<'_, '_>,
        method: &hyper::Method,
        path: &str,
    ) -> Response<Body> {
        let Lookup::MethodNotAllowed(allow) = lookup else {
            return respond::problem(&respond::no_route(method.as_str(), path));
        };
        let mut response = respond::problem(&respond::method_not_allowed(method.as_str(), path));
        let allow = allow
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(value) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(ALLOW, value);
        }
        response
    }

    /// Who asks (unless the route is open) and whether they may ask now:
    /// the rate limit counts every request, refused ones too, by principal
    /// or, without one, by client address.
    fn admit(
        &self,
        access: Access,
        headers: &HeaderMap,
        peer: SocketAddr,
    ) -> Result<Caller, Box<Response<Body>>> {
        let authenticated = match access {
            Access::Open => Ok(Caller::Anyone),
            _ => self.settings.auth.authenticate(headers),
        };
        let key = match &authenticated {
            Ok(Caller::Principal(p)) => limit::principal_key(&p.sub),
            _ => limit::address_key(peer.ip()),
        };
        if let Some(wait) = self.over_limit(&key) {
            return Err(Box::new(respond::too_many_requests(wait)));
        }
        authenticated.map_err(|rejection| Box::new(auth::unauthorized(&rejection)))
    }

    /// Bytes and limits of the system's streams, and what waits in the
    /// dead-letter stream, as JetStream reports them now.
    async fn store_metrics(&self, client: &async_nats::Client, nats: &mut metrics::Nats) {
        use oms_runtime::consumer::DLQ_STREAM;
        let js = async_nats::jetstream::new(client.clone());
        let bucket = format!("KV_{}", self.config.bucket);
        for name in [bucket.as_str(), "OMS_EVENTS", DLQ_STREAM] {
            let Ok(mut stream) = js.get_stream(name).await else {
                continue;
            };
            let Ok(info) = stream.info().await else {
                continue;
            };
            nats.streams
                .push((name.to_string(), info.state.bytes, info.config.max_bytes));
            if name == DLQ_STREAM {
                nats.dead_letters_total = Some(info.state.last_sequence);
            }
        }
        if nats.dead_letters_total.is_some() {
            if let Ok(stream) = js.get_stream(DLQ_STREAM).await {
                if let Ok(mut subjects) = stream.info_with_subjects("dlq.>").await {
                    while let Some(Ok((subject, count))) =
                        futures::StreamExt::next(&mut subjects).await
                    {
                        nats.dead_letters.push((subject, count as u64));
                    }
                }
            }
            nats.dead_letters.sort();
        }
    }

    /// Seconds to wait when `key` has no token left.
    fn over_limit(&self, key: &str) -> Option<u64> {
        self.limiter.as_ref()?.take(key).err()
    }

    async fn metrics_page(&self) -> Response<Body> {
        let client = self.nats();
        let mut nats = metrics::Nats {
            connected: client
                .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected),
            // The client's own count of established connections, less the first.
            reconnects: client
                .map(|c| {
                    c.statistics()
                        .connects
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .saturating_sub(1)
                })
                .unwrap_or(0),
            ..Default::default()
        };
        if let Some(client) = client.filter(|_| nats.connected) {
            // Bounded: the page answers even when JetStream does not.
            let store = self.store_metrics(client, &mut nats);
            let _ = tokio::time::timeout(Duration::from_secs(1), store).await;
        }
        respond::with_type(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            self.metrics.render(nats),
        )
    }
}

/// `Oms-*` headers are the gateway's to set: whatever a
/// client sent under those names is gone before anything reads the request.
fn drop_oms_headers(headers: &mut HeaderMap) {
    let ours = |name: &HeaderName| name.as_str().starts_with("oms-");
    if headers.keys().any(ours) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| ours(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

/// A header as text, when it is visible ASCII (what a NATS header may carry).
fn header<'r>(request: &'r Request<Incoming>, name: &str) -> Option<&'r str> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// W3C trace context: `version-traceid-parentid-flags` in lowercase hex
/// (2-32-16-2). Anything else is dropped, as the spec asks of a receiver.
fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
}

/// Runs the gateway until SIGTERM/SIGINT: binds `GATEWAY_ADDR`, connects to
/// NATS in the background (retrying), serves, then shuts down gracefully.
pub async fn run(config: Config, settings: Settings) -> Result<(), std::io::Error> {
    // Checked before listening: NATS is connected to in the background.
    oms_runtime::connect::tls(&config).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(&config.gateway_addr).await?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(addr = %listener.local_addr()?, scheme, routes = config_routes(), "gateway listening");
    let gateway = Gateway::new(config, settings);
    let connecting = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let client = oms_runtime::connect::connect(&gateway.config, "gateway").await;
            gateway.set_nats(client);
        })
    };
    server::serve(listener, gateway.clone(), oms_runtime::shutdown_signal()).await;
    connecting.abort();
    if let Some(client) = gateway.nats() {
        let _ = client.flush().await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn config_routes() -> usize {
    oms_runtime::contract::OPERATIONS
        .iter()
        .filter(|op| op.route.is_some())
        .count()
}

#[cfg(test)]
mod tests {
    use super::valid_traceparent;

    #[test]
    fn traceparent_shape() {
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent("hello"));
    }
}
