//! The one shared JetStream KV bucket and the only ways to write it.
//!
//! Every write carries `Nats-Expected-Last-Subject-Sequence`: a single key
//! is a compare-and-set ([`Store::apply`] with one [`Write`]), several keys
//! are one atomic batch that either moves every key or none. There is no
//! blind `put`, so no read-modify-write can lose an update.

use crate::problem::Problem;
use crate::Config;
use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::{self, context::PublishErrorKind, kv};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// History per key: an order has at most four revisions, but a product has
/// one per change of its counts, and each must reach its ledger entry
/// before the bucket drops it. 64, the most a bucket keeps:
/// the ledger deriver may fall that many revisions of one product behind
/// (a restart under load) before an entry is lost — which `oms-verify`
/// would then report. Keys with fewer revisions cost nothing more.
const HISTORY: i64 = 64;
/// Most entries [`Store::follow`] hands out at once.
pub const CHUNK: usize = 500;
/// Open atomic batches per process: with a dozen processes, well under the
/// server's 50 per stream.
const BATCHES_AT_ONCE: usize = 4;

#[derive(Debug)]
pub enum StoreError {
    /// Some key's revision was not the expected one: re-read and retry.
    Conflict,
    /// The stream refused the write because it is at its byte limit (or the
    /// server's storage is exhausted): nothing was written.
    Full(String),
    /// NATS or JetStream did not do what was asked.
    Unavailable(String),
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Problem {
        match err {
            StoreError::Conflict => Problem::conflict(
                "concurrent-update",
                "a concurrent update won; read again and retry",
            ),
            StoreError::Full(_) => {
                Problem::storage_full("the store is full: nothing was written; reads still work")
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                Problem::unavailable("the store is unavailable")
            }
        }
    }
}

/// JetStream's answers for "no room": the stream's `max_bytes` with
/// discard-new (10077 "maximum bytes exceeded"), the server's or the
/// account's storage exhausted (10023, 10002).
const FULL: [u64; 3] = [10077, 10023, 10002];

/// Whether a JetStream error (anywhere in its chain) says the store is full.
pub fn is_full(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(js) = err.downcast_ref::<jetstream::Error>() {
            return FULL.contains(&js.error_code().0);
        }
        next = err.source();
    }
    let text = err.to_string();
    text.contains("maximum bytes exceeded") || text.contains("insufficient resources")
}

/// Sets a stream's byte limit and what happens at it, if they differ: the
/// one place `oms-init` applies `OMS_*_MAX_BYTES` (the bucket, `OMS_EVENTS`,
/// `OMS_DLQ`, and `OMS_LEDGER` where that stream is made).
/// `DiscardPolicy::New` refuses writes at the limit (nothing old is lost);
/// `Old` drops the oldest messages to make room.
pub async fn limit_stream(
    js: &jetstream::Context,
    name: &str,
    max_bytes: i64,
    discard: jetstream::stream::DiscardPolicy,
) -> Result<(), String> {
    let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    let current = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .config
        .clone();
    if current.max_bytes == max_bytes && current.discard == discard {
        return Ok(());
    }
    let wanted = jetstream::stream::Config {
        max_bytes,
        discard,
        ..current
    };
    js.update_stream(wanted)
        .await
        .map_err(|e| format!("cannot limit {name} to {max_bytes} bytes: {e}"))?;
    tracing::info!(stream = name, max_bytes, ?discard, "stream limit set");
    Ok(())
}

/// Where [`Store::changes`] begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current value of every key, then every change.
    LastPerKey,
    /// Every stored revision.
    All,
    /// Every revision after this one.
    After(u64),
}

/// A value with the revision it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

/// A key as read by [`Store::read`]: absent or deleted is `value: None`.
#[derive(Debug, Clone)]
pub struct Slot<T> {
    pub value: Option<T>,
    pub revision: u64,
}

/// One key's change inside [`Store::apply`].
#[derive(Debug, Clone)]
pub struct Write {
    pub key: String,
    pub value: Bytes,
    /// The key's current revision; 0 means it must not exist.
    pub expected: u64,
    /// Per-message TTL: the key expires (leaving a delete marker) after it.
    pub ttl: Option<Duration>,
}

