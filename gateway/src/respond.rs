//! Building responses. Every body is in memory (`Full<Bytes>`): payloads are
//! capped at 64 KiB in and the handlers' replies are small, so a known
//! `Content-Length` is cheaper than streaming.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use oms_runtime::Problem;

pub type Body = Full<Bytes>;

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A body with its content type.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_type(status, JSON, body)
}

/// An RFC 9457 problem made by the gateway itself.
pub fn problem(problem: &Problem) -> Response<Body> {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    with_type(status, PROBLEM_JSON, body)
}

/// The gateway's own problem types, beside those of `oms_runtime::Problem`.
pub fn method_not_allowed(method: &str, path: &str) -> Problem {
    Problem::new(
        405,
        "method-not-allowed",
        "Method not allowed",
        format!("{path} does not accept {method}; see the Allow header"),
    )
}

pub fn no_route(method: &str, path: &str) -> Problem {
    Problem::not_found(format!("no route for {method} {path}"))
}

/// `given` is the request's `Content-Type`, `None` when it had none.
pub fn unsupported_media_type(given: Option<&str>) -> Problem {
    let detail = match given {
        Some(given) => format!("the body must be application/json, not {given}"),
        None => "a body needs Content-Type: application/json".to_string(),
    };
    Problem::new(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        detail,
    )
}

/// 429, with the seconds to wait for `Retry-After`.
pub fn too_many_requests(retry_after: u64) -> Response<Body> {
    let limited = Problem::new(
        429,
        "too-many-requests",
        "Too many requests",
        format!("the rate limit for this caller is reached; retry in {retry_after} s"),
    );
    let mut response = problem(&limited);
    response
        .headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

pub fn request_timeout() -> Problem {
    Problem::new(
        408,
        "request-timeout",
        "Request timeout",
        "the request body did not arrive in time",
    )
}

pub fn bad_gateway(detail: impl Into<String>) -> Problem {
    Problem::new(502, "bad-gateway", "Bad gateway", detail)
}
