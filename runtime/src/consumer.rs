//! Durable JetStream consumers that outlive server restarts and crashes.
//!
//! A durable pull consumer remembers on the server what was acknowledged, so
//! a worker killed at any moment resumes where it stopped, and an instance
//! started beside it shares the work. The pull stream is re-created with
//! backoff whenever it ends or fails, never in a tight loop.
//!
//! A message is not retried for ever: one that failed on its
//! `OMS_MAX_DELIVER`th delivery, or that cannot be handled at all (not what
//! the consumer reads), goes to the stream `OMS_DLQ` under
//! `dlq.<stream>.<consumer>`, with why in `Oms-Dlq-Reason` and where it came
//! from in the other `Oms-Dlq-*` headers, and is then acknowledged. Only
//! after the dead letter is stored: if that fails, the message comes again.

use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::{self, consumer::pull, stream, AckKind, Message};
use futures::StreamExt;
use std::future::Future;
use std::time::Duration;

/// What to do with a message once it was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Done: never deliver it again.
    Done,
    /// Not yet time for it (a timer, not a failure): deliver it again
    /// after this long.
    Wait(Duration),
    /// Failed: deliver it again after this long, unless this was its last
    /// delivery; then it is dead-lettered with this reason.
    Retry(Duration, String),
    /// It can never be handled (malformed): dead-letter it now.
    Dead(String),
}

/// The dead-letter stream, its subjects and its byte limit (refusing new
/// dead letters at it: a message that cannot be dead-lettered stays where
/// it was and comes again, nothing is dropped).
pub const DLQ_STREAM: &str = "OMS_DLQ";
pub const DLQ_MAX_BYTES: i64 = 256 << 20;
/// Why the message was dead-lettered.
pub const DLQ_REASON: &str = "Oms-Dlq-Reason";
/// The stream, subject and sequence it was stored under, and how many
/// times it was delivered.
pub const DLQ_STREAM_HEADER: &str = "Oms-Dlq-Stream";
pub const DLQ_SUBJECT: &str = "Oms-Dlq-Subject";
pub const DLQ_SEQUENCE: &str = "Oms-Dlq-Sequence";
pub const DLQ_DELIVERIES: &str = "Oms-Dlq-Deliveries";

/// `dlq.<stream>.<consumer>`.
pub fn dlq_subject(stream: &str, consumer: &str) -> String {
    format!("dlq.{stream}.{consumer}")
}

