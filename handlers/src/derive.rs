//! Change data capture into a stream, exactly once, with no acknowledgement
//! per message: how events are derived from the bucket.
//!
//! A deriver follows the bucket's stream (an ordered consumer: no acks, no
//! durable state) and publishes what each revision stands for into its
//! target stream. Where it stands is kept in the target stream itself: every
//! derived message carries `Oms-Revision`, the bucket revision it came from,
//! so the last stored message says where to resume.
//!
//! Every message also carries `Nats-Expected-Last-Sequence`: the sequence
//! the target stream must have just before it. So the derived messages form
//! a chain the server checks one by one: if one is refused or lost, every
//! later one is refused too (no gaps), and a message cannot be stored twice
//! (no duplicates) — whatever the duplicate window, and however many
//! derivers run: a second one's chain breaks at its first message and it
//! resumes behind the first. Only the last message of each chunk asks for
//! an acknowledgement; if its sequence is the expected one, the whole chunk
//! is stored. A crash anywhere leaves a stored prefix; the next start
//! continues after it.
//!
//! A revision that cannot be derived (a value that is not what the keys
//! hold, e.g. a malformed order) must neither stop the chain for ever nor
//! vanish: it goes to `OMS_DLQ` under `dlq.<bucket stream>.<target stream>`
//! with the reason, and the chain goes on without it. It is stored before
//! the chunk it belongs to, so a crash can store it twice (the DLQ drops a
//! repeat within its duplicate window) but never lose it. Writing a correct
//! value under the key is the replay: that new revision is derived.

use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use oms_runtime::consumer::{dead_letter, DeadLetter};
use oms_runtime::{fault, Start, Store};

/// The header naming the bucket revision a derived message came from.
pub const REVISION_HEADER: &str = "Oms-Revision";

/// One message to store for a bucket revision.
pub struct Derived {
    pub subject: String,
    /// `Nats-Msg-Id`, kept for readers that deduplicate by it.
    pub msg_id: String,
    pub body: Vec<u8>,
}

/// What a deriver follows and what it makes of it.
pub struct Derivation {
    /// Keys of the bucket to follow, e.g. `["order.>"]`: their revisions
    /// come in the bucket's order, whatever the key.
    pub patterns: &'static [&'static str],
    /// The stream derived messages go to.
    pub stream: &'static str,
    /// The message a revision stands for; `None` for revisions that stand
    /// for none (deletes); an error (the reason) for one that cannot be
    /// derived, which is dead-lettered.
    pub derive: fn(&kv::Entry) -> Result<Option<Derived>, String>,
}

/// Derives for ever, resuming after the last stored message whenever the
/// chain breaks, the consumer fails or the server restarts.
pub async fn run(store: &Store, derivation: Derivation) {
    let js = store.jetstream();
    let mut backoff = oms_runtime::backoff::Backoff::default();
    loop {
        match derive(store, js, &derivation).await {
            Ok(()) => backoff.reset(),
            Err(err) => {
                tracing::warn!(error = %err, stream = derivation.stream, "deriving stopped; resuming from the stream's tail")
            }
        }
        backoff.wait().await;
    }
}

/// One run: from the target's tail until something breaks.
async fn derive(
    store: &Store,
    js: &jetstream::Context,
    derivation: &Derivation,
) -> Result<(), String> {
    let (mut last_sequence, revision) = tail(js, derivation.stream).await?;
    let start = match revision {
        Some(revision) => Start::After(revision),
        None => Start::All,
    };
    tracing::info!(
        stream = derivation.stream,
        last_sequence,
        ?start,
        "deriving"
    );
    let (mut chunks, _) = store.changes(derivation.patterns, start).await?;
    while let Some(chunk) = chunks.next().await {
        let mut messages = Vec::new();
        for entry in chunk? {
            match (derivation.derive)(&entry) {
                Ok(Some(message)) => messages.push((message, entry.revision)),
                Ok(None) => {}
                Err(reason) => bury(store, derivation, &entry, &reason).await?,
            }
        }
        fault::point("derive.received").await;
        let Some(count) = u64::try_from(messages.len()).ok().filter(|n| *n > 0) else {
            continue;
        };
        let expected = last_sequence + count;
        let last = messages.len() - 1;
        for (i, (message, revision)) in messages.into_iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MESSAGE_ID, message.msg_id.as_str());
            headers.insert(
                header::NATS_EXPECTED_LAST_SEQUENCE,
                (last_sequence + i as u64).to_string().as_str(),
            );
            headers.insert(REVISION_HEADER, revision.to_string().as_str());
            if i < last {
                // Checked by the server in order; the last one's ack vouches for it.
                store
                    .client()
                    .publish_with_headers(message.subject, headers, message.body.into())
                    .await
                    .map_err(|e| e.to_string())?;
                if i == 0 && fault::is_armed("derive.mid-chunk") {
                    let _ = store.client().flush().await;
                    fault::point("derive.mid-chunk").await;
                }
                continue;
            }
            let ack = js
                .publish_with_headers(message.subject, headers, message.body.into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| format!("chain broken: {e}"))?;
            if ack.sequence != expected {
                return Err(format!(
                    "chunk ended at sequence {}, expected {expected}",
                    ack.sequence
                ));
            }
        }
        last_sequence = expected;
        fault::point("derive.published").await;
    }
    Ok(())
}

/// Stores a revision that cannot be derived in `OMS_DLQ`.
async fn bury(
    store: &Store,
    derivation: &Derivation,
    entry: &kv::Entry,
    reason: &str,
) -> Result<(), String> {
    let stream = store.stream_name();
    let subject = format!("$KV.{}.{}", store.bucket, entry.key);
    let letter = DeadLetter {
        stream: &stream,
        consumer: derivation.stream,
        subject: &subject,
        sequence: entry.revision,
        deliveries: 1,
        reason,
        payload: entry.value.clone(),
    };
    dead_letter(store.jetstream(), letter)
        .await
        .map_err(|e| format!("dead letter for {} not stored: {e}", entry.key))
}

/// The target stream's last sequence, and the bucket revision of the last
/// derived message in it (`None`: nothing derived yet, start at the first
/// revision).
async fn tail(js: &jetstream::Context, name: &str) -> Result<(u64, Option<u64>), String> {
    let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    let state = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .clone();
    let mut sequence = state.last_sequence;
    // Walk back over messages derived by nothing (published by hand).
    while sequence >= state.first_sequence.max(1) {
        match stream.get_raw_message(sequence).await {
            Ok(message) => {
                let revision = message
                    .headers
                    .get(REVISION_HEADER)
                    .and_then(|v| v.as_str().parse().ok());
                if revision.is_some() {
                    return Ok((state.last_sequence, revision));
                }
            }
            Err(err) => tracing::debug!(sequence, error = %err, "not readable"),
        }
        sequence -= 1;
    }
    Ok((state.last_sequence, None))
}

/// The settings every derived stream shares: file storage, and a
/// duplicate window that drops a message derived twice by racing derivers.
pub fn stream_config(
    name: &str,
    subjects: &str,
    replicas: usize,
    max_bytes: i64,
) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        storage: jetstream::stream::StorageType::File,
        duplicate_window: std::time::Duration::from_secs(120),
        num_replicas: replicas,
        max_bytes,
        ..Default::default()
    }
}
