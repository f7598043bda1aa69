//! `orders.create`: reserves stock through `inventory.reserve`, then stores
//! the order PENDING with the reserved unit prices and an exact total.
//!
//! The order is written expecting `order.<id>` absent. A hold that runs out
//! first deletes that key in the same batch that releases the stock (see
//! `settle.rs`), so the order can then not be stored (409); and once the
//! order is stored, the expiry's own expectation fails and the stock stays
//! held. One single-key write, no batch, decides the race. An
//! `idempotencyKey` fixes the order id, so a retry reserves nothing new and
//! returns the same order.

use oms_handlers::model::{check_distinct, order_key, order_request_key, Item, Order};
use oms_handlers::model::{Reservation, ReservationState};
use oms_handlers::status::Status;
use oms_handlers::{contract, run, Ctx, Problem, Write};
use oms_runtime::{time, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long an `idempotencyKey` is remembered.
const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
/// The reserve call: 5 s per attempt, 3 attempts, retried only when nothing
/// answered (safe: reserve is idempotent on orderId).
const RESERVE_TIMEOUT: Duration = Duration::from_secs(5);
const RESERVE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Create {
    customer_id: String,
    items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
}

/// What an idempotency key remembers: the request and the order id it got.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyRecord {
    request: Create,
    order_id: String,
}

fn main() {
    run(&contract::ORDERS_CREATE, create)
}

async fn create(ctx: Ctx, req: Create) -> Result<Order, Problem> {
    check_distinct(&req.items)?;
    let (order_id, fresh) = match &req.idempotency_key {
        Some(key) => (claim_key(&ctx, key, &req).await?, false),
        None => (nuid::next().to_string(), true),
    };
    // A retry under a known key may find its order already stored.
    if !fresh {
        if let Some(order) = ctx.store.get::<Order>(&order_key(&order_id)).await? {
            return Ok(order.value);
        }
    }
    let reservation = reserve(&ctx, &order_id, &req.items).await?;
    if reservation.state != ReservationState::Held {
        return Err(expired(&order_id));
    }
    let key = order_key(&order_id);
    // A fresh id has no order yet: write first, read only after a lost race.
    let mut read_first = !fresh;
    loop {
        let stored = if read_first {
            ctx.store.read::<Order>(&key).await?
        } else {
            read_first = true;
            oms_runtime::Slot {
                value: None,
                revision: 0,
            }
        };
        if let Some(order) = stored.value {
            return Ok(order); // a concurrent retry stored it first
        }
        if stored.revision != 0 {
            return Err(expired(&order_id)); // deleted: sealed by the hold's expiry
        }
        let now = time::now();
        let order = Order {
            id: order_id.clone(),
            customer_id: req.customer_id.clone(),
            items: reservation.items.clone(),
            status: Status::Pending,
            previous_status: None,
            total_amount: reservation.total_amount,
            created_at: now.clone(),
            updated_at: now,
        };
        match ctx.store.apply(&[Write::json(&key, &order, 0)]).await {
            Ok(_) => return Ok(order),
            Err(StoreError::Conflict) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// The order id for an idempotency key: the one it already names, or a new
/// one recorded now. The same key with another body is a 422.
async fn claim_key(ctx: &Ctx, key: &str, req: &Create) -> Result<String, Problem> {
    let record_key = order_request_key(key);
    loop {
        let seen = ctx.store.read::<KeyRecord>(&record_key).await?;
        if let Some(seen) = seen.value {
            return if seen.request == *req {
                Ok(seen.order_id)
            } else {
                Err(Problem::unprocessable(
                    "idempotency-key-reused",
                    format!("idempotency key {key} was used for a different order"),
                ))
            };
        }
        let record = KeyRecord {
            request: req.clone(),
            order_id: nuid::next().to_string(),
        };
        let mut write = Write::json(&record_key, &record, seen.revision);
        write.ttl = Some(KEY_TTL);
        match ctx.store.apply(&[write]).await {
            Ok(_) => return Ok(record.order_id),
            Err(StoreError::Conflict) => continue, // a concurrent retry recorded it: read it
            Err(err) => return Err(err.into()),
        }
    }
}

/// Request-reply to `inventory.reserve`, passing its problem through.
async fn reserve(ctx: &Ctx, order_id: &str, items: &[Item]) -> Result<Reservation, Problem> {
    let payload = serde_json::to_vec(&serde_json::json!({"orderId": order_id, "items": items}))
        .map_err(Problem::internal)?;
    let mut last = Problem::unavailable("inventory.reserve did not answer");
    for attempt in 1..=RESERVE_ATTEMPTS {
        let request = async_nats::Request::new()
            .payload(payload.clone().into())
            .headers(ctx.trace_headers())
            .timeout(Some(RESERVE_TIMEOUT));
        match ctx.client.send_request("inventory.reserve", request).await {
            Ok(reply) => {
                let code = reply
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(oms_runtime::service::ERROR_CODE_HEADER))
                    .and_then(|v| v.as_str().parse::<u16>().ok());
                return match code {
                    None => serde_json::from_slice(&reply.payload).map_err(Problem::internal),
                    Some(status) => Err(serde_json::from_slice::<Problem>(&reply.payload)
                        .unwrap_or_else(|_| {
                            Problem::new(
                                status,
                                "reserve-failed",
                                "Reserve failed",
                                "inventory.reserve failed",
                            )
                        })),
                };
            }
            Err(err) => {
                use async_nats::client::RequestErrorKind;
                last = match err.kind() {
                    RequestErrorKind::NoResponders => {
                        Problem::unavailable("no inventory-reserve instance is running")
                    }
                    RequestErrorKind::TimedOut => {
                        Problem::timeout("inventory.reserve did not answer in time")
                    }
                    _ => return Err(Problem::internal(err)),
                };
                tracing::warn!(attempt, error = %err, "inventory.reserve failed");
                if err.kind() == RequestErrorKind::NoResponders {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
    }
    Err(last)
}

fn expired(order_id: &str) -> Problem {
    Problem::conflict(
        "reservation-expired",
        format!(
            "the hold on order {order_id}'s stock expired before the order was stored; try again"
        ),
    )
}
