//! A thin, owned layer of the NATS service protocol (ADR-32, "micro").
//!
//! Owned rather than borrowed from async-nats' `service` module because the
//! contract needs what that module cannot do: error replies
//! that carry both error headers *and* a problem body, errors counted in
//! STATS, a discovery responder that survives a bad `$SRV` request, and a
//! drain that finishes in-flight requests before the process leaves.

use crate::drain::{Drain, DrainReason, Left, Phase, DRAIN_DEADLINE};
use crate::problem::Problem;
use crate::schema::Schema;
use crate::Spec;
use crate::{time, App, Ctx};
use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY: usize = 64 * 1024;
/// Requests one instance works on at once; more wait in the subscription.
const MAX_IN_FLIGHT: u32 = 1024;
/// How long the last replies get to reach the server.
const LAST_FLUSH: Duration = Duration::from_secs(1);

pub const REQUEST_ID: &str = "X-Request-Id";
pub const TRACEPARENT: &str = "traceparent";
pub const ERROR_HEADER: &str = "Nats-Service-Error";
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

#[derive(Default)]
struct Stats {
    num_requests: u64,
    num_errors: u64,
    last_error: String,
    processing_time: u128,
}

/// What discovery tells about this instance.
struct Identity {
    op: &'static Spec,
    id: String,
    version: &'static str,
    started: String,
    stats: Mutex<Stats>,
}

/// Serves `op` with `handler` until SIGTERM/SIGINT, then drains.
pub async fn serve<S, Req, Resp, F, Fut>(
    app: Arc<App>,
    state: Arc<S>,
    op: &'static Spec,
    handler: F,
) where
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Ctx<S>, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Problem>> + Send + 'static,
{
    let request_schema = Arc::new(Schema::compile(op.request_schema()));
    let identity = Arc::new(Identity {
        op,
        id: nuid::next().to_string(),
        version: env!("CARGO_PKG_VERSION"),
        started: time::now(),
        stats: Mutex::default(),
    });
    let handler = Arc::new(handler);
    let client = app.client.clone();

    let mut endpoint = subscribe(&client, op).await;
    let mut discovery = discovery_subscriptions(&client, &identity).await;
    tracing::info!(service = op.service, subject = %op.subject(), id = %identity.id, "serving");

    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    let mut shutdown = std::pin::pin!(crate::shutdown_signal());
    let mut drain = Drain::new(Instant::now());
    // Biased: a waiting request is always taken before a timer fires, so
    // "quiet" means the subscription is empty, not that this task was late.
    let left = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown, if drain.phase() == Phase::Serving => {
                let count = drain.leave(Instant::now());
                // Without NATS there is nothing to drain and nobody to
                // answer: leave now rather than wait out the drain deadline.
                if !connected(&client) {
                    tracing::info!("NATS is not connected; leaving without a drain");
                    break Left::Disconnected;
                }
                // async-nats' own drain drops the subscription as soon as
                // the UNSUB is written, before the server has processed it,
                // which loses a request the server routes here meanwhile.
                tracing::info!(until = count, "SIGTERM: leaving by count");
                if let Err(err) = endpoint.unsubscribe_after(count).await {
                    tracing::warn!(error = %err, "unsubscribe failed");
                    break Left::Failed;
                }
            }
            // Leaving and draining need the server; without a connection
            // they would wait for ever. What is still queued goes unanswered.
            _ = tokio::time::sleep_until(drain.deadline().unwrap_or_else(Instant::now)), if drain.deadline().is_some() => {
                break Left::Deadline
            }
            Some(message) = discovery.next() => answer_discovery(&client, &identity, message).await,
            message = endpoint.next() => {
                let Some(message) = message else {
                    break drain.closed();
                };
                drain.on_message(Instant::now());
                let permit = in_flight.clone().acquire_owned().await.expect("semaphore open");
                let (app, state, identity, schema, handler) =
                    (app.clone(), state.clone(), identity.clone(), request_schema.clone(), handler.clone());
                tokio::spawn(async move {
                    handle(app, state, &identity, &schema, &*handler, message).await;
                    drop(permit);
                });
            }
            // Too little traffic to reach the count soon. A request the
            // server routes here in the drain's round trip is lost (README,
            // draining).
            _ = tokio::time::sleep_until(drain.drain_at().unwrap_or_else(Instant::now)), if drain.drain_at().is_some() => {
                let after = match drain.start_draining(Instant::now()) {
                    DrainReason::Quiet => "no request for 100 ms",
                    DrainReason::LeftTooLong => "3 s of leaving",
                };
                tracing::info!(after, received = drain.received(), "quiet drain");
                if let Err(err) = endpoint.drain().await {
                    tracing::warn!(error = %err, "drain failed");
                    break Left::Failed;
                }
            }
        }
    };
    finish(&client, left, &drain, &in_flight).await;
}

