//! The one error type a handler returns: an RFC 9457 problem.
//!
//! Its `status` becomes `Nats-Service-Error-Code`, its title/detail become
//! `Nats-Service-Error`, and the whole problem is the reply body, so callers
//! on NATS and on REST see the same precise answer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One bad field: `pointer` is the JSON Pointer of the offending value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members, e.g. `items` listing what is short. Boxed: most
    /// problems have none, and a small `Problem` keeps `Result`s cheap.
    #[serde(flatten)]
    pub extensions: Box<Map<String, Value>>,
}

impl Problem {
    /// `slug` names the problem type (`/problems/<slug>`).
    pub fn new(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.into(),
            status,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Box::default(),
        }
    }

    pub fn bad_request(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Problem {
            errors,
            ..Problem::new(400, "invalid-request", "Invalid request", detail)
        }
    }

    /// A 400 about exactly one field.
    pub fn invalid_field(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem::bad_request(
            message.clone(),
            vec![FieldError {
                pointer: pointer.into(),
                message,
            }],
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(403, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(404, "not-found", "Not found", detail)
    }

    pub fn conflict(slug: &str, detail: impl Into<String>) -> Self {
        Problem::new(409, slug, "Conflict", detail)
    }

    /// A stale `expectedRevision` / `If-Match`: the caller's view of the
    /// resource is out of date; nothing changed.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Problem::new(412, "precondition-failed", "Precondition failed", detail)
    }

    pub fn unprocessable(slug: &str, detail: impl Into<String>) -> Self {
        Problem::new(422, slug, "Unprocessable request", detail)
    }

    pub fn too_large(limit: usize) -> Self {
        Problem::new(
            413,
            "too-large",
            "Payload too large",
            format!("the body exceeds {limit} bytes"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(503, "unavailable", "Service unavailable", detail)
    }

    pub fn timeout(detail: impl Into<String>) -> Self {
        Problem::new(504, "timeout", "Timed out", detail)
    }

    /// 507: the store refused a write because it is full.
    pub fn storage_full(detail: impl Into<String>) -> Self {
        Problem::new(507, "storage-full", "Insufficient storage", detail)
    }

    /// An unexpected failure. The detail is logged, never sent: no internals
    /// leak to callers.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Problem::new(
            500,
            "internal",
            "Internal error",
            "the request could not be completed",
        )
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(key.into(), value);
        self
    }

    /// The `Nats-Service-Error` header text.
    pub fn header_text(&self) -> String {
        let text = format!("{}: {}", self.title, self.detail);
        // Header values are one line.
        text.replace(['\r', '\n'], " ")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.header_text())
    }
}

impl std::error::Error for Problem {}

/// A NATS reply as what it says: its JSON body, or the problem its
/// `Nats-Service-Error-Code` header and body name.
pub fn from_reply<T: serde::de::DeserializeOwned>(
    reply: &async_nats::Message,
) -> Result<T, Problem> {
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(crate::service::ERROR_CODE_HEADER))
        .map(|v| v.as_str().parse::<u16>().unwrap_or(500));
    match code {
        None => serde_json::from_slice(&reply.payload).map_err(Problem::internal),
        Some(status) => Err(
            serde_json::from_slice::<Problem>(&reply.payload).unwrap_or_else(|_| {
                Problem::new(status, "upstream", "Upstream error", "a call failed")
            }),
        ),
    }
}
