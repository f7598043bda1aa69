//! Durable JetStream consumers that outlive server restarts and crashes.
//!
//! A durable pull consumer remembers on the server what was acknowledged, so
//! a worker killed at any moment resumes where it stopped, and an instance
//! started beside it shares the work. The pull stream is re-created with
//! backoff whenever it ends or fails, never in a tight loop.

use async_nats::jetstream::{self, consumer::pull, AckKind, Message};
use futures::StreamExt;
use std::future::Future;
use std::time::Duration;

/// What to do with a message once it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Done: never deliver it again.
    Done,
    /// Deliver it again after this long (a transient failure, or a timer).
    Retry(Duration),
}

/// Consumes `config.durable_name` on `stream` for ever, `concurrency`
/// messages at a time, acknowledging each as `handle` says.
pub async fn consume<F, Fut>(
    js: &jetstream::Context,
    stream: &str,
    config: pull::Config,
    concurrency: usize,
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
                            Ack::Retry(after) => AckKind::Nak(Some(after)),
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
