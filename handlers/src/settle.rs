//! Settling a reservation: release it (stock goes back to `quantity`) or
//! commit it (`reserved` drops: sold). Used by `inventory.release`,
//! `inventory.commit` and `inventory-events`.
//!
//! One atomic batch moves the reservation's state and every product's
//! counters together, compare-and-set on each. So a settle happens once or
//! not at all: a replay finds the target state and changes nothing, and of
//! two racing settles (or a hold expiry racing an order write) exactly one
//! commit passes the reservation's revision check.

use crate::model::{product_key, reservation_key, Product, Reservation, ReservationState};
use futures::future::try_join_all;
use oms_runtime::{time, Problem, Store, StoreError, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Release,
    Commit,
}

impl Settle {
    fn target(self) -> ReservationState {
        match self {
            Settle::Release => ReservationState::Released,
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
    loop {
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
        let keys: Vec<_> = reservation
            .items
            .iter()
            .map(|i| product_key(&i.product_id))
            .collect();
        let products = try_join_all(keys.iter().map(|k| store.get::<Product>(k))).await?;
        let now = time::now();
        let mut writes = Vec::with_capacity(keys.len() + 1);
        for ((item, key), product) in reservation.items.iter().zip(&keys).zip(products) {
            let product = product.ok_or_else(|| Problem::internal(format!("{key} vanished")))?;
            let mut next = product.value;
            next.reserved = next
                .reserved
                .checked_sub(item.quantity)
                .ok_or_else(|| Problem::internal(format!("{key} holds less than reserved")))?;
            if how == Settle::Release {
                next.quantity += item.quantity;
            }
            next.updated_at = now.clone();
            writes.push(Write::json(key.as_str(), &next, product.revision));
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
}
