//! `inventory.release`: returns a reservation's stock to `quantity`, for an
//! operator. Idempotent; a committed (sold) reservation cannot be released.

use oms_handlers::model::{Reservation, ReservationState};
use oms_handlers::settle::{settle, Settle};
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
    let from = [ReservationState::Held];
    settle(&ctx.store, &req.order_id, Settle::Release, &from).await
}
