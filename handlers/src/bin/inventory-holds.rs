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
//!
//! A release that keeps failing is retried with a doubling pause; after
//! `OMS_MAX_DELIVER` deliveries (the first one, waiting out its time,
//! counts) the value goes to `OMS_DLQ` (`dlq.KV_oms.<consumer>`), as does a
//! value that is neither a hold nor an order. Replaying one (README,
//! Limits) writes the same value again expecting the revision it had, so it
//! comes here once more, and only if the key has not changed since.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::Message;
use oms_handlers::contract::{self, Order, Reservation, ReservationState, SettleRequest, Status};
use oms_runtime::consumer::{consume, published_nanos, Ack};
use oms_runtime::principal::ACTOR_HEADER;
use oms_runtime::{call, App, Problem};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RETRY: Duration = Duration::from_secs(1);
/// Holds (or orders) waited on at once: most of them wait out their time
/// asleep.
const HOLDS_AT_ONCE: usize = 4096;

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
                let ack = check(&app, &message, ttl).await;
                (message, ack)
            }
        },
    )
    .await
}

/// The id to release if this value still holds stock: a HELD hold, or a
/// PENDING order (its creation); an error for a value that is not what
/// its key says.
fn holding(message: &Message) -> Result<Option<String>, String> {
    if message.payload.is_empty() {
        return Ok(None); // a delete marker: nothing held
    }
    if message.subject.contains(".reservation.") {
        let hold = serde_json::from_slice::<Reservation>(&message.payload)
            .map_err(|err| format!("not a hold: {err}"))?;
        return Ok((hold.state == ReservationState::Held).then_some(hold.order_id));
    }
    let order = serde_json::from_slice::<Order>(&message.payload)
        .map_err(|err| format!("not an order: {err}"))?;
    // An order that is no longer PENDING holds nothing to expire.
    Ok((order.status == Status::Pending).then_some(order.id))
}

async fn check(app: &Arc<App>, message: &Message, ttl: Duration) -> Ack {
    let id = match holding(message) {
        Ok(Some(id)) => id,
        Ok(None) => return Ack::Done,
        Err(why) => return Ack::Dead(why),
    };
    let now = now_nanos();
    let expires = published_nanos(message) + ttl.as_nanos() as i128;
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
        order_id: id.clone(),
        expected_revision: Some(info.stream_sequence),
        expire: true,
        actor: None,
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
        Err(problem) => Ack::Retry(pause.min(Duration::from_secs(60)), problem.to_string()),
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128
}
