//! `inventory-events`: stock follows orders.
//!
//! Two durable consumers, so a crash anywhere only delays the effect:
//! - order events: CANCELLED releases the reservation (stock back to
//!   `quantity`), COMPLETED commits it (`reserved` drops: sold);
//! - holds: every new reservation is a message in the bucket's stream; it is
//!   redelivered when its hold (`OMS_HOLD_TTL`) runs out, and if no order was
//!   stored for it by then, it is released and the order id sealed.
//!
//! Both settle through `settle.rs`, one compare-and-set batch each, so a
//! redelivered message changes nothing the second time, and an expiring hold
//! racing its order's write cannot both win.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::Message;
use oms_handlers::events::{self, OrderEvent};
use oms_handlers::model::{order_key, Order, Reservation, ReservationState};
use oms_handlers::settle::{settle, Settle};
use oms_handlers::status::Status;
use oms_runtime::consumer::{consume, published_nanos, Ack};
use oms_runtime::{App, Problem};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RETRY: Duration = Duration::from_secs(1);
/// How old a new reservation is when it is first looked at for its order.
const FIRST_LOOK: Duration = Duration::from_millis(200);
/// Holds looked at at once: most of them wait out `FIRST_LOOK` asleep.
const HOLDS_AT_ONCE: usize = 4096;

fn main() {
    oms_handlers::run_worker("inventory-events", |app| async move {
        let js = app.store.jetstream().clone();
        while let Err(err) = events::ensure_stream(&js, app.config.replicas).await {
            tracing::warn!(error = %err, "OMS_EVENTS not ready");
            tokio::time::sleep(RETRY).await;
        }
        tokio::join!(follow_orders(app.clone()), expire_holds(app));
    })
}

async fn follow_orders(app: Arc<App>) {
    let config = pull::Config {
        durable_name: Some("inventory-events".into()),
        description: Some("release on CANCELLED, commit on COMPLETED".into()),
        filter_subject: events::STATUS_UPDATED.into(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(10),
        max_ack_pending: 10_000,
        ..Default::default()
    };
    let js = app.store.jetstream().clone();
    consume(&js, events::STREAM, config, 32, |message| {
        let app = app.clone();
        async move {
            let ack = match serde_json::from_slice::<OrderEvent>(&message.payload) {
                Ok(event) => apply_event(&app, &event).await,
                Err(err) => {
                    tracing::warn!(error = %err, "not an order event; skipped");
                    Ack::Done
                }
            };
            (message, ack)
        }
    })
    .await
}

async fn apply_event(app: &App, event: &OrderEvent) -> Ack {
    let how = match event.status {
        Status::Cancelled => Settle::Release,
        Status::Completed => Settle::Commit,
        Status::Pending | Status::Confirmed => return Ack::Done,
    };
    let from = [ReservationState::Held];
    outcome(
        settle(&app.store, &event.order_id, how, &from).await,
        &event.order_id,
    )
}

async fn expire_holds(app: Arc<App>) {
    let config = pull::Config {
        durable_name: Some("inventory-holds".into()),
        description: Some("release reservations whose order never came".into()),
        filter_subject: format!("$KV.{}.reservation.>", app.store.bucket),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(10),
        // Every reservation younger than the hold time waits here.
        max_ack_pending: 1_000_000,
        ..Default::default()
    };
    let js = app.store.jetstream().clone();
    consume(
        &js,
        &app.store.stream_name(),
        config,
        HOLDS_AT_ONCE,
        |message| {
            let app = app.clone();
            async move {
                let ack = check_hold(&app, &message).await;
                (message, ack)
            }
        },
    )
    .await
}

async fn check_hold(app: &App, message: &Message) -> Ack {
    let Ok(seen) = serde_json::from_slice::<Reservation>(&message.payload) else {
        return Ack::Done;
    };
    if seen.state != ReservationState::Held {
        return Ack::Done;
    }
    // Most orders are stored within milliseconds of their reservation: give
    // this one a moment before looking, so it is acknowledged at the first
    // delivery instead of being handed back later.
    let age = Duration::from_nanos((now_nanos() - published_nanos(message)).max(0) as u64);
    if age < FIRST_LOOK {
        tokio::time::sleep(FIRST_LOOK - age).await;
    }
    // Its order stored: the hold is the order's now. (`Settle::Expire`
    // checks again, atomically; this only spares a wait.)
    match app.store.read::<Order>(&order_key(&seen.order_id)).await {
        Ok(order) if order.value.is_some() => return Ack::Done,
        Ok(_) => {}
        Err(_) => return Ack::Retry(RETRY),
    }
    let now = now_nanos();
    let expires = published_nanos(message) + app.config.hold_ttl.as_nanos() as i128;
    if now < expires {
        return Ack::Retry(
            Duration::from_nanos((expires - now) as u64) + Duration::from_millis(10),
        );
    }
    tracing::info!(order_id = %seen.order_id, "hold expired without an order; releasing");
    outcome(
        settle(
            &app.store,
            &seen.order_id,
            Settle::Expire,
            &[ReservationState::Held],
        )
        .await,
        &seen.order_id,
    )
}

/// Settled, or already settled otherwise (409), or gone (404): done.
/// Anything else is transient: try again.
fn outcome(result: Result<Reservation, Problem>, order_id: &str) -> Ack {
    match result {
        Ok(_) => Ack::Done,
        Err(problem) if problem.status == 409 || problem.status == 404 => {
            tracing::debug!(order_id, %problem, "nothing to settle");
            Ack::Done
        }
        Err(problem) => {
            tracing::warn!(order_id, %problem, "settle failed; will retry");
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
