//! `orders.create`: asks `inventory.reserve` to store the order PENDING
//! together with the stock it takes, in one atomic write, and answers the
//! order it stored.
//!
//! An `idempotencyKey` names the order id (a digest of the key), so a retry
//! — after a timeout, a crash, or concurrently — reaches the same order:
//! `inventory.reserve` finds it and answers it again instead of taking stock
//! twice. The same key with another body is a 422, and a refused request
//! leaves nothing behind: there is no record of the key but the order.

use oms_handlers::model::{check_distinct, keyed_order_id, order_key, Item, Order, Reservation};
use oms_handlers::{contract, run, Ctx, Problem};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Create {
    customer_id: String,
    items: Vec<Item>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// What `inventory.reserve` is asked.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reserve<'a> {
    order_id: &'a str,
    items: &'a [Item],
    customer_id: &'a str,
}

fn main() {
    run(&contract::ORDERS_CREATE, create)
}

async fn create(ctx: Ctx, req: Create) -> Result<Order, Problem> {
    check_distinct(&req.items)?;
    let order_id = match &req.idempotency_key {
        Some(key) => {
            let id = keyed_order_id(key);
            // A retry usually finds its order: answer it without a reserve.
            if let Some(order) = ctx.store.get::<Order>(&order_key(&id)).await? {
                return same_request(order.value, &req);
            }
            id
        }
        None => nuid::next().to_string(),
    };
    let reserve = Reserve {
        order_id: &order_id,
        items: &req.items,
        customer_id: &req.customer_id,
    };
    let reserved: Reservation = ctx
        .call(&contract::INVENTORY_RESERVE, &reserve)
        .await
        .map_err(|problem| match problem.kind.as_str() {
            "/problems/order-id-reused" if req.idempotency_key.is_some() => key_reused(&req),
            _ => problem,
        })?;
    match reserved.order {
        Some(order) if order.id == order_id => same_request(order, &req),
        _ => Err(Problem::internal(format!(
            "inventory.reserve answered something else than order {order_id}"
        ))),
    }
}

/// The stored order, if it is what this request asks for; else the key
/// was used for another order.
fn same_request(order: Order, req: &Create) -> Result<Order, Problem> {
    let same_items = Reservation::of_order(&order).holds_same(&req.items);
    if order.customer_id == req.customer_id && same_items {
        Ok(order)
    } else {
        Err(key_reused(req))
    }
}

fn key_reused(req: &Create) -> Problem {
    Problem::unprocessable(
        "idempotency-key-reused",
        format!(
            "idempotency key {} was used for a different order",
            req.idempotency_key.as_deref().unwrap_or_default()
        ),
    )
}
