//! `inventory.commit`: marks a reservation's stock as sold (`reserved`
//! drops), for an operator. Idempotent; a released reservation cannot be
//! committed.

use oms_handlers::model::{Reservation, ReservationState};
use oms_handlers::settle::{settle, Settle};
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
    let from = [ReservationState::Held];
    settle(&ctx.store, &req.order_id, Settle::Commit, &from).await
}