/// Joins the queue group, retrying until the server takes the subscription.
async fn subscribe(client: &async_nats::Client, op: &Spec) -> async_nats::Subscriber {
    loop {
        match client
            .queue_subscribe(op.subject(), op.service.to_string())
            .await
        {
            Ok(sub) => return sub,
            Err(err) => {
                tracing::warn!(error = %err, "subscribe failed, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// After the endpoint left: waits for the work in flight until the drain
/// deadline, then gets the last replies to the server.
async fn finish(client: &async_nats::Client, left: Left, drain: &Drain, in_flight: &Semaphore) {
    let received = drain.received();
    match left {
        Left::ByCount => tracing::info!(received, "left by count"),
        Left::Drained => tracing::info!(received, "drained"),
        Left::Failed => tracing::warn!("the endpoint's subscription ended"),
        Left::Deadline | Left::Disconnected => {}
    }
    let deadline = drain
        .deadline()
        .unwrap_or_else(|| Instant::now() + DRAIN_DEADLINE);
    let answered = tokio::time::timeout_at(deadline, in_flight.acquire_many(MAX_IN_FLIGHT))
        .await
        .is_ok();
    if left == Left::Deadline || !answered {
        let in_flight = MAX_IN_FLIGHT as usize - in_flight.available_permits();
        tracing::warn!(
            in_flight,
            "drain deadline passed: leaving what is unanswered (its callers time out)"
        );
    }
    if connected(client) {
        let _ = tokio::time::timeout(LAST_FLUSH, client.flush()).await;
    }
    tracing::info!("stopped");
}

fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

async fn handle<S, Req, Resp, F, Fut>(
    app: Arc<App>,
    state: Arc<S>,
    identity: &Identity,
    schema: &Schema,
    handler: &F,
    message: Message,
) where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Ctx<S>, Req) -> Fut,
    Fut: Future<Output = Result<Resp, Problem>>,
{
    let started = Instant::now();
    let headers = message.headers.as_ref();
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.to_string());
    let request_id = header(REQUEST_ID).unwrap_or_else(|| nuid::next().to_string());
    let traceparent = header(TRACEPARENT);
    let span = tracing::info_span!("request", subject = %message.subject, request_id = %request_id, traceparent = traceparent.as_deref().unwrap_or(""));
    let client = app.client.clone();
    let deadline = crate::Deadline::from_headers(headers);
    let ctx = Ctx {
        app,
        state,
        request_id: request_id.clone(),
        traceparent,
        principal: crate::Principal::from_headers(headers),
        deadline: deadline.clone().ok().flatten(),
        on_behalf_of: header(crate::principal::ACTOR_HEADER).filter(|a| !a.is_empty()),
    };
    let result = async {
        // Work whose caller has stopped waiting is not started.
        if deadline?.is_some_and(crate::Deadline::passed) {
            return Err(crate::Deadline::passed_problem("the work began"));
        }
        let request = parse::<Req>(schema, &message.payload)?;
        let response = handler(ctx, request).await?;
        serde_json::to_vec(&response).map_err(Problem::internal)
    }
    .instrument(span.clone())
    .await;

    let elapsed = started.elapsed();
    let mut reply_headers = HeaderMap::new();
    reply_headers.insert(REQUEST_ID, request_id.as_str());
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(problem) => {
            reply_headers.insert(ERROR_HEADER, problem.header_text().as_str());
            reply_headers.insert(ERROR_CODE_HEADER, problem.status.to_string().as_str());
            reply_headers.insert("Content-Type", "application/problem+json");
            let body = serde_json::to_vec(&problem).unwrap_or_default();
            let mut stats = identity.stats.lock().unwrap();
            stats.num_errors += 1;
            stats.last_error = format!("{}:{}", problem.status, problem.header_text());
            (problem.status, body)
        }
    };
    {
        let mut stats = identity.stats.lock().unwrap();
        stats.num_requests += 1;
        stats.processing_time += elapsed.as_nanos();
    }
    // Holds a request in flight at will: the drain tests need one there.
    crate::fault::point("handle.before-reply").await;
    let _enter = span.enter();
    tracing::info!(status, micros = elapsed.as_micros() as u64, "handled");
    if let Some(reply) = message.reply {
        if let Err(err) = client
            .publish_with_headers(reply, reply_headers, Bytes::from(body))
            .await
        {
            tracing::warn!(error = %err, "reply failed");
        }
    }
}

/// Size check, JSON parse, schema check, typed parse: every way a request can
/// be malformed ends here as a precise 4xx before any handler code runs.
fn parse<Req: DeserializeOwned>(schema: &Schema, payload: &[u8]) -> Result<Req, Problem> {
    if payload.len() > MAX_BODY {
        return Err(Problem::too_large(MAX_BODY));
    }
    // An empty body is an empty object: `nats req inventory.list ''` lists.
    let payload: &[u8] = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        payload
    };
    let value: Value = serde_json::from_slice(payload)
        .map_err(|err| Problem::invalid_field("", format!("invalid JSON: {err}")))?;
    schema
        .check(&value)
        .map_err(|errors| Problem::bad_request("the request does not match its schema", errors))?;
    serde_json::from_value(value).map_err(|err| Problem::invalid_field("", err.to_string()))
}

async fn discovery_subscriptions(
    client: &async_nats::Client,
    identity: &Identity,
) -> impl Stream<Item = Message> + Unpin {
    let name = identity.op.service;
    let mut subscriptions = Vec::new();
    for verb in ["PING", "INFO", "STATS"] {
        for subject in [
            format!("$SRV.{verb}"),
            format!("$SRV.{verb}.{name}"),
            format!("$SRV.{verb}.{name}.{}", identity.id),
        ] {
            loop {
                match client.subscribe(subject.clone()).await {
                    Ok(sub) => break subscriptions.push(sub),
                    Err(err) => {
                        tracing::warn!(error = %err, "discovery subscribe failed, retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }
    futures::stream::select_all(subscriptions)
}

/// Answers PING/INFO/STATS. A request without a reply subject is ignored, so
/// a stray publish cannot take this instance out of discovery.
async fn answer_discovery(client: &async_nats::Client, identity: &Identity, message: Message) {
    let Some(reply) = message.reply else { return };
    let verb = message.subject.split('.').nth(1).unwrap_or_default();
    let body = match verb {
        "PING" => ping(identity),
        "INFO" => info(identity),
        "STATS" => stats(identity),
        _ => return,
    };
    if let Err(err) = client.publish(reply, body.to_string().into()).await {
        tracing::warn!(error = %err, "discovery reply failed");
    }
}

fn ping(identity: &Identity) -> Value {
    json!({
        "type": "io.nats.micro.v1.ping_response",
        "name": identity.op.service,
        "id": identity.id,
        "version": identity.version,
        "metadata": {},
    })
}

fn info(identity: &Identity) -> Value {
    let op = identity.op;
    let mut metadata = json!({
        "request_schema": op.request_schema(),
        "response_schema": op.response_schema(),
        // Every error reply's body: published so a client checks both.
        "problem_schema": crate::contract::problem_schema(),
    });
    if let Some(route) = op.route {
        metadata["rest"] = json!(format!("{} {}", route.method, route.path));
    }
    json!({
        "type": "io.nats.micro.v1.info_response",
        "name": op.service,
        "id": identity.id,
        "version": identity.version,
        "description": op.description,
        "metadata": {},
        "endpoints": [{
            "name": op.endpoint,
            "subject": op.subject(),
            "queue_group": op.service,
            "metadata": metadata,
        }],
    })
}

fn stats(identity: &Identity) -> Value {
    let op = identity.op;
    let stats = identity.stats.lock().unwrap();
    let average = stats.processing_time / u128::from(stats.num_requests.max(1));
    json!({
        "type": "io.nats.micro.v1.stats_response",
        "name": op.service,
        "id": identity.id,
        "version": identity.version,
        "metadata": {},
        "started": identity.started,
        "endpoints": [{
            "name": op.endpoint,
            "subject": op.subject(),
            "queue_group": op.service,
            "num_requests": stats.num_requests,
            "num_errors": stats.num_errors,
            "last_error": stats.last_error,
            "processing_time": stats.processing_time as u64,
            "average_processing_time": average as u64,
        }],
    })
}
