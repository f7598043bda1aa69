//! `inventory.release`: gives an order's (or a hold's) stock back to
//! `quantity`. For an order that means cancelling it: the order's status and
//! its products' counts move in one atomic write (`settle.rs`), grouped with
//! the releases that arrive together. Idempotent: a released order or hold
//! is answered as it is. `orders.update-status` reaches it for CANCELLED,
//! `inventory-holds` for expired holds, an operator by `nats req`.

use oms_handlers::group::{Books, Decision, Group};
use oms_handlers::model::Reservation;
use oms_handlers::settle::{self, Settle, SettleRequest};
use oms_handlers::{contract, run_with, Ctx, Problem};
use std::sync::Arc;

fn main() {
    let group = |app: &Arc<oms_runtime::App>| {
        std::future::ready(Group::new(app.store.clone(), settle::reads, decide))
    };
    run_with(&contract::INVENTORY_RELEASE, group, release)
}

async fn release(
    ctx: Ctx<Arc<Group<SettleRequest, Reservation>>>,
    request: SettleRequest,
) -> Result<Reservation, Problem> {
    ctx.staff_only()?;
    ctx.state.submit(request).await
}

fn decide(books: &Books, request: &SettleRequest, now: &str) -> Decision<Reservation> {
    settle::decide(books, request, now, Settle::Release)
}
