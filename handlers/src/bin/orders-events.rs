//! `orders-events`: every revision of an order key becomes one event in
//! `OMS_EVENTS` (`events.orders.created` or `events.orders.status-updated`),
//! exactly once and in order, derived from the bucket's history by
//! `derive.rs` — never written beside the order, so a handler that dies
//! right after storing an order cannot lose its event.

use async_nats::jetstream::kv;
use oms_handlers::derive::{self, Derivation, Derived};
use oms_handlers::events::{self, OrderEvent};
use oms_handlers::model::Order;
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
            patterns: &["order.>"],
            stream: events::STREAM,
            derive: order_event,
        };
        derive::run(&app.store, orders).await
    })
}

/// The event an order revision stands for; deletes stand for none.
fn order_event(entry: &kv::Entry) -> Option<Derived> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let order = match serde_json::from_slice::<Order>(&entry.value) {
        Ok(order) => order,
        Err(err) => {
            tracing::error!(key = %entry.key, error = %err, "not an order; no event");
            return None;
        }
    };
    let (subject, event) = OrderEvent::of(order);
    Some(Derived {
        subject: subject.to_string(),
        msg_id: events::message_id(&event.order_id, entry.revision),
        body: serde_json::to_vec(&event).expect("events serialize"),
    })
}
