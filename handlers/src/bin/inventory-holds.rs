//! `inventory-holds`: releases holds made without an order
//! (`reservation.<id>`, an operator's or a cart's `inventory.reserve`) once
//! they are older than `OMS_HOLD_TTL`.
//!
//! A durable consumer on the holds' keys: each new hold is delivered, handed
//! back (nak with delay) until its time is up, then released through
//! `inventory.release`, naming the revision it saw — a hold settled or
//! changed meanwhile is left alone (409, 412). Orders need none of this: an
//! order holds its own stock and its status says where the stock is.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::Message;
use oms_handlers::contract;
use oms_handlers::model::{Reservation, ReservationState};
use oms_runtime::consumer::{consume, published_nanos, Ack};
use oms_runtime::principal::ACTOR_HEADER;
use oms_runtime::{call, App, Problem};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RETRY: Duration = Duration::from_secs(1);
/// Holds waited on at once: most of them wait out their time asleep.
const HOLDS_AT_ONCE: usize = 4096;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Release<'a> {
    order_id: &'a str,
    expected_revision: u64,
    /// The ledger says `expire`.
    expire: bool,
}

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
        consume(&js, &stream, config, HOLDS_AT_ONCE, |message| {
            let app = app.clone();
            async move {
                let ack = check_hold(&app, &message).await;
                (message, ack)
            }
        })
        .await
    })
}

async fn check_hold(app: &Arc<App>, message: &Message) -> Ack {
    let Ok(seen) = serde_json::from_slice::<Reservation>(&message.payload) else {
        return Ack::Done; // a delete marker: nothing held
    };
    if seen.state != ReservationState::Held {
        return Ack::Done;
    }
    let now = now_nanos();
    let expires = published_nanos(message) + app.config.hold_ttl.as_nanos() as i128;
    if now < expires {
        let wait = Duration::from_nanos((expires - now) as u64);
        return Ack::Retry(wait + Duration::from_millis(10));
    }
    let Ok(info) = message.info() else {
        return Ack::Retry(RETRY);
    };
    let release = Release {
        order_id: &seen.order_id,
        expected_revision: info.stream_sequence,
        expire: true,
    };
    tracing::info!(order_id = %seen.order_id, "hold expired; releasing");
    // The ledger names this worker as the actor.
    let mut headers = async_nats::HeaderMap::new();
    if let Some(user) = &app.config.nats_user {
        headers.insert(ACTOR_HEADER, user.as_str());
    }
    let released: Result<Reservation, Problem> =
        call(&app.client, headers, &contract::INVENTORY_RELEASE, &release).await;
    match released {
        Ok(_) => Ack::Done,
        // Changed since (412), settled (409), or gone (404): nothing to do.
        Err(problem) if matches!(problem.status, 404 | 409 | 412) => {
            tracing::debug!(order_id = %seen.order_id, %problem, "hold not released");
            Ack::Done
        }
        Err(problem) => {
            tracing::warn!(order_id = %seen.order_id, %problem, "release failed; will retry");
            Ack::Retry(RETRY)
        }
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128
}