impl Write {
    pub fn json(key: impl Into<String>, value: &impl Serialize, expected: u64) -> Self {
        Write {
            key: key.into(),
            value: serde_json::to_vec(value).expect("values serialize").into(),
            expected,
            ttl: None,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    client: async_nats::Client,
    /// Atomic batches this process may have open at once (see `apply`).
    batch_slots: Arc<Semaphore>,
    js: jetstream::Context,
    kv: kv::Store,
    /// The bucket's stream, for reads that must reach its leader.
    stream: jetstream::stream::Stream,
    /// Whether the bucket has replicas (which may lag its leader).
    replicated: bool,
    subject_prefix: String,
    pub bucket: String,
}

impl Store {
    /// Creates the bucket or brings its settings up to date: the bootstrap
    /// step (`oms-init`), the one user allowed to manage streams. Safe to run
    /// again and from several processes at once.
    pub async fn bootstrap(js: &jetstream::Context, config: &Config) -> Result<(), String> {
        let bucket = &config.bucket;
        if js.get_key_value(bucket).await.is_err() {
            let created = js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    history: HISTORY,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.replicas,
                    limit_markers: Some(Duration::from_secs(1)),
                    max_bytes: config.bucket_max_bytes,
                    ..Default::default()
                })
                .await;
            // Another process may have won the race to create it.
            if let Err(err) = created {
                js.get_key_value(bucket)
                    .await
                    .map_err(|_| format!("cannot create bucket {bucket}: {err}"))?;
            }
        }
        let current = stream_config(js, &format!("KV_{bucket}")).await?;
        let mut wanted = current.clone();
        wanted.allow_atomic_publish = true;
        wanted.allow_message_ttl = true;
        wanted.subject_delete_marker_ttl = wanted
            .subject_delete_marker_ttl
            .or(Some(Duration::from_secs(1)));
        wanted.max_messages_per_subject = wanted.max_messages_per_subject.max(HISTORY);
        if wanted != current {
            js.update_stream(wanted).await.map_err(|e| e.to_string())?;
        }
        // At the limit a write is refused (507), never an old revision
        // dropped: KV buckets discard new, and this keeps it so.
        limit_stream(
            js,
            &format!("KV_{bucket}"),
            config.bucket_max_bytes,
            jetstream::stream::DiscardPolicy::New,
        )
        .await
    }

    /// Opens the bucket `oms-init` made; an error (retried by the caller)
    /// while it does not exist yet or lacks the settings the writes need.
    pub async fn open(client: async_nats::Client, config: &Config) -> Result<Store, String> {
        let js = jetstream::new(client.clone());
        let bucket = config.bucket.clone();
        let missing = |e| format!("bucket {bucket} is not there yet (oms-init creates it): {e}");
        let kv = js.get_key_value(&bucket).await.map_err(missing)?;
        let stream = js
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| e.to_string())?;
        let settings = stream_config(&js, &format!("KV_{bucket}")).await?;
        if !settings.allow_atomic_publish || !settings.allow_message_ttl {
            return Err(format!(
                "bucket {bucket} lacks atomic batches or message TTLs: run oms-init"
            ));
        }
        Ok(Store {
            client,
            batch_slots: Arc::new(Semaphore::new(BATCHES_AT_ONCE)),
            subject_prefix: format!("$KV.{bucket}."),
            stream,
            replicated: settings.num_replicas > 1,
            js,
            kv,
            bucket,
        })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn kv(&self) -> &kv::Store {
        &self.kv
    }

