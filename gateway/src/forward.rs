//! One REST request to one operation: check and read the body, build the
//! payload, `request` the operation's subject with the trace and principal
//! headers, and turn the outcome into HTTP.
//!
//! The NATS failures have their own statuses: nobody subscribed to the
//! subject is a 503 the moment the server says "no responders" (no waiting
//! out a timeout for an operation that is not running), and a handler that
//! does not answer within `OMS_REQUEST_TIMEOUT` is a 504.
//!
//! A customer's order is checked here, by reading it: before
//! a cancel, and in the reply of a read. Another customer's order is
//! answered exactly as `orders.get` answers a missing one.

use crate::auth::{self, Caller, PRINCIPAL_HEADER, ROLES_HEADER};
use crate::endpoint::Endpoint;
use crate::payload::{self, Parts};
use crate::policy::Grant;
use crate::respond::{self, Body};
use crate::routes::Params;
use crate::{body, reply, url, Gateway};
use async_nats::client::RequestErrorKind;
use async_nats::{HeaderMap, Message};
use hyper::body::{Body as _, Incoming};
use hyper::{Request, Response};
use oms_runtime::contract::ORDERS_GET;
use oms_runtime::service::{REQUEST_ID, TRACEPARENT};
use oms_runtime::Problem;

/// Who asked: travels to the handler as NATS headers, so its log lines
/// carry the same ids as the gateway's.
pub struct Trace<'a> {
    pub request_id: &'a str,
    pub traceparent: Option<&'a str>,
}

/// The authenticated caller and what it was granted.
pub struct Who<'a> {
    pub caller: &'a Caller,
    pub grant: Grant<'a>,
}

/// The operation's answer to this HTTP request, or the problem that
/// stopped it (the caller answers it).
pub async fn forward(
    gateway: &Gateway,
    endpoint: &Endpoint,
    params: Params<'_>,
    request: Request<Incoming>,
    trace: Trace<'_>,
    who: Who<'_>,
) -> Result<Response<Body>, Problem> {
    let (head, incoming) = request.into_parts();
    let body = if endpoint.has_body {
        body::check_content_type(&head.headers, !incoming.is_end_stream())?;
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
    let if_match = match head.headers.get(hyper::header::IF_MATCH) {
        Some(value) => Some(value.to_str().map_err(|_| {
            Problem::invalid_field("/expectedRevision", "If-Match is not visible ASCII")
        })?),
        None => None,
    };
    let expected_revision = if endpoint.conditional {
        payload::if_match(if_match)?
    } else {
        None
    };
    let payload = payload::build(
        endpoint,
        Parts {
            params: &params,
            query: head.uri.query(),
            body,
            idempotency_key,
            expected_revision,
            rules: who.grant.rules(),
        },
    )?;

    let headers = nats_headers(&trace, who.caller);
    if let Some(customer) = who.grant.read_first() {
        let id = order_id(&params);
        let get = serde_json::json!({ "id": id }).to_string();
        let subject = ORDERS_GET.subject();
        let order = ask(gateway, &subject, ORDERS_GET.service, get.into(), &headers).await?;
        if let Some(refused) = reply::error(&order) {
            return Ok(refused);
        }
        if order_owner(&order)? != customer {
            return Err(not_found(&id));
        }
        let status = serde_json::from_slice::<serde_json::Value>(&payload)
            .ok()
            .and_then(|p| p["status"].as_str().map(str::to_string));
        if status.as_deref() != Some("CANCELLED") {
            return Err(auth::forbidden("a customer may only set status CANCELLED"));
        }
    }
    let message = ask(
        gateway,
        &endpoint.subject,
        endpoint.op.service,
        payload,
        &headers,
    )
    .await?;
    if let Some(customer) = who.grant.owns_reply() {
        if reply::error(&message).is_none() && order_owner(&message)? != customer {
            return Err(not_found(&order_id(&params)));
        }
    }
    reply::to_http(endpoint, &head.uri, message)
}

fn order_id(params: &Params<'_>) -> String {
    params
        .iter()
        .find(|(name, _)| *name == "id")
        .and_then(|(_, raw)| url::decode(raw, false))
        .unwrap_or_default()
}

/// The request id, trace context and principal; `ask` adds
/// the deadline. Nothing a client sent under `Oms-*` (an `Oms-Deadline`
/// too) gets here: `Gateway::handle` dropped it.
fn nats_headers(trace: &Trace<'_>, caller: &Caller) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(REQUEST_ID, trace.request_id);
    if let Some(traceparent) = trace.traceparent {
        headers.insert(TRACEPARENT, traceparent);
    }
    if let Some(principal) = caller.principal() {
        headers.insert(PRINCIPAL_HEADER, principal.sub.as_str());
        headers.insert(ROLES_HEADER, principal.roles().as_str());
    }
    headers
}

/// What `orders.get` says of a missing order, word for word.
fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("order {id} not found"))
}

/// The `customerId` of an order (a success reply); a 502 without one.
fn order_owner(message: &Message) -> Result<String, Problem> {
    #[derive(serde::Deserialize)]
    struct Owner {
        #[serde(rename = "customerId")]
        customer_id: String,
    }
    serde_json::from_slice::<Owner>(&message.payload)
        .map(|o| o.customer_id)
        .map_err(|_| respond::bad_gateway("an order came back without its customerId"))
}

/// One NATS request, its failures as problems.
async fn ask(
    gateway: &Gateway,
    subject: &str,
    service: &str,
    payload: bytes::Bytes,
    headers: &HeaderMap,
) -> Result<Message, Problem> {
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
    let timeout = gateway.config.request_timeout;
    // The moment this request stops waiting: the handler does
    // not start work past it, nor lets any call it makes outlive it.
    let mut headers = headers.clone();
    let deadline = oms_runtime::Deadline::after(timeout).header_value();
    headers.insert(oms_runtime::deadline::DEADLINE_HEADER, deadline.as_str());
    let request = async_nats::Request::new()
        .payload(payload)
        .headers(headers)
        .timeout(Some(timeout));
    client
        .send_request(subject.to_string(), request)
        .await
        .map_err(|err| match err.kind() {
            RequestErrorKind::NoResponders => {
                Problem::unavailable(format!("no instance of {service} is running"))
            }
            RequestErrorKind::TimedOut => {
                Problem::timeout(format!("{service} did not answer within {timeout:?}"))
            }
            RequestErrorKind::MaxPayloadExceeded => {
                Problem::too_large(oms_runtime::service::MAX_BODY)
            }
            _ => {
                tracing::warn!(error = %err, %subject, "NATS request failed");
                Problem::unavailable("NATS is not reachable")
            }
        })
}
