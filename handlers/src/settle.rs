//! Settling a reservation: release it (stock goes back to `quantity`) or
//! commit it (`reserved` drops: sold). Used by `inventory.release`,
//! `inventory.commit` and `inventory-events`.
//!
//! One atomic batch moves the reservation's state and every product's
//! counters together, compare-and-set on each. So a settle happens once or
//! not at all: a replay finds the target state and changes nothing, and of
//! two racing settles exactly one passes the reservation's revision check.
//!
//! An expiry (`Settle::Expire`) also deletes `order.<orderId>`, expecting it
//! absent. The order write expects it absent too, so of a hold running out
//! and its order being stored, exactly one happens: the expiry fails if the
//! order is there, and an order cannot be stored once the expiry sealed it.

use crate::model::{
    order_key, product_key, reservation_key, Order, Product, Reservation, ReservationState,
};
use futures::future::try_join_all;
use oms_runtime::{time, Problem, Store, StoreError, Write};
use tokio::sync::Semaphore;

/// Settle passes one process runs at once. Settles of one product contend
/// for it; a burst of them (many holds expiring together, a mass
/// cancellation) then takes turns instead of all reading the same revision
/// and all but one losing, over and over.
static TURNS: Semaphore = Semaphore::const_new(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Stock back to `quantity` (the order was cancelled).
    Release,
    /// `reserved` drops: sold (the order was completed).
    Commit,
    /// Release a hold whose order was never stored, and make sure it never is.
    Expire,
}

impl Settle {
    fn target(self) -> ReservationState {
        match self {
            Settle::Release | Settle::Expire => ReservationState::Released,
            Settle::Commit => ReservationState::Committed,
        }
    }
}

/// Settles `order_id`'s reservation if its state is one of `from`. Already
/// settled the same way: returns it unchanged. Any other state: 409.
pub async fn settle(
    store: &Store,
    order_id: &str,
    how: Settle,
    from: &[ReservationState],
) -> Result<Reservation, Problem> {
    let key = reservation_key(order_id);
    // Each pass either settles, finds it settled, or saw another writer move
    // first; a thousand passes without either means the books disagree.
    for _ in 0..1000 {
        // Read and write under one permit: a pass that read and then queued
        // behind others would find its reads stale and lose for certain.
        let _turn = TURNS.acquire().await.expect("semaphore open");
        let Some(current) = store.get::<Reservation>(&key).await? else {
            return Err(Problem::not_found(format!(
                "no reservation for order {order_id}"
            )));
        };
        let reservation = current.value;
        if reservation.state == how.target() {
            return Ok(reservation);
        }
        if !from.contains(&reservation.state) {
            return Err(Problem::conflict(
                "reservation-settled",
                format!("reservation {order_id} is {:?}", reservation.state),
            ));
        }
        let mut writes = Vec::with_capacity(reservation.items.len() + 2);
        if how == Settle::Expire {
            let order = store.read::<Order>(&order_key(order_id)).await?;
            if order.value.is_some() {
                return Err(Problem::conflict(
                    "order-stored",
                    format!("order {order_id} was stored; its hold stays"),
                ));
            }
            writes.push(Write::delete(order_key(order_id), order.revision));
        }
        let keys: Vec<_> = reservation
            .items
            .iter()
            .map(|i| product_key(&i.product_id))
            .collect();
        let products = try_join_all(keys.iter().map(|k| store.get::<Product>(k))).await?;
        let now = time::now();
        let mut consistent = true;
        for ((item, key), product) in reservation.items.iter().zip(&keys).zip(products) {
            let product = product.ok_or_else(|| Problem::internal(format!("{key} vanished")))?;
            let mut next = product.value;
            // The reservation and its products are read one after another: a
            // settle that landed in between shows as less reserved than this
            // reservation holds. Read again; the reservation will say so.
            let Some(reserved) = next.reserved.checked_sub(item.quantity) else {
                consistent = false;
                break;
            };
            next.reserved = reserved;
            if how != Settle::Commit {
                next.quantity += item.quantity;
            }
            next.updated_at = now.clone();
            writes.push(Write::json(key.as_str(), &next, product.revision));
        }
        if !consistent {
            continue;
        }
        let settled = Reservation {
            state: how.target(),
            updated_at: now,
            ..reservation
        };
        writes.push(Write::json(&key, &settled, current.revision));
        match store.apply(&writes).await {
            Ok(_) => return Ok(settled),
            Err(StoreError::Conflict) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(Problem::internal(format!(
        "reservation {order_id} disagrees with its products"
    )))
}
