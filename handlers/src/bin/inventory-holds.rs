//! `inventory-holds`: releases stock held too long.
//!
//! - Holds made without an order (`reservation.<id>`, an operator's or a
//!   cart's `inventory.reserve`), once older than `OMS_HOLD_TTL`.
//! - Unpaid orders: a PENDING order older than `OMS_PENDING_TTL` (0, the
//!   default: never) becomes EXPIRED, its stock released in the same write.
//!
//! The same mechanism for both, so one worker: a durable consumer on the
//! keys (`inventory-holds` on `reservation.>`, `orders-expiry` on
//! `order.>`, the latter only when a TTL is set) delivers each new value,
//! which is handed back (nak with delay) until its time is up, then
//! released through `inventory.release` with `expire: true` (the ledger
//! says `expire`; an order becomes EXPIRED), naming the revision it saw: a
//! hold or order settled, confirmed or changed meanwhile is left alone
//! (409, 412). The order's status-updated event follows from its new
//! revision (`orders-events`), as for any change. A consumer's redelivery
//! survives crashes and server restarts.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::Message;
use oms_handlers::contract;
use oms_handlers::model::{Order, Reservation, ReservationState};
use oms_handlers::status::Status;
use oms_runtime::consumer::{consume, published_nanos, Ack};
use oms_runtime::principal::ACTOR_HEADER;
use oms_runtime::{call, App, Problem};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RETRY: Duration = Duration::from_secs(1);
/// Holds (or orders) waited on at once: most of them wait out their time
/// asleep.
const HOLDS_AT_ONCE: usize = 4096;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Release<'a> {
    order_id: &'a str,
    expected_revision: u64,
    /// The ledger says `expire`; an order becomes EXPIRED.
    expire: bool,
}

fn main() {
    oms_handlers::run_worker("inventory-holds", |app| async move {
        let holds = expire_after(
            &app,
            "inventory-holds",
            "reservation.>",
            app.config.hold_ttl,
        );
        match app.config.pending_ttl {
            Some(ttl) => {
                let orders = expire_after(&app, "orders-expiry", "order.>", ttl);
                tokio::join!(holds, orders);
            }
            None => holds.await,
        }
    })
}

/// Releases, for ever, what the keys under `keys` hold once `ttl` old.
async fn expire_after(app: &Arc<App>, durable: &str, keys: &str, ttl: Duration) {
    let config = pull::Config {
        durable_name: Some(durable.into()),
        description: Some(format!("release {keys} held longer than {ttl:?}")),
        filter_subject: format!("$KV.{}.{keys}", app.store.bucket),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(10),
        // Everything younger than its time waits here.
        max_ack_pending: 1_000_000,
        ..Default::default()
    };
    let js = app.store.jetstream().clone();
    let stream = app.store.stream_name();
    consume(&js, &stream, config, HOLDS_AT_ONCE, |message| {
        let app = app.clone();
        async move {
            let ack = check(&app, &message, ttl).await;
            (message, ack)
        }
    })
    .await
}

/// The id to release if this value still holds stock: a HELD hold, or a
/// PENDING order (its creation).
fn holding(message: &Message) -> Option<String> {
    if let Ok(hold) = serde_json::from_slice::<Reservation>(&message.payload) {
        return (hold.state == ReservationState::Held).then_some(hold.order_id);
    }
    // A delete marker, or an order that is no longer PENDING: nothing.
    let order = serde_json::from_slice::<Order>(&message.payload).ok()?;
    (order.status == Status::Pending).then_some(order.id)
}

async fn check(app: &Arc<App>, message: &Message, ttl: Duration) -> Ack {
    let Some(id) = holding(message) else {
        return Ack::Done;
    };
    let now = now_nanos();
    let expires = published_nanos(message) + ttl.as_nanos() as i128;
    if now < expires {
        let wait = Duration::from_nanos((expires - now) as u64);
        return Ack::Retry(wait + Duration::from_millis(10));
    }
    let Ok(info) = message.info() else {
        return Ack::Retry(RETRY);
    };
    let release = Release {
        order_id: &id,
        expected_revision: info.stream_sequence,
        expire: true,
    };
    tracing::info!(order_id = %id, "held too long; releasing");
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
            tracing::debug!(order_id = %id, %problem, "not released");
            Ack::Done
        }
        Err(problem) => {
            tracing::warn!(order_id = %id, %problem, "release failed; will retry");
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
