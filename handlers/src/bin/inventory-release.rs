//! `inventory.release`: returns a reservation's stock to `quantity`, for an
//! operator. Idempotent. Allowed when the order was cancelled (the worker
//! would do the same) or was never stored (the order id is then sealed, as a
//! hold's expiry does); an open order keeps its stock: cancel it instead.

use oms_handlers::model::{order_key, Order, Reservation, ReservationState};
use oms_handlers::settle::{settle, Settle};
use oms_handlers::status::Status;
use oms_handlers::{contract, run, Ctx, Problem};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Release {
    order_id: String,
}

fn main() {
    run(&contract::INVENTORY_RELEASE, release)
}

async fn release(ctx: Ctx, req: Release) -> Result<Reservation, Problem> {
    let how = match ctx.store.get::<Order>(&order_key(&req.order_id)).await? {
        None => Settle::Expire,
        Some(order) if order.value.status == Status::Cancelled => Settle::Release,
        Some(order) => {
            return Err(Problem::conflict(
                "order-open",
                format!(
                    "order {} is {}; cancel it to release its stock",
                    req.order_id,
                    order.value.status.as_str()
                ),
            ))
        }
    };
    settle(&ctx.store, &req.order_id, how, &[ReservationState::Held]).await
}
