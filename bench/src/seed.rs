//! Stored orders in bulk: Order values published straight into the bucket's
//! stream, the publish acks pipelined, so a million orders take seconds
//! rather than the hours `orders.create` would.

use async_nats::jetstream;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Acks awaited at most this far behind the publishes.
const IN_FLIGHT: usize = 4096;

/// The id of the n-th seeded order (1-based): zero-padded, so ids of one
/// millisecond sort in seeding order, as `createdAt|id` does in the index.
pub fn order_id(n: u64) -> String {
    format!("g{n:08}")
}

/// An order as `orders.create` stores it: PENDING, 1 to 3 priced items.
pub fn order_json(n: u64, created_at: &str) -> String {
    let lines = 1 + (n % 3);
    let mut items = Vec::new();
    for line in 0..lines {
        let product = (n * 7 + line * 31) % crate::PRODUCTS as u64;
        items.push(format!(
            r#"{{"productId":"{}{product:03}","quantity":{},"price":{}}}"#,
            crate::PRODUCT_PREFIX,
            1 + line,
            crate::PRICE
        ));
    }
    let units: u64 = (1..=lines).sum();
    format!(
        r#"{{"id":"{}","customerId":"c-{}","items":[{}],"status":"PENDING","totalAmount":{:.2},"createdAt":"{created_at}","updatedAt":"{created_at}"}}"#,
        order_id(n),
        n % 1000,
        items.join(","),
        units as f64 * crate::PRICE
    )
}

/// Publishes orders `from+1 ..= to` into the bucket; returns how long it took.
pub async fn orders(js: &jetstream::Context, bucket: &str, from: u64, to: u64) -> Duration {
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    let mut last_ms = 0;
    let mut created_at = String::new();
    for n in from + 1..=to {
        let now = now_millis();
        if now != last_ms {
            last_ms = now;
            created_at = format_millis(now);
        }
        let subject = format!("$KV.{bucket}.order.{}", order_id(n));
        let ack = js
            .publish(subject, Bytes::from(order_json(n, &created_at)))
            .await
            .expect("publish a seeded order");
        pending.push_back(ack);
        if pending.len() >= IN_FLIGHT {
            let ack = pending.pop_front().expect("an ack in flight");
            ack.await.expect("seeded order stored");
        }
    }
    for ack in pending {
        ack.await.expect("seeded order stored");
    }
    started.elapsed()
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// The one time format the handlers write (and the order index sorts by).
pub use oms_runtime::time::format_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_order_has_the_stored_shape() {
        let order: serde_json::Value =
            serde_json::from_str(&order_json(2, "2026-01-01T00:00:00.000Z")).unwrap();
        assert_eq!(order["id"], "g00000002");
        assert_eq!(order["status"], "PENDING");
        assert_eq!(order["items"].as_array().unwrap().len(), 3);
        assert_eq!(order["items"][2]["quantity"], 3);
        let total = order["totalAmount"].as_f64().unwrap();
        assert!((total - 6.0 * crate::PRICE).abs() < 1e-9, "{total}");
        assert_eq!(order["createdAt"], order["updatedAt"]);
    }
}
