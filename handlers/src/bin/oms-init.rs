//! `oms-init`: the bootstrap step (DESIGN §10.5). Creates the bucket, the
//! event stream and the ledger, or brings their settings up to date, then
//! exits 0. It
//! connects as the one NATS user allowed to manage streams; every other
//! binary waits, retrying, until the bucket it opens exists.

use oms_handlers::{events, ledger};
use oms_runtime::{connect, logging, Config, Store};
use std::time::{Duration, Instant};

/// A cluster elects its JetStream leader in the first seconds: keep trying.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

fn main() {
    let _logs = logging::init("oms-init");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        let config = Config::from_env();
        let client = connect::connect(&config, "oms-init").await;
        let js = async_nats::jetstream::new(client.clone());
        let started = Instant::now();
        loop {
            let done = async {
                Store::bootstrap(&js, &config).await?;
                events::ensure_stream(&js, config.replicas)
                    .await
                    .map_err(|e| format!("{} not ready: {e}", events::STREAM))?;
                // No size limit yet (-1): OMS_LEDGER_MAX_BYTES goes here.
                ledger::ensure_stream(&js, config.replicas, -1)
                    .await
                    .map_err(|e| format!("{} not ready: {e}", ledger::STREAM))
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
