//! Reading a write's body: JSON only, at most 64 KiB, within a deadline.
//!
//! A body must say it is JSON: a browser page can post `text/plain` or a
//! form to another site without asking first (no CORS preflight), never
//! `application/json`, so a 415 for anything else closes that door.
//!
//! A body that is too large is still read (and thrown away) up to
//! [`DRAIN_LIMIT`] before the 413 goes out. Answering while the client is
//! still sending would close the connection on unread data, which makes the
//! kernel send a reset that can destroy the 413 before the client reads it.
//! A declared `Content-Length` above the drain limit is refused at once (the
//! body is never polled, so a client that sent `Expect: 100-continue` never
//! sends it).

use crate::respond::{self, Body};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::HeaderMap;
use hyper::{Request, Response};
use oms_runtime::service::MAX_BODY;
use oms_runtime::Problem;
use std::time::Duration;

/// How much of an oversized body is read and discarded before the 413.
pub const DRAIN_LIMIT: usize = 1024 * 1024;
/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// `application/json` or any `application/*+json`, parameters allowed.
/// A request without a body needs no type (`{}` is sent); one with a body
/// and no `Content-Type` is a 415.
pub fn check_content_type(headers: &HeaderMap, has_body: bool) -> Result<(), Problem> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return if has_body {
            Err(respond::unsupported_media_type(None))
        } else {
            Ok(())
        };
    };
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(respond::unsupported_media_type(Some(if text.is_empty() {
            "(empty)"
        } else {
            text
        })))
    }
}

pub async fn read(headers: &HeaderMap, body: Incoming) -> Result<Bytes, Problem> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(Problem::too_large(MAX_BODY));
    }
    match tokio::time::timeout(BODY_TIMEOUT, collect(body)).await {
        Ok(result) => result,
        Err(_) => Err(respond::request_timeout()),
    }
}

/// Answers a refused request (401, 403, 429) once what it sent is read, up
/// to [`DRAIN_LIMIT`] and [`BODY_TIMEOUT`], for the reason given above. A
/// client waiting for `100 Continue`, or declaring more than the limit, has
/// sent nothing yet and is answered at once.
pub async fn refuse(request: Request<Incoming>, response: Response<Body>) -> Response<Body> {
    let waits = request.headers().contains_key(hyper::header::EXPECT);
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = request.into_body();
    if !body.is_end_stream() && !waits && declared.is_none_or(|n| n <= DRAIN_LIMIT as u64) {
        let _ = tokio::time::timeout(BODY_TIMEOUT, collect(body)).await;
    }
    response
}

async fn collect(mut body: Incoming) -> Result<Bytes, Problem> {
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            Problem::bad_request(format!("the body could not be read: {err}"), Vec::new())
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_BODY {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY {
        return Err(Problem::too_large(MAX_BODY));
    }
    Ok(kept.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with(content_type: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(t) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(t));
        }
        headers
    }

    #[test]
    fn json_types_pass_others_are_415() {
        for ok in [
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            assert!(check_content_type(&with(ok), true).is_ok(), "{ok:?}");
        }
        assert!(check_content_type(&with(None), false).is_ok(), "no body");
        assert_eq!(
            check_content_type(&with(None), true).unwrap_err().status,
            415
        );
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "application/jsonx",
        ] {
            let err = check_content_type(&with(Some(bad)), false).unwrap_err();
            assert_eq!(err.status, 415, "{bad}");
        }
    }
}