/// Creates `OMS_DLQ` if missing (`oms-init`).
pub async fn ensure_dlq_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<(), async_nats::Error> {
    js.get_or_create_stream(stream::Config {
        name: DLQ_STREAM.into(),
        subjects: vec!["dlq.>".into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        max_bytes: DLQ_MAX_BYTES,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    crate::store::limit_stream(js, DLQ_STREAM, DLQ_MAX_BYTES, stream::DiscardPolicy::New).await?;
    Ok(())
}

/// A message that could not be handled, as stored in `OMS_DLQ`.
pub struct DeadLetter<'a> {
    /// The stream and consumer that gave up on it.
    pub stream: &'a str,
    pub consumer: &'a str,
    /// Where it was stored.
    pub subject: &'a str,
    pub sequence: u64,
    pub deliveries: i64,
    pub reason: &'a str,
    pub payload: bytes::Bytes,
}

/// Stores a dead letter, acknowledged by the stream. `Nats-Msg-Id` is
/// `<stream>:<consumer>:<sequence>`: the same message dead-lettered twice
/// (a crash between storing it and acknowledging the original) is stored
/// once within the stream's duplicate window.
pub async fn dead_letter(js: &jetstream::Context, letter: DeadLetter<'_>) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    let id = format!("{}:{}:{}", letter.stream, letter.consumer, letter.sequence);
    headers.insert(header::NATS_MESSAGE_ID, id.as_str());
    // Header values are one line.
    headers.insert(
        DLQ_REASON,
        letter.reason.replace(['\r', '\n'], " ").as_str(),
    );
    headers.insert(DLQ_STREAM_HEADER, letter.stream);
    headers.insert(DLQ_SUBJECT, letter.subject);
    headers.insert(DLQ_SEQUENCE, letter.sequence.to_string().as_str());
    headers.insert(DLQ_DELIVERIES, letter.deliveries.to_string().as_str());
    let subject = dlq_subject(letter.stream, letter.consumer);
    js.publish_with_headers(subject, headers, letter.payload)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    tracing::error!(
        stream = letter.stream,
        consumer = letter.consumer,
        subject = letter.subject,
        sequence = letter.sequence,
        deliveries = letter.deliveries,
        reason = letter.reason,
        "dead-lettered to OMS_DLQ"
    );
    Ok(())
}

/// Consumes `config.durable_name` on `stream` for ever, `concurrency`
/// messages at a time, acknowledging each as `handle` says; a message that
/// failed its `max_deliver`th delivery, or is `Ack::Dead`, goes to `OMS_DLQ`.
pub async fn consume<F, Fut>(
    js: &jetstream::Context,
    stream: &str,
    config: pull::Config,
    concurrency: usize,
    max_deliver: i64,
    handle: F,
) where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = (Message, Ack)>,
{
    let name = config.durable_name.clone().unwrap_or_default();
    let mut backoff = crate::backoff::Backoff::default();
    loop {
        match messages(js, stream, &config).await {
            Ok(messages) => {
                backoff.reset();
                messages
                    .take_while(|m| {
                        let ok = m.is_ok();
                        if let Err(err) = m {
                            tracing::warn!(consumer = %name, error = %err, "consumer stream failed");
                        }
                        async move { ok }
                    })
                    .filter_map(|m| async move { m.ok() })
                    .for_each_concurrent(concurrency, |message| async {
                        let (message, ack) = handle(message).await;
                        let kind = match ack {
                            Ack::Done => AckKind::Ack,
                            Ack::Wait(after) => AckKind::Nak(Some(after)),
                            Ack::Retry(after, why) => {
                                let deliveries = message.info().map_or(0, |i| i.delivered);
                                if deliveries < max_deliver {
                                    tracing::warn!(consumer = %name, deliveries, reason = %why, "will retry");
                                    AckKind::Nak(Some(after))
                                } else {
                                    let why = format!("failed {deliveries} deliveries: {why}");
                                    bury(js, stream, &name, &message, &why).await
                                }
                            }
                            Ack::Dead(why) => bury(js, stream, &name, &message, &why).await,
                        };
                        if let Err(err) = message.ack_with(kind).await {
                            tracing::warn!(consumer = %name, error = %err, "ack failed; the message will come again");
                        }
                    })
                    .await;
            }
            Err(err) => tracing::warn!(consumer = %name, error = %err, "consumer not ready"),
        }
        backoff.wait().await;
    }
}

/// Dead-letters `message`: acknowledged once stored in `OMS_DLQ`, else
/// handed back to come again.
async fn bury(
    js: &jetstream::Context,
    stream: &str,
    consumer: &str,
    message: &Message,
    reason: &str,
) -> AckKind {
    let Ok(info) = message.info() else {
        return AckKind::Nak(Some(Duration::from_secs(1)));
    };
    let letter = DeadLetter {
        stream,
        consumer,
        subject: message.subject.as_str(),
        sequence: info.stream_sequence,
        deliveries: info.delivered,
        reason,
        payload: message.payload.clone(),
    };
    match dead_letter(js, letter).await {
        Ok(()) => AckKind::Ack,
        Err(err) => {
            tracing::warn!(consumer, error = %err, "dead letter not stored; the message comes again");
            AckKind::Nak(Some(Duration::from_secs(5)))
        }
    }
}

async fn messages(
    js: &jetstream::Context,
    stream: &str,
    config: &pull::Config,
) -> Result<pull::Stream, async_nats::Error> {
    let name = config.durable_name.clone().unwrap_or_default();
    let consumer = js
        .get_stream(stream)
        .await?
        .get_or_create_consumer::<pull::Config>(&name, config.clone())
        .await?;
    Ok(consumer.messages().await?)
}

/// Publish time of a JetStream message, as nanoseconds since the Unix epoch.
pub fn published_nanos(message: &Message) -> i128 {
    message
        .info()
        .map(|info| info.published.unix_timestamp_nanos())
        .unwrap_or(0)
}
