//! `orders-events`: `OMS_EVENTS`, derived from the bucket's history by
//! `derive.rs` — exactly once and in order, never written beside the
//! change, so a handler that dies right after its write cannot lose its
//! event:
//!
//! - every revision of an order key becomes `events.orders.created` or
//!   `events.orders.status-updated`;
//! - a product revision whose available count crosses a level becomes
//!   `events.inventory.low-stock | out-of-stock | back-in-stock`
//!   (`events.rs`: before = after less the deltas the write recorded).
//!
//! Both in one derivation, in the bucket's order: `OMS_EVENTS` is one chain
//! of `Nats-Expected-Last-Sequence`, so a second deriver writing into it
//! would break this one's chain at every message (and the other way round).

use async_nats::jetstream::kv;
use oms_handlers::contract::{Order, Product};
use oms_handlers::derive::{self, Derivation, Derived};
use oms_handlers::events::{self, OrderEvent, StockEvent};
use std::time::Duration;

fn main() {
    oms_handlers::run_worker("orders-events", |app| async move {
        let js = app.store.jetstream().clone();
        // oms-init creates it.
        while let Err(err) = js.get_stream(events::STREAM).await {
            tracing::warn!(error = %err, "OMS_EVENTS not there yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let orders = Derivation {
            patterns: &[oms_handlers::model::ORDERS, oms_handlers::model::PRODUCTS],
            stream: events::STREAM,
            derive: event,
        };
        derive::run(&app.store, orders).await
    })
}

/// The event a revision stands for; deletes stand for none. A value that
/// is not an order has no event: it is dead-lettered
/// (`dlq.KV_oms.OMS_EVENTS`), never dropped without a trace.
fn event(entry: &kv::Entry) -> Result<Option<Derived>, String> {
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    if entry.key.starts_with("product.") {
        return Ok(stock_event(entry));
    }
    let order = serde_json::from_slice::<Order>(&entry.value)
        .map_err(|err| format!("not an order: {err}"))?;
    let (subject, event) = OrderEvent::of(order);
    Ok(Some(Derived {
        subject: subject.to_string(),
        msg_id: events::message_id(&event.order_id, entry.revision),
        body: serde_json::to_vec(&event).expect("events serialize"),
    }))
}

/// The stock-level event a product revision stands for, if it crosses one.
fn stock_event(entry: &kv::Entry) -> Option<Derived> {
    let product = match serde_json::from_slice::<Product>(&entry.value) {
        Ok(product) => product,
        Err(err) => {
            tracing::error!(key = %entry.key, error = %err, "not a product; no event");
            return None;
        }
    };
    let event = StockEvent::of(product, entry.revision)?;
    Some(Derived {
        subject: event.subject(),
        msg_id: event.message_id(),
        body: serde_json::to_vec(&event).expect("events serialize"),
    })
}
