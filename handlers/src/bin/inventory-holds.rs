//! `inventory-holds`: releases holds made without an order
//! (`reservation.<id>`, an operator's or a cart's `inventory.reserve`) once
//! they are older than `OMS_HOLD_TTL`.
//!
//! A durable consumer on the holds' keys: each new hold is delivered, handed
//! back (nak with delay) until its time is up, then released through
//! `inventory.release`, naming the revision it saw — a hold settled or
//! changed meanwhile is left alone (409). Orders need none of this: an
//! order holds its own stock and its status says where the stock is.
//!
//! A release that keeps failing is retried with a doubling pause; after
//! `OMS_MAX_DELIVER` deliveries (the first one, waiting out the hold, counts)
//! the hold goes to `OMS_DLQ` (`dlq.KV_oms.inventory-holds`), as does a
//! `reservation.*` value that is not a hold. Replaying one (README, Limits)
//! writes the same value again expecting the revision it had, so it comes
//! here once more, and only if the key has not changed since.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::Message;
use oms_handlers::contract::{self, Reservation, ReservationState, SettleRequest};
use oms_runtime::consumer::{consume, published_nanos, Ack};
use oms_runtime::{call, App, Problem};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RETRY: Duration = Duration::from_secs(1);
/// Holds waited on at once: most of them wait out their time asleep.
const HOLDS_AT_ONCE: usize = 4096;

fn main() {
    oms_handlers::run_worker("inventory-holds", |app| async move {
        let config = pull::Config {
            durable_name: Some("inventory-holds".into()),
            description: Some("release holds older than OMS_HOLD_TTL".into()),
            filter_subject: format!("$KV.{}.reservation.>", app.store.bucket),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(10),
            // Every hold younger than the hold time waits here.
            max_ack_pending: 1_000_000,
            ..Default::default()
        };
        let js = app.store.jetstream().clone();
        let stream = app.store.stream_name();
        let max_deliver = app.config.max_deliver;
        consume(
            &js,
            &stream,
            config,
            HOLDS_AT_ONCE,
            max_deliver,
            |message| {
                let app = app.clone();
                async move {
                    let ack = check_hold(&app, &message).await;
                    (message, ack)
                }
            },
        )
        .await
    })
}

async fn check_hold(app: &Arc<App>, message: &Message) -> Ack {
    if message.payload.is_empty() {
        return Ack::Done; // a delete marker: nothing held
    }
    let seen = match serde_json::from_slice::<Reservation>(&message.payload) {
        Ok(seen) => seen,
        Err(err) => return Ack::Dead(format!("not a hold: {err}")),
    };
    if seen.state != ReservationState::Held {
        return Ack::Done;
    }
    let now = now_nanos();
    let expires = published_nanos(message) + app.config.hold_ttl.as_nanos() as i128;
    if now < expires {
        let wait = Duration::from_nanos((expires - now) as u64);
        return Ack::Wait(wait + Duration::from_millis(10));
    }
    let Ok(info) = message.info() else {
        return Ack::Wait(RETRY);
    };
    // 1 s, 2 s, 4 s, ... after each failed delivery, at most a minute.
    let pause = RETRY * 2u32.pow(info.delivered.clamp(1, 7) as u32 - 1);
    let release = SettleRequest {
        order_id: seen.order_id.clone(),
        expected_revision: Some(info.stream_sequence),
    };
    tracing::info!(order_id = %seen.order_id, "hold expired; releasing");
    let released: Result<Reservation, Problem> = call(
        &app.client,
        Default::default(),
        &contract::INVENTORY_RELEASE,
        &release,
    )
    .await;
    match released {
        Ok(_) => Ack::Done,
        // Settled or changed since (409), or gone (404): nothing to do.
        Err(problem) if problem.status == 409 || problem.status == 404 => {
            tracing::debug!(order_id = %seen.order_id, %problem, "hold not released");
            Ack::Done
        }
        Err(problem) => Ack::Retry(pause.min(Duration::from_secs(60)), problem.to_string()),
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128
}
