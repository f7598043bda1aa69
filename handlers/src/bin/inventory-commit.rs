//! `inventory.commit`: marks an order's (or a hold's) stock as sold
//! (`reserved` drops). For an order that means completing it, allowed only
//! from CONFIRMED: the order's status and its products' counts move in one
//! atomic write (`settle.rs` decides, `group.rs` writes), grouped with the
//! commits that arrive together. Idempotent. `orders.update-status` reaches
//! it for COMPLETED, an operator by `nats req`.

use oms_handlers::contract::{self, Reservation, SettleRequest};
use oms_handlers::group::{Books, Decision};
use oms_handlers::settle::{self, Settle};

fn main() {
    settle::serve(&contract::INVENTORY_COMMIT, commit)
}

fn commit(books: &Books, request: &SettleRequest, now: &str) -> Decision<Reservation> {
    settle::decide(books, request, now, Settle::Commit)
}
