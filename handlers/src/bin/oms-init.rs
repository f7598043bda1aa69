//! `oms-init`: the bootstrap step. Creates the bucket, the event stream,
//! the ledger and the dead-letter stream, or brings their settings up to date (byte
//! limits included), then exits 0. It connects as the one NATS user allowed
//! to manage streams; every other binary waits, retrying, until the bucket
//! it opens exists.

use async_nats::jetstream::{self, stream::DiscardPolicy};
use oms_handlers::{events, ledger};
use oms_runtime::consumer::ensure_dlq_stream;
use oms_runtime::store::limit_stream;
use oms_runtime::{connect, Config, Store};
use std::time::{Duration, Instant};

/// Sets `OMS_LEDGER_MAX_BYTES` on the ledger stream: discard new, because replaying the ledger must
/// give today's counts, so no entry may be dropped to make room; at the
/// limit its derivation waits until there is room again.
async fn limit_ledger(js: &jetstream::Context, config: &Config) -> Result<(), String> {
    if js.get_stream(ledger::STREAM).await.is_err() {
        return Ok(());
    }
    limit_stream(
        js,
        ledger::STREAM,
        config.ledger_max_bytes,
        DiscardPolicy::New,
    )
    .await
}

/// Creates a stream if missing; safe from any number of processes.
async fn ensure(js: &jetstream::Context, config: jetstream::stream::Config) -> Result<(), String> {
    let name = config.name.clone();
    js.get_or_create_stream(config)
        .await
        .map(|_| ())
        .map_err(|e| format!("{name} not ready: {e}"))
}

/// A cluster elects its JetStream leader in the first seconds: keep trying.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

fn main() {
    let (_logs, config) = oms_runtime::init("oms-init");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        let client = connect::connect(&config, "oms-init").await;
        let js = async_nats::jetstream::new(client.clone());
        let started = Instant::now();
        loop {
            let done = async {
                Store::bootstrap(&js, &config).await?;
                let events = events::stream_config(config.replicas, config.events_max_bytes);
                ensure(&js, events).await?;
                limit_stream(
                    &js,
                    events::STREAM,
                    config.events_max_bytes,
                    DiscardPolicy::Old,
                )
                .await?;
                ensure_dlq_stream(&js, config.replicas)
                    .await
                    .map_err(|e| format!("OMS_DLQ not ready: {e}"))?;
                ensure(
                    &js,
                    ledger::stream_config(config.replicas, config.ledger_max_bytes),
                )
                .await?;
                limit_ledger(&js, &config).await
            };
            match done.await {
                Ok(()) => {
                    tracing::info!(bucket = %config.bucket, "bucket and streams are ready");
                    let _ = client.flush().await;
                    return 0;
                }
                Err(err) if started.elapsed() < GIVE_UP_AFTER => {
                    tracing::warn!(error = %err, "bootstrap not done; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "bootstrap failed");
                    return 1;
                }
            }
        }
    });
    std::process::exit(code)
}
