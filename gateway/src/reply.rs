//! NATS reply -> HTTP response.
//!
//! An error reply carries `Nats-Service-Error-Code` and a problem body: the
//! code is the HTTP status and the body goes through untouched as
//! `application/problem+json`. A success is the route's status with the
//! reply as body, except that a page `{items, nextCursor?}` becomes the bare
//! `items` array (as the original REST API answered) plus a `Link` to the
//! next page, and a create gets a `Location`.

use crate::endpoint::Endpoint;
use crate::respond::{self, Body};
use crate::url;
use async_nats::Message;
use hyper::header::{HeaderValue, ETAG, LINK, LOCATION};
use hyper::{Response, StatusCode, Uri};
use oms_runtime::service::{ERROR_CODE_HEADER, ERROR_HEADER};
use oms_runtime::Problem;

pub fn to_http(
    endpoint: &Endpoint,
    uri: &Uri,
    message: Message,
) -> Result<Response<Body>, Problem> {
    if let Some(response) = error(&message) {
        return Ok(response);
    }
    if message.status.is_some_and(|s| !s.is_success()) {
        return Err(respond::bad_gateway(format!(
            "{} answered with status {:?}",
            endpoint.subject, message.status
        )));
    }
    let mut response = if endpoint.paged {
        page(endpoint, uri, &message.payload)?
    } else {
        respond::json(endpoint.status, message.payload.clone())
    };
    if endpoint.tagged && !endpoint.paged {
        if let Some(tag) = entity_tag(&message.payload) {
            response.headers_mut().insert(ETAG, tag);
        }
    }
    if let Some(location) = &endpoint.location {
        // Only the one field is read; the rest of the body stays raw.
        let reply: std::collections::HashMap<&str, &serde_json::value::RawValue> =
            serde_json::from_slice(&message.payload).unwrap_or_default();
        let id = reply
            .get(location.field.as_str())
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        if let Some(id) = id {
            let target = format!("{}{}", location.prefix, url::encode(&id));
            if let Ok(value) = HeaderValue::from_str(&target) {
                response.headers_mut().insert(LOCATION, value);
            }
        }
    }
    Ok(response)
}

/// `ETag: "<revision>"` of a reply that names the revision it shows
///: strong, since a revision names one exact stored value.
fn entity_tag(payload: &[u8]) -> Option<HeaderValue> {
    #[derive(serde::Deserialize)]
    struct Revision {
        revision: Option<u64>,
    }
    if !payload.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    let revision = serde_json::from_slice::<Revision>(payload).ok()?.revision?;
    HeaderValue::from_str(&format!("\"{revision}\"")).ok()
}

/// An error reply as HTTP; `None` for a success.
pub fn error(message: &Message) -> Option<Response<Body>> {
    let headers = message.headers.as_ref()?;
    let code = headers.get(ERROR_CODE_HEADER)?;
    let text = headers.get(ERROR_HEADER);
    let body = message.payload.clone();
    let status = code
        .as_str()
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    if body.is_empty() {
        // A handler outside this project may send the headers alone: the
        // caller still gets a problem body.
        let detail = text.map(|t| t.to_string()).unwrap_or_default();
        let problem = Problem::new(
            status.as_u16(),
            "upstream",
            status.canonical_reason().unwrap_or("Error"),
            detail,
        );
        return Some(respond::problem(&problem));
    }
    Some(respond::with_type(status, respond::PROBLEM_JSON, body))
}

/// A page as the handlers send it. `items` stays raw: it is passed on as
/// the body byte for byte, never parsed into values and printed again.
#[derive(serde::Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    items: &'a serde_json::value::RawValue,
    #[serde(rename = "nextCursor")]
    next_cursor: Option<String>,
}

fn page(endpoint: &Endpoint, uri: &Uri, payload: &[u8]) -> Result<Response<Body>, Problem> {
    let page: Page = serde_json::from_slice(payload).map_err(|_| {
        respond::bad_gateway(format!("{} sent a page without items", endpoint.subject))
    })?;
    if !page.items.get().starts_with('[') {
        return Err(respond::bad_gateway(format!(
            "{} sent a page without items",
            endpoint.subject
        )));
    }
    let body = bytes::Bytes::copy_from_slice(page.items.get().as_bytes());
    let mut response = respond::json(endpoint.status, body);
    if let Some(cursor) = page.next_cursor.as_deref() {
        if let Ok(value) = HeaderValue::from_str(&next_link(uri, cursor)) {
            response.headers_mut().insert(LINK, value);
        }
    }
    Ok(response)
}

/// `</inventory?limit=5&cursor=p-004>; rel="next"`: the same request with
/// the new cursor, every other query parameter kept.
pub fn next_link(uri: &Uri, cursor: &str) -> String {
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .and_then(url::parse_query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name != "cursor")
        .collect();
    pairs.push(("cursor".into(), cursor.into()));
    format!(
        "<{}?{}>; rel=\"next\"",
        uri.path(),
        url::format_query(&pairs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_is_the_entity_tag() {
        let tag = entity_tag(br#"{"id":"o","revision":42,"items":[]}"#).unwrap();
        assert_eq!(tag, "\"42\"");
        assert!(entity_tag(br#"{"id":"o"}"#).is_none());
        assert!(entity_tag(b"[1]").is_none());
    }

    #[test]
    fn next_link_keeps_the_query_and_replaces_the_cursor() {
        let uri: Uri = "/orders?status=PENDING&cursor=old&limit=2".parse().unwrap();
        assert_eq!(
            next_link(&uri, "o/2 x"),
            "</orders?status=PENDING&limit=2&cursor=o%2F2%20x>; rel=\"next\""
        );
        let bare: Uri = "/inventory".parse().unwrap();
        assert_eq!(
            next_link(&bare, "p-1"),
            "</inventory?cursor=p-1>; rel=\"next\""
        );
    }
}
