//! `inventory.reserve`: holds every item of an order, or none.
//!
//! Why the invariants hold (DESIGN §8):
//! - No oversell: each product is written compare-and-set on the revision
//!   its availability was checked at, so stock checked by two racing
//!   reservations cannot be spent twice; the loser re-reads and re-checks.
//! - All or nothing: the products and `reservation.<orderId>` are one atomic
//!   batch; the server applies every write or none.
//! - Exactly once: `reservation.<orderId>` must be absent for the batch to
//!   commit, so a replay (or a racing duplicate) cannot decrement again; it
//!   finds the reservation and returns it.
//! - Orphans: a reservation left HELD because its order was never stored is
//!   released by `inventory-events` after `OMS_HOLD_TTL`.

use futures::future::try_join_all;
use oms_handlers::model::{
    check_distinct, product_key, reservation_key, total, Item, PricedItem, Product,
};
use oms_handlers::model::{Reservation, ReservationState};
use oms_handlers::{contract, run, Ctx, Problem, Write};
use oms_runtime::{time, FieldError, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Reserve {
    order_id: String,
    items: Vec<Item>,
}

/// One short item in a 409.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shortage<'a> {
    product_id: &'a str,
    requested: u64,
    available: u64,
}

fn main() {
    run(&contract::INVENTORY_RESERVE, reserve)
}

async fn reserve(ctx: Ctx, req: Reserve) -> Result<Reservation, Problem> {
    check_distinct(&req.items)?;
    let reservation_key = reservation_key(&req.order_id);
    let product_keys: Vec<_> = req
        .items
        .iter()
        .map(|i| product_key(&i.product_id))
        .collect();
    for attempt in 0u32.. {
        let existing = ctx.store.read::<Reservation>(&reservation_key).await?;
        if let Some(existing) = existing.value {
            return if existing.holds_same(&req.items) {
                Ok(existing)
            } else {
                Err(Problem::conflict(
                    "order-id-reused",
                    format!("order {} already holds other items", req.order_id),
                ))
            };
        }
        let products =
            try_join_all(product_keys.iter().map(|k| ctx.store.get::<Product>(k))).await?;

        let unknown: Vec<_> = products
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .map(|(i, _)| FieldError {
                pointer: format!("/items/{i}/productId"),
                message: format!("unknown product {}", req.items[i].product_id),
            })
            .collect();
        if !unknown.is_empty() {
            let mut problem =
                Problem::unprocessable("unknown-product", "the order names unknown products");
            problem.errors = unknown;
            return Err(problem);
        }
        let products: Vec<_> = products.into_iter().flatten().collect();
        let short: Vec<_> = req
            .items
            .iter()
            .zip(&products)
            .filter(|(item, p)| p.value.quantity < item.quantity)
            .map(|(item, p)| Shortage {
                product_id: &item.product_id,
                requested: item.quantity,
                available: p.value.quantity,
            })
            .collect();
        if !short.is_empty() {
            return Err(
                Problem::conflict("insufficient-stock", "not enough stock for every item")
                    .with("items", short),
            );
        }

        let now = time::now();
        let mut writes = Vec::with_capacity(products.len() + 1);
        let mut items = Vec::with_capacity(products.len());
        for ((item, key), product) in req.items.iter().zip(&product_keys).zip(products) {
            let mut next = product.value;
            next.quantity -= item.quantity;
            next.reserved += item.quantity;
            next.updated_at = now.clone();
            items.push(PricedItem {
                product_id: item.product_id.clone(),
                quantity: item.quantity,
                price: next.price,
            });
            writes.push(Write::json(key.as_str(), &next, product.revision));
        }
        let reservation = Reservation {
            order_id: req.order_id.clone(),
            total_amount: total(&items),
            items,
            state: ReservationState::Held,
            created_at: now.clone(),
            updated_at: now,
        };
        writes.push(Write::json(
            &reservation_key,
            &reservation,
            existing.revision,
        ));
        match ctx.store.apply(&writes).await {
            Ok(_) => return Ok(reservation),
            Err(StoreError::Conflict) => {
                // Another reservation moved one of these products first.
                if attempt > 1 {
                    let jitter = u64::from(nuid::next().as_bytes()[0]) % 64;
                    tokio::time::sleep(Duration::from_micros(
                        100 * u64::from(attempt.min(20)) + jitter * 10,
                    ))
                    .await;
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    unreachable!("the loop returns")
}
