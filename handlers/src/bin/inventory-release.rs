//! `inventory.release`: gives an order's (or a hold's) stock back to
//! `quantity`. For an order that means cancelling it: the order's status and
//! its products' counts move in one atomic write (`settle.rs` decides,
//! `group.rs` writes), grouped with the releases that arrive together.
//! Idempotent: a released order or hold is answered as it is.
//! `orders.update-status` reaches it for CANCELLED, `inventory-holds` for
//! expired holds, an operator by `nats req`.

use oms_handlers::contract::{self, Reservation, SettleRequest};
use oms_handlers::group::{Books, Decision};
use oms_handlers::settle::{self, Settle};

fn main() {
    settle::serve(&contract::INVENTORY_RELEASE, release)
}

fn release(books: &Books, request: &SettleRequest, now: &str) -> Decision<Reservation> {
    settle::decide(books, request, now, Settle::Release)
}
