//! JetStream direct gets by subject, sequence and time (`$JS.API.DIRECT.GET`,
//! ADR-31), including the batch forms of nats-server >= 2.11 that async-nats
//! 0.51 has no API for: `{"seq", "next_by_subj", "batch"}` (up to `batch`
//! messages of one subject from a sequence on, answered as one message each
//! and an end-of-batch status 204) and `{"multi_last", "up_to_time" |
//! "up_to_seq"}` (the last message of a subject as of a time or sequence).
//! The ledger's history pages and a product as it was (`?at=`) are read
//! this way: a few small requests, no consumer.
//!
//! A direct get may be answered by any replica of a replicated stream, which
//! may lag its leader by the last writes: fine for history and time travel,
//! never used to decide a write.

use async_nats::{Client, HeaderMap, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// How long a direct get may take before it is an error.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A stored message as a direct get returns it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: u64,
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

fn stored(message: async_nats::Message) -> Result<Stored, String> {
    let headers = message.headers.unwrap_or_default();
    let sequence = headers
        .get("Nats-Sequence")
        .and_then(|v| v.as_str().parse().ok())
        .ok_or("a direct get reply without Nats-Sequence")?;
    let subject = headers
        .get("Nats-Subject")
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    Ok(Stored {
        sequence,
        subject,
        headers,
        payload: message.payload,
    })
}

/// One message (`{"seq"}`, `{"seq", "next_by_subj"}`, `{"last_by_subj"}`):
/// `None` when there is none.
pub async fn one(
    client: &Client,
    stream: &str,
    request: &serde_json::Value,
) -> Result<Option<Stored>, String> {
    let subject = format!("$JS.API.DIRECT.GET.{stream}");
    let reply = tokio::time::timeout(TIMEOUT, client.request(subject, request.to_string().into()))
        .await
        .map_err(|_| format!("direct get on {stream} timed out"))?
        .map_err(|e| e.to_string())?;
    match reply.status {
        Some(StatusCode::NOT_FOUND) => Ok(None),
        Some(status) if status != StatusCode::OK => Err(format!(
            "direct get on {stream}: {status} {}",
            reply.description.as_deref().unwrap_or_default()
        )),
        _ => stored(reply).map(Some),
    }
}

/// Every message a batch request (`"batch"` or `"multi_last"`) answers,
/// until its end-of-batch; empty when there is none.
pub async fn batch(
    client: &Client,
    stream: &str,
    request: &serde_json::Value,
) -> Result<Vec<Stored>, String> {
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{stream}"),
            inbox,
            request.to_string().into(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, replies.next())
            .await
            .map_err(|_| format!("direct batch get on {stream} timed out"))?
            .ok_or("the reply subscription ended")?;
        match message.status {
            // End of batch; or nothing at all.
            Some(status) if status.as_u16() == 204 || status == StatusCode::NOT_FOUND => {
                return Ok(out)
            }
            Some(status) if status != StatusCode::OK => {
                return Err(format!(
                    "direct batch get on {stream}: {status} {}",
                    message.description.as_deref().unwrap_or_default()
                ))
            }
            _ => out.push(stored(message)?),
        }
    }
}
