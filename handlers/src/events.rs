//! Order events: what they say, where they are kept.
//!
//! They are derived from the order keys' history in the bucket's stream
//! (`orders-events`), never written beside the order, so a handler that dies
//! after storing an order cannot lose its event. `Nats-Msg-Id =
//! <orderId>:<revision>` makes a re-derived event a duplicate the stream drops.

use async_nats::jetstream::stream;
use oms_contract::{Cents, Order, PricedItem, Product, Reason, Status};
use serde::{Deserialize, Serialize};

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

/// A product's available count crossed a level:
/// `events.inventory.<kind>`, `Nats-Msg-Id = <productId>:<revision>:<kind>`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StockLevel {
    /// Fell below the product's `lowStockThreshold` (but not to 0).
    LowStock,
    /// Reached 0.
    OutOfStock,
    /// Rose from 0.
    BackInStock,
}

impl StockLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            StockLevel::LowStock => "low-stock",
            StockLevel::OutOfStock => "out-of-stock",
            StockLevel::BackInStock => "back-in-stock",
        }
    }

    /// The crossing a change of the available count from `before` to
    /// `after` makes, if any: at most one per revision. A fall straight to
    /// 0 is `out-of-stock` only (below any threshold, and more urgent).
    pub fn crossing(before: u64, after: u64, threshold: Option<u64>) -> Option<StockLevel> {
        match (before, after) {
            (b, 0) if b > 0 => Some(StockLevel::OutOfStock),
            (0, a) if a > 0 => Some(StockLevel::BackInStock),
            (b, a) => threshold
                .filter(|t| a < *t && b >= *t)
                .map(|_| StockLevel::LowStock),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StockEvent {
    pub product_id: String,
    pub level: StockLevel,
    /// Available after the change, and before it.
    pub quantity: u64,
    pub previous_quantity: u64,
    pub reserved: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<u64>,
    /// The product revision (and its ledger entry) that crossed.
    pub revision: u64,
    /// Why the count moved (the change's reason).
    pub reason: Reason,
    pub at: String,
}

impl StockEvent {
    /// The event a stored product revision stands for, if it crosses a
    /// level: the counts before are the ones after less the deltas the
    /// write recorded, so no earlier revision is needed. A revision that
    /// recorded no change crosses nothing, and neither does a product's
    /// creation (its first change).
    pub fn of(product: Product, revision: u64) -> Option<StockEvent> {
        let change = product.last_change.as_ref()?;
        // A product's first change creates it: in stock, never "back".
        if change.seq <= 1 {
            return None;
        }
        let before = (product.quantity as i64 - change.part.quantity_delta).max(0) as u64;
        let level = StockLevel::crossing(before, product.quantity, product.low_stock_threshold)?;
        Some(StockEvent {
            level,
            quantity: product.quantity,
            previous_quantity: before,
            reserved: product.reserved,
            low_stock_threshold: product.low_stock_threshold,
            revision,
            reason: change.part.reason,
            at: product.updated_at,
            product_id: product.product_id,
        })
    }

    pub fn subject(&self) -> String {
        format!("events.inventory.{}", self.level.as_str())
    }

    pub fn message_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.product_id,
            self.revision,
            self.level.as_str()
        )
    }
}

/// `OMS_EVENTS` as `oms-init` creates it (or brings it up to date), its
/// byte limit `OMS_EVENTS_MAX_BYTES`.
///
/// At the limit the oldest events go (discard old): the stream is a
/// bounded history for late subscribers, and deriving never stops because
/// it is full. A durable subscriber that falls further behind than the
/// limit misses the events dropped meanwhile.
pub fn stream_config(replicas: usize, max_bytes: i64) -> stream::Config {
    stream::Config {
        discard: stream::DiscardPolicy::Old,
        ..crate::derive::stream_config(STREAM, "events.>", replicas, max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::StockLevel::{self, *};

    #[test]
    fn one_crossing_at_most() {
        let cross = StockLevel::crossing;
        assert_eq!(cross(5, 0, None), Some(OutOfStock));
        assert_eq!(cross(5, 0, Some(3)), Some(OutOfStock), "not low too");
        assert_eq!(cross(0, 0, Some(3)), None);
        assert_eq!(cross(0, 2, Some(3)), Some(BackInStock));
        assert_eq!(cross(5, 2, Some(3)), Some(LowStock));
        assert_eq!(cross(3, 2, Some(3)), Some(LowStock), "3 is not below 3");
        assert_eq!(cross(2, 1, Some(3)), None, "already low");
        assert_eq!(cross(2, 5, Some(3)), None, "rising");
        assert_eq!(cross(5, 2, None), None);
        assert_eq!(cross(5, 4, Some(0)), None, "0: never low");
    }
}