    /// Calls `apply` with every current value of the keys matching `pattern`,
    /// then `caught_up` once, then with every change, for ever; each call
    /// gets the entries that arrived together (up to [`CHUNK`]), so a
    /// follower can write them as one batch. The consumer is re-created
    /// from the last revision seen whenever it ends or fails (e.g. across a
    /// server restart), with backoff, so nothing is skipped and nothing
    /// loops hot.
    pub async fn follow(
        &self,
        pattern: &str,
        mut apply: impl FnMut(Vec<kv::Entry>),
        caught_up: impl FnOnce(),
    ) {
        let mut caught_up = Some(caught_up);
        let mut signal_when = |current: bool| {
            if let Some(caught_up) = caught_up.take_if(|_| current) {
                caught_up();
            }
        };
        let mut start = Start::LastPerKey;
        let mut backoff = crate::backoff::Backoff::default();
        loop {
            match self.changes(&[pattern], start).await {
                Ok((mut chunks, pending)) => {
                    signal_when(pending == 0);
                    while let Some(chunk) = chunks.next().await {
                        match chunk {
                            Ok(entries) => {
                                let Some(last) = entries.last() else { continue };
                                start = Start::After(last.revision);
                                let current = last.delta == 0;
                                backoff.reset();
                                apply(entries);
                                signal_when(current);
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, pattern, "follow failed");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, pattern, "follow not started"),
            }
            backoff.wait().await;
        }
    }

    /// The entries of keys matching any of `patterns` from `start` on, in
    /// stream order, in chunks of
    /// what has arrived together, and how many the consumer had to deliver
    /// when it was created. An ordered pull consumer: a few hundred
    /// messages at a time, no acknowledgements, and nothing left on the
    /// server when it goes. (A push watch would let the server send a whole
    /// backlog into the client's buffer.)
    pub async fn changes(
        &self,
        patterns: &[&str],
        start: Start,
    ) -> Result<
        (
            impl Stream<Item = Result<Vec<kv::Entry>, String>> + Unpin + '_,
            u64,
        ),
        String,
    > {
        use jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
        let deliver_policy = match start {
            Start::LastPerKey => DeliverPolicy::LastPerSubject,
            Start::All => DeliverPolicy::All,
            Start::After(seen) => DeliverPolicy::ByStartSequence {
                start_sequence: seen + 1,
            },
        };
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                filter_subjects: patterns
                    .iter()
                    .map(|p| format!("{}{p}", self.subject_prefix))
                    .collect(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let pending = consumer.cached_info().num_pending;
        let messages = consumer.messages().await.map_err(|e| e.to_string())?;
        let chunks = messages.ready_chunks(CHUNK).map(|chunk| {
            chunk
                .into_iter()
                .map(|m| m.map_err(|e| e.to_string()).and_then(|m| self.entry_of(m)))
                .collect()
        });
        Ok((Box::pin(chunks), pending))
    }

    /// A bucket stream message as the KV entry it stands for.
    fn entry_of(&self, message: jetstream::Message) -> Result<kv::Entry, String> {
        let info = message.info().map_err(|e| e.to_string())?;
        let (revision, created, delta) = (info.stream_sequence, info.published, info.pending);
        let operation = operation_of(message.headers.as_ref());
        let key = message
            .subject
            .strip_prefix(self.subject_prefix.as_str())
            .ok_or_else(|| format!("{} is not a key of {}", message.subject, self.bucket))?
            .to_owned();
        Ok(kv::Entry {
            bucket: self.bucket.clone(),
            key,
            value: message.message.payload,
            revision,
            delta,
            created,
            operation,
            seen_current: delta == 0,
        })
    }

    /// The bucket's stream name, for consumers that follow it.
    pub fn stream_name(&self) -> String {
        format!("KV_{}", self.bucket)
    }

    /// The key's value if it is live, with the revision a write to it must
    /// expect (that of a delete marker too; 0 if the key never existed).
    /// One read yields both, so they cannot disagree: reading the value and
    /// then the revision separately would let a concurrent write slip in
    /// between and be overwritten.
    pub async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Slot<T>, Problem> {
        let entry = if self.replicated {
            self.read_from_leader(key).await?
        } else {
            self.kv
                .entry(key)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
                .map(|e| (e.operation, e.value, e.revision))
        };
        let Some((operation, value, revision)) = entry else {
            return Ok(Slot {
                value: None,
                revision: 0,
            });
        };
        let value = match operation {
            kv::Operation::Put => Some(
                serde_json::from_slice(&value)
                    .map_err(|e| Problem::internal(format!("stored {key} is not valid: {e}")))?,
            ),
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        Ok(Slot { value, revision })
    }

    /// A replicated bucket answers direct reads from any replica, and one may
    /// not have the latest write yet. That is not only a 404 for an order
    /// just created (seen in the cluster test): a stale value decides wrong
    /// too — a COMPLETED right after a CONFIRMED read PENDING on a lagging
    /// replica and was refused as illegal (seen in the cluster storm). A
    /// compare-and-set catches a stale value only when it writes, not when
    /// it refuses. So on a replicated bucket every read asks the stream's
    /// leader, which has applied every write it acknowledged.
    async fn read_from_leader(
        &self,
        key: &str,
    ) -> Result<Option<(kv::Operation, bytes::Bytes, u64)>, StoreError> {
        use jetstream::stream::LastRawMessageErrorKind;
        let subject = format!("{}{key}", self.subject_prefix);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => Ok(Some((
                operation_of(Some(&m.headers)),
                m.payload,
                m.sequence,
            ))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }

    /// The live value with its revision, or `None`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, Problem> {
        let slot = self.read(key).await?;
        Ok(slot.value.map(|value| Versioned {
            value,
            revision: slot.revision,
        }))
    }

    /// Applies every write or none. Returns the revision of the last one.
    ///
    /// One write is a plain compare-and-set publish. Several are a JetStream
    /// atomic batch: the server checks every expected revision at commit, so
    /// either all keys move or `Conflict` comes back and nothing changed.
    pub async fn apply(&self, writes: &[Write]) -> Result<u64, StoreError> {
        let batched = writes.len() > 1;
        // A stream holds at most 50 open batches; past that the server drops
        // the batch's messages and its commit is never answered. Every
        // process keeps well below, whatever its concurrency.
        let _slot = if batched {
            Some(self.batch_slots.acquire().await.expect("semaphore open"))
        } else {
            None
        };
        let last = writes.len().checked_sub(1).ok_or(StoreError::Conflict)?;
        let mut backoff = Duration::from_millis(5);
        loop {
            // A new id per attempt: an abandoned batch's id is not reused.
            let batch_id = batched.then(|| nuid::next().to_string());
            for (i, write) in writes.iter().enumerate() {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                    write.expected.to_string().as_str(),
                );
                if let Some(ttl) = write.ttl {
                    headers.insert(
                        header::NATS_MESSAGE_TTL,
                        format!("{}s", ttl.as_secs().max(1)).as_str(),
                    );
                }
                if let Some(id) = &batch_id {
                    headers.insert(header::NATS_BATCH_ID, id.as_str());
                    headers.insert(header::NATS_BATCH_SEQUENCE, (i + 1).to_string().as_str());
                    if i == last {
                        headers.insert(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
                    }
                }
                let subject = format!("{}{}", self.subject_prefix, write.key);
                if i < last {
                    // Staged by the server; checked at commit.
                    self.client
                        .publish_with_headers(subject, headers, write.value.clone())
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    continue;
                }
                let ack = self
                    .js
                    .publish_with_headers(subject, headers, write.value.clone())
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
                    .await;
                match ack {
                    Ok(ack) => return Ok(ack.sequence),
                    Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {
                        tracing::debug!(error = %err, writes = writes.len(), "compare-and-set lost");
                        return Err(StoreError::Conflict);
                    }
                    Err(err) if is_conflict(&err.to_string()) => return Err(StoreError::Conflict),
                    Err(err) if is_full(&err) => {
                        tracing::warn!(error = %err, writes = writes.len(), bucket = %self.bucket, "store full: write refused, nothing written");
                        return Err(StoreError::Full(err.to_string()));
                    }
                    // Too many open batches on the stream (10210): back off.
                    Err(err)
                        if err.to_string().contains("10210")
                            && backoff < Duration::from_secs(2) =>
                    {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        break;
                    }
                    Err(err) => return Err(StoreError::Unavailable(err.to_string())),
                }
            }
        }
    }

    /// Read, change, compare-and-set, and again on conflict: the single-key
    /// update every handler uses. `change` sees the current value (or None)
    /// and returns the new one, or a problem that ends the attempt.
    pub async fn modify<T, F>(&self, key: &str, mut change: F) -> Result<Versioned<T>, Problem>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<T, Problem>,
    {
        for attempt in 0u32.. {
            let current = self.read::<T>(key).await?;
            let value = change(current.value)?;
            match self
                .apply(&[Write::json(key, &value, current.revision)])
                .await
            {
                Ok(revision) => return Ok(Versioned { value, revision }),
                Err(StoreError::Conflict) if attempt < 1000 => {
                    if attempt > 2 {
                        tokio::time::sleep(Duration::from_micros(50 * u64::from(attempt.min(40))))
                            .await;
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        unreachable!("the loop returns")
    }
}

/// The server's "wrong last sequence" (10071), or the replicated variant 10164.
fn is_conflict(text: &str) -> bool {
    text.contains("10071") || text.contains("10164") || text.contains("wrong last sequence")
}

/// What a bucket message does to its key, from its headers.
fn operation_of(headers: Option<&HeaderMap>) -> kv::Operation {
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    match (header("KV-Operation"), header("Nats-Marker-Reason")) {
        (Some("DEL"), _) => kv::Operation::Delete,
        (Some("PURGE"), _) => kv::Operation::Purge,
        (_, Some("Remove")) => kv::Operation::Delete,
        (_, Some(_)) => kv::Operation::Purge, // MaxAge, Purge
        _ => kv::Operation::Put,
    }
}

/// A stream's settings as the server has them now.
async fn stream_config(
    js: &jetstream::Context,
    name: &str,
) -> Result<jetstream::stream::Config, String> {
    let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    let info = stream.info().await.map_err(|e| e.to_string())?;
    Ok(info.config.clone())
}
