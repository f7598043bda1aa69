//! `orders.update-status`: moves an order through the status machine
//! (`contract/src/status.rs`). CONFIRMED moves no stock: one compare-and-set on the
//! order. CANCELLED and COMPLETED move stock, so they are decided where
//! stock is decided: `inventory.release` / `inventory.commit` write the
//! order's new status and its products' counts in one atomic write.
//!
//! Of two concurrent updates exactly one wins: each names the revision it
//! decided on, and the other gets 409. Setting the current status again
//! writes nothing, so it emits no event.

use oms_handlers::contract::{
    self, Order, Reservation, SettleRequest, Status, Transition, UpdateStatus,
};
use oms_handlers::model::order_key;
use oms_handlers::{run, Ctx, Problem, Write};
use oms_runtime::{time, StoreError};

fn main() {
    run(&contract::ORDERS_UPDATE_STATUS, update_status)
}

async fn update_status(ctx: Ctx, req: UpdateStatus) -> Result<Order, Problem> {
    let key = order_key(&req.id);
    let current = ctx.store.get::<Order>(&key).await?;
    // A customer may cancel its own order, nothing else; another's order
    // is "not found", so its existence does not leak.
    let Some(current) = current.filter(|o| ctx.customer().is_none_or(|c| c == o.value.customer_id))
    else {
        return Err(Problem::not_found(format!("order {} not found", req.id)));
    };
    if ctx.customer().is_some() && req.status != Status::Cancelled {
        return Err(Problem::forbidden("a customer may only cancel its order"));
    }
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
    let settle = SettleRequest {
        order_id: req.id.clone(),
        expected_revision: Some(current.revision),
    };
    let settled: Reservation = match req.status {
        Status::Cancelled => ctx.call(&contract::INVENTORY_RELEASE, &settle).await?,
        Status::Completed => ctx.call(&contract::INVENTORY_COMMIT, &settle).await?,
        Status::Pending | Status::Confirmed => return confirm(&ctx, order, current.revision).await,
    };
    settled
        .order
        .filter(|o| o.id == req.id)
        .ok_or_else(|| Problem::internal(format!("the settle of {} named no order", req.id)))
}

async fn confirm(ctx: &Ctx, order: Order, revision: u64) -> Result<Order, Problem> {
    let updated = Order {
        previous_status: Some(order.status),
        status: Status::Confirmed,
        updated_at: time::now(),
        ..order
    };
    let write = Write::json(order_key(&updated.id), &updated, revision);
    match ctx.store.apply(&[write]).await {
        Ok(_) => Ok(updated),
        Err(StoreError::Conflict) => Err(Problem::conflict(
            "concurrent-update",
            format!(
                "order {} was changed concurrently; read it again",
                updated.id
            ),
        )),
        Err(err) => Err(err.into()),
    }
}
