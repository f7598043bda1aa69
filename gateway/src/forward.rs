//! One REST request to one operation: check and read the body, build the
//! payload, `request` the operation's subject with the trace headers, and
//! turn the outcome into HTTP.
//!
//! The NATS failures have their own statuses: nobody subscribed to the
//! subject is a 503 the moment the server says "no responders" (no waiting
//! out a timeout for an operation that is not running), and a handler that
//! does not answer within `OMS_REQUEST_TIMEOUT` is a 504.

use crate::endpoint::Endpoint;
use crate::payload::{self, Parts};
use crate::respond::{self, Body};
use crate::routes::Params;
use crate::{body, reply, Gateway};
use async_nats::client::RequestErrorKind;
use hyper::body::Incoming;
use hyper::{Request, Response};
use oms_runtime::service::{REQUEST_ID, TRACEPARENT};
use oms_runtime::Problem;

/// Who asked: travels to the handler as NATS headers, so its log lines
/// carry the same ids as the gateway's.
pub struct Trace<'a> {
    pub request_id: &'a str,
    pub traceparent: Option<&'a str>,
}

pub async fn forward(
    gateway: &Gateway,
    endpoint: &Endpoint,
    params: Params<'_>,
    request: Request<Incoming>,
    trace: Trace<'_>,
) -> Response<Body> {
    match try_forward(gateway, endpoint, params, request, trace).await {
        Ok(response) => response,
        Err(problem) => respond::problem(&problem),
    }
}

async fn try_forward(
    gateway: &Gateway,
    endpoint: &Endpoint,
    params: Params<'_>,
    request: Request<Incoming>,
    trace: Trace<'_>,
) -> Result<Response<Body>, Problem> {
    let (head, incoming) = request.into_parts();
    let body = if endpoint.has_body {
        body::check_content_type(&head.headers)?;
        Some(body::read(&head.headers, incoming).await?)
    } else {
        None
    };
    let idempotency_key = match head.headers.get("idempotency-key") {
        Some(value) => Some(value.to_str().map_err(|_| {
            Problem::invalid_field(
                "/idempotencyKey",
                "the Idempotency-Key header is not visible ASCII",
            )
        })?),
        None => None,
    };
    let payload = payload::build(
        endpoint,
        Parts {
            params: &params,
            query: head.uri.query(),
            body,
            idempotency_key,
        },
    )?;

    let client = gateway
        .nats()
        .ok_or_else(|| Problem::unavailable("the gateway is not connected to NATS yet"))?;
    // While reconnecting, a request would sit in the client's buffer until
    // it times out: say 503 now, which a client knows to retry.
    if client.connection_state() != async_nats::connection::State::Connected {
        return Err(Problem::unavailable(
            "the gateway has lost its NATS connection; retry shortly",
        ));
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(REQUEST_ID, trace.request_id);
    if let Some(traceparent) = trace.traceparent {
        headers.insert(TRACEPARENT, traceparent);
    }
    let nats_request = async_nats::Request::new()
        .payload(payload)
        .headers(headers)
        .timeout(Some(gateway.config.request_timeout));
    let message = client
        .send_request(endpoint.subject.clone(), nats_request)
        .await
        .map_err(|err| match err.kind() {
            RequestErrorKind::NoResponders => {
                Problem::unavailable(format!("no instance of {} is running", endpoint.op.service))
            }
            RequestErrorKind::TimedOut => Problem::timeout(format!(
                "{} did not answer within {:?}",
                endpoint.op.service, gateway.config.request_timeout
            )),
            RequestErrorKind::MaxPayloadExceeded => {
                Problem::too_large(oms_runtime::service::MAX_BODY)
            }
            _ => {
                tracing::warn!(error = %err, subject = %endpoint.subject, "NATS request failed");
                Problem::unavailable("NATS is not reachable")
            }
        })?;
    reply::to_http(endpoint, &head.uri, message)
}
