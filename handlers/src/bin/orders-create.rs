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
    /// Omitted by a customer: its own id.
    customer_id: Option<String>,
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

async fn create(ctx: Ctx, mut req: Create) -> Result<Order, Problem> {
    check_distinct(&req.items)?;
    let customer_id = customer_of(&ctx, &req)?;
    req.customer_id = Some(customer_id.clone());
    let order_id = match &req.idempotency_key {
        Some(key) => {
            let scope = ctx.principal.as_ref().map(|p| p.sub.as_str());
            let id = keyed_order_id(scope, key);
            // A retry usually finds its order: answer it without a reserve.
            if let Some(order) = ctx.store.get::<Order>(&order_key(&id)).await? {
                return same_request(order.value.at(order.revision), &req);
            }
            id
        }
        None => nuid::next().to_string(),
    };
    let reserve = Reserve {
        order_id: &order_id,
        items: &req.items,
        customer_id: &customer_id,
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

/// Whose order this is: a customer orders for itself (its own id when
/// `customerId` is omitted, 403 for another's); staff and NATS users name
/// the customer.
fn customer_of(ctx: &Ctx, req: &Create) -> Result<String, Problem> {
    match (ctx.customer(), &req.customer_id) {
        (Some(own), None) => Ok(own.to_string()),
        (Some(own), Some(asked)) if asked == own => Ok(own.to_string()),
        (Some(own), Some(_)) => Err(Problem::forbidden(format!(
            "{own} may order only for itself"
        ))),
        (None, Some(asked)) => Ok(asked.clone()),
        (None, None) => Err(Problem::invalid_field(
            "/customerId",
            "customerId is required",
        )),
    }
}

/// The stored order, if it is what this request asks for; else the key
/// was used for another order.
fn same_request(order: Order, req: &Create) -> Result<Order, Problem> {
    let same_items = Reservation::of_order(&order).holds_same(&req.items);
    if Some(&order.customer_id) == req.customer_id.as_ref() && same_items {
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
