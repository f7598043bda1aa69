//! `inventory.commit`: marks a reservation's stock as sold (`reserved`
//! drops), for an operator. Idempotent. Allowed only for a completed order
//! (the worker would do the same), so what is sold is what was delivered.

use oms_handlers::model::{order_key, Order, Reservation, ReservationState};
use oms_handlers::settle::{settle, Settle};
use oms_handlers::status::Status;
use oms_handlers::{contract, run, Ctx, Problem};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Commit {
    order_id: String,
}

fn main() {
    run(&contract::INVENTORY_COMMIT, commit)
}

async fn commit(ctx: Ctx, req: Commit) -> Result<Reservation, Problem> {
    let order = ctx.store.get::<Order>(&order_key(&req.order_id)).await?;
    if order.is_none_or(|o| o.value.status != Status::Completed) {
        return Err(Problem::conflict(
            "order-not-completed",
            format!(
                "order {} is not COMPLETED; only sold stock is committed",
                req.order_id
            ),
        ));
    }
    settle(
        &ctx.store,
        &req.order_id,
        Settle::Commit,
        &[ReservationState::Held],
    )
    .await
}
