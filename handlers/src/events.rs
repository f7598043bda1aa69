//! Order events: what they say, where they are kept.
//!
//! They are derived from the order keys' history in the bucket's stream
//! (`orders-events`), never written beside the order, so a handler that dies
//! after storing an order cannot lose its event. `Nats-Msg-Id =
//! <orderId>:<revision>` makes a re-derived event a duplicate the stream drops.

use async_nats::jetstream::{self, stream};
use oms_contract::{Cents, Order, PricedItem, Status};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const STREAM: &str = "OMS_EVENTS";
pub const CREATED: &str = "events.orders.created";
pub const STATUS_UPDATED: &str = "events.orders.status-updated";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    pub order_id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<Status>,
    pub customer_id: String,
    pub items: Vec<PricedItem>,
    pub total_amount: Cents,
    pub at: String,
}

impl OrderEvent {
    /// The event a stored order revision stands for, and its subject.
    pub fn of(order: Order) -> (&'static str, OrderEvent) {
        let subject = if order.previous_status.is_none() {
            CREATED
        } else {
            STATUS_UPDATED
        };
        let event = OrderEvent {
            order_id: order.id,
            status: order.status,
            previous_status: order.previous_status,
            customer_id: order.customer_id,
            items: order.items,
            total_amount: order.total_amount,
            at: order.updated_at,
        };
        (subject, event)
    }
}

pub fn message_id(order_id: &str, revision: u64) -> String {
    format!("{order_id}:{revision}")
}

/// Creates `OMS_EVENTS` if missing and sets its byte limit
/// (`OMS_EVENTS_MAX_BYTES`); safe from any number of processes.
///
/// At the limit the oldest events go (discard old): the stream is a
/// bounded history for late subscribers, and deriving never stops because
/// it is full. A durable subscriber that falls further behind than the
/// limit misses the events dropped meanwhile.
pub async fn ensure_stream(
    js: &jetstream::Context,
    replicas: usize,
    max_bytes: i64,
) -> Result<(), async_nats::Error> {
    js.get_or_create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["events.>".into()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: replicas,
        max_bytes,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    })
    .await?;
    oms_runtime::store::limit_stream(js, STREAM, max_bytes, stream::DiscardPolicy::Old).await?;
    Ok(())
}
