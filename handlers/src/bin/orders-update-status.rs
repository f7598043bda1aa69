//! `orders.update-status`: moves an order through the status machine
//! (`status.rs`). One compare-and-set on the order: of two concurrent
//! updates exactly one wins and the other gets 409. Setting the current
//! status again writes nothing, so it emits no event. Stock follows from the
//! event: `inventory-events` releases on CANCELLED and commits on COMPLETED.

use oms_handlers::model::{order_key, Order};
use oms_handlers::status::{Status, Transition};
use oms_handlers::{contract, run, Ctx, Problem, Write};
use oms_runtime::{time, StoreError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateStatus {
    id: String,
    status: Status,
}

fn main() {
    run(&contract::ORDERS_UPDATE_STATUS, update_status)
}

async fn update_status(ctx: Ctx, req: UpdateStatus) -> Result<Order, Problem> {
    let key = order_key(&req.id);
    let Some(current) = ctx.store.get::<Order>(&key).await? else {
        return Err(Problem::not_found(format!("order {} not found", req.id)));
    };
    let order = current.value;
    match order.status.transition(req.status) {
        Transition::Same => return Ok(order),
        Transition::Illegal => {
            return Err(Problem::conflict(
                "illegal-transition",
                format!(
                    "order {} is {} and cannot become {}",
                    req.id,
                    order.status.as_str(),
                    req.status.as_str()
                ),
            ))
        }
        Transition::Allowed => {}
    }
    let updated = Order {
        previous_status: Some(order.status),
        status: req.status,
        updated_at: time::now(),
        ..order
    };
    match ctx
        .store
        .apply(&[Write::json(&key, &updated, current.revision)])
        .await
    {
        Ok(_) => Ok(updated),
        Err(StoreError::Conflict) => Err(Problem::conflict(
            "concurrent-update",
            format!("order {} was changed concurrently; read it again", req.id),
        )),
        Err(err) => Err(err.into()),
    }
}
