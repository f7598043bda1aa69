//! Connecting to NATS: retry with backoff until the server is there, then let
//! async-nats reconnect on its own for the rest of the process's life.

use crate::Config;
use std::time::Duration;

/// Connects, waiting as long as it takes; logs each failed attempt and why.
pub async fn connect(config: &Config, name: &str) -> async_nats::Client {
    let mut backoff = crate::backoff::Backoff::default();
    loop {
        match try_connect(config, name).await {
            Ok(client) => return client,
            Err(err) => {
                tracing::warn!(url = %config.nats_url, error = %err, retry_in = ?backoff.delay(), "NATS not reachable");
                backoff.wait().await;
            }
        }
    }
}

async fn try_connect(config: &Config, name: &str) -> Result<async_nats::Client, async_nats::Error> {
    let mut options = match &config.nats_creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path).await?,
        None => async_nats::ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    let client = options
        .name(name)
        // Replies come under a prefix of this binary's own, which its NATS
        // user alone may subscribe to: no other user can read them.
        .custom_inbox_prefix(format!("_INBOX_{name}"))
        .connection_timeout(Duration::from_secs(2))
        // Never give up on a server that went away; back off instead.
        .max_reconnects(None)
        // async-nats asks this before the first attempt too: no wait then
        // (it is most of a cold start), then 100 ms doubling up to 2 s.
        .reconnect_delay_callback(|attempt| match attempt {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis((50u64 << n.min(6)).min(2_000)),
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                other => tracing::info!(event = %other, "NATS event"),
            }
        })
        // `NATS_URL` may list several servers, comma-separated (a cluster).
        .connect(
            config
                .nats_url
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .collect::<Vec<_>>(),
        )
        .await?;
    Ok(client)
}
