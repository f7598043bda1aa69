//! Reading a write's body: JSON only, at most 64 KiB, within a deadline.
//!
//! A body that is too large is still read (and thrown away) up to
//! [`DRAIN_LIMIT`] before the 413 goes out. Answering while the client is
//! still sending would close the connection on unread data, which makes the
//! kernel send a reset that can destroy the 413 before the client reads it.
//! A declared `Content-Length` above the drain limit is refused at once (the
//! body is never polled, so a client that sent `Expect: 100-continue` never
//! sends it).

use crate::respond;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::HeaderMap;
use oms_runtime::service::MAX_BODY;
use oms_runtime::Problem;
use std::time::Duration;

/// How much of an oversized body is read and discarded before the 413.
pub const DRAIN_LIMIT: usize = 1024 * 1024;
/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// `application/json` or any `application/*+json`, parameters allowed.
/// No `Content-Type` at all is taken as JSON: the handler's parse decides.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
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
        Err(respond::unsupported_media_type(if text.is_empty() {
            "(empty)"
        } else {
            text
        }))
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
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            assert!(check_content_type(&with(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "application/jsonx",
        ] {
            let err = check_content_type(&with(Some(bad))).unwrap_err();
            assert_eq!(err.status, 415, "{bad}");
        }
    }
}
