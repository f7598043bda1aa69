//! `inventory.reserve`: holds every item of an order, or none.
//!
//! Requests that arrive together are decided together (group commit): one
//! task per instance takes every waiting request, reads the products they
//! name once, decides each request in arrival order against that state,
//! and writes the outcome as one atomic batch. Sixty-four buyers of one
//! product then cost one product write, not sixty-four that retry into
//! each other.
//!
//! Why the invariants hold (DESIGN §8):
//! - No oversell: each product is written compare-and-set on the revision
//!   its stock was read at, so stock that two instances (or groups) both
//!   saw cannot be spent twice; the loser's whole group is re-read and
//!   decided again. Within a group, requests are decided one after another
//!   on the same running counts.
//! - All or nothing: a request's products and its `reservation.<orderId>`
//!   are in one atomic batch; the server applies every write or none.
//! - Exactly once: `reservation.<orderId>` must be absent for the batch to
//!   commit, so a replay (or a racing duplicate) cannot decrement again; it
//!   finds the reservation and gets it back.
//! - Orphans: a reservation whose order is never stored is released by
//!   `inventory-events` after `OMS_HOLD_TTL`.

use futures::future::try_join_all;
use oms_handlers::model::{check_distinct, product_key, reservation_key, total, Item, PricedItem};
use oms_handlers::model::{Product, Reservation, ReservationState};
use oms_handlers::{contract, run_with, Ctx, Problem, Write};
use oms_runtime::{time, FieldError, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A batch may hold 1000 messages; a group stays well below.
const MAX_GROUP_WRITES: usize = 900;
/// How long a group keeps retrying lost races before giving up (callers
/// wait 5 s).
const RETRY_FOR: Duration = Duration::from_secs(4);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Reserve {
    order_id: String,
    items: Vec<Item>,
}

/// One short item in a 409.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shortage {
    product_id: String,
    requested: u64,
    available: u64,
}

type Outcome = Result<Reservation, Problem>;

struct Waiting {
    request: Reserve,
    reply: oneshot::Sender<Outcome>,
}

/// The requests waiting for the next group, and whether a group is running.
struct Groups {
    store: Store,
    state: Mutex<(Vec<Waiting>, bool)>,
}

fn main() {
    let groups = |app: &Arc<oms_runtime::App>| {
        std::future::ready(Groups {
            store: app.store.clone(),
            state: Mutex::default(),
        })
    };
    run_with(&contract::INVENTORY_RESERVE, groups, reserve)
}

async fn reserve(ctx: Ctx<Groups>, request: Reserve) -> Outcome {
    check_distinct(&request.items)?;
    let (reply, outcome) = oneshot::channel();
    let start = {
        let mut state = ctx.state.state.lock().unwrap();
        state.0.push(Waiting { request, reply });
        !std::mem::replace(&mut state.1, true)
    };
    if start {
        tokio::spawn(run_groups(ctx.state.clone()));
    }
    outcome
        .await
        .unwrap_or_else(|_| Err(Problem::internal("the reservation group ended")))
}

/// Decides groups until nobody waits.
async fn run_groups(groups: Arc<Groups>) {
    loop {
        let group = {
            let mut state = groups.state.lock().unwrap();
            if state.0.is_empty() {
                state.1 = false;
                return;
            }
            let mut writes = 0;
            let take = state
                .0
                .iter()
                .take_while(|w| {
                    writes += w.request.items.len() + 1;
                    writes <= MAX_GROUP_WRITES
                })
                .count()
                .max(1);
            state.0.drain(..take).collect::<Vec<_>>()
        };
        let requests: Vec<_> = group.iter().map(|w| &w.request).collect();
        let started = Instant::now();
        let outcomes = decide_group(&groups.store, &requests).await;
        tracing::debug!(
            size = requests.len(),
            micros = started.elapsed().as_micros() as u64,
            "group decided"
        );
        for (waiting, outcome) in group.into_iter().zip(outcomes) {
            let _ = waiting.reply.send(outcome);
        }
    }
}

/// Decides and writes a group, again from fresh reads whenever another
/// writer moved one of its keys first.
async fn decide_group(store: &Store, requests: &[&Reserve]) -> Vec<Outcome> {
    let started = Instant::now();
    for attempt in 0u32.. {
        // The first try assumes new order ids (the common case) and skips
        // reading their reservations; a replay then loses the race and the
        // next try reads them.
        match try_group(store, requests, attempt > 0).await {
            Ok(outcomes) => return outcomes,
            Err(Lost::Race) if started.elapsed() < RETRY_FOR => {
                let jitter = u64::from(nuid::next().as_bytes()[0]) % 50;
                let pause = 20 * u64::from(attempt.min(25)) + jitter;
                tokio::time::sleep(Duration::from_micros(pause)).await;
            }
            Err(Lost::Race) => {
                let lost = Problem::conflict("concurrent-update", "stock kept changing; try again");
                return requests.iter().map(|_| Err(lost.clone())).collect();
            }
            Err(Lost::Failed(problem)) => {
                return requests.iter().map(|_| Err(problem.clone())).collect()
            }
        }
    }
    unreachable!("the loop returns")
}

enum Lost {
    Race,
    Failed(Problem),
}

impl From<Problem> for Lost {
    fn from(problem: Problem) -> Lost {
        Lost::Failed(problem)
    }
}

async fn try_group(
    store: &Store,
    requests: &[&Reserve],
    read_existing: bool,
) -> Result<Vec<Outcome>, Lost> {
    let reservation_keys: Vec<_> = requests
        .iter()
        .map(|r| reservation_key(&r.order_id))
        .collect();
    let existing = if read_existing {
        try_join_all(
            reservation_keys
                .iter()
                .map(|k| store.read::<Reservation>(k)),
        )
        .await?
    } else {
        let absent = || oms_runtime::Slot {
            value: None,
            revision: 0,
        };
        reservation_keys.iter().map(|_| absent()).collect()
    };
    let mut product_ids: Vec<&str> = requests
        .iter()
        .flat_map(|r| r.items.iter().map(|i| i.product_id.as_str()))
        .collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let product_keys: Vec<_> = product_ids.iter().map(|id| product_key(id)).collect();
    let slots = try_join_all(product_keys.iter().map(|k| store.read::<Product>(k))).await?;
    // Running counts: what each product looks like after the requests so far.
    let mut products: BTreeMap<&str, (Option<Product>, u64, bool)> = product_ids
        .iter()
        .zip(slots)
        .map(|(id, slot)| (*id, (slot.value, slot.revision, false)))
        .collect();

    let now = time::now();
    let mut writes = Vec::new();
    let mut decided: HashMap<&str, usize> = HashMap::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        // Already reserved (a replay), or asked twice in this very group.
        let earlier = existing[i].value.clone().map(Ok).or_else(|| {
            decided
                .get(request.order_id.as_str())
                .map(|&j| outcomes[j].clone())
        });
        if let Some(earlier) = earlier {
            outcomes.push(match earlier {
                Ok(held) if held.holds_same(&request.items) => Ok(held),
                Ok(_) => Err(Problem::conflict(
                    "order-id-reused",
                    format!("order {} already holds other items", request.order_id),
                )),
                Err(problem) => Err(problem),
            });
            continue;
        }
        decided.insert(&request.order_id, i);
        let outcome = decide(request, &mut products, &now);
        if let Ok(reservation) = &outcome {
            writes.push(Write::json(
                &reservation_keys[i],
                reservation,
                existing[i].revision,
            ));
        }
        outcomes.push(outcome);
    }
    for (key, (product, revision, touched)) in product_keys.iter().zip(products.values()) {
        if let (Some(product), true) = (product, touched) {
            writes.push(Write::json(key.as_str(), product, *revision));
        }
    }
    if writes.is_empty() {
        return Ok(outcomes);
    }
    match store.apply(&writes).await {
        Ok(_) => Ok(outcomes),
        Err(StoreError::Conflict) => Err(Lost::Race),
        Err(err) => Err(Lost::Failed(err.into())),
    }
}

/// One request against the running counts: all items or none.
fn decide(
    request: &Reserve,
    products: &mut BTreeMap<&str, (Option<Product>, u64, bool)>,
    now: &str,
) -> Outcome {
    let unknown: Vec<_> = request
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| products[item.product_id.as_str()].0.is_none())
        .map(|(i, item)| FieldError {
            pointer: format!("/items/{i}/productId"),
            message: format!("unknown product {}", item.product_id),
        })
        .collect();
    if !unknown.is_empty() {
        let mut problem =
            Problem::unprocessable("unknown-product", "the order names unknown products");
        problem.errors = unknown;
        return Err(problem);
    }
    let available = |item: &Item| {
        products[item.product_id.as_str()]
            .0
            .as_ref()
            .map_or(0, |p| p.quantity)
    };
    let short: Vec<_> = request
        .items
        .iter()
        .filter(|item| available(item) < item.quantity)
        .map(|item| Shortage {
            product_id: item.product_id.clone(),
            requested: item.quantity,
            available: available(item),
        })
        .collect();
    if !short.is_empty() {
        return Err(
            Problem::conflict("insufficient-stock", "not enough stock for every item")
                .with("items", short),
        );
    }
    let mut items = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let entry = products
            .get_mut(item.product_id.as_str())
            .expect("read above");
        let product = entry.0.as_mut().expect("known above");
        product.quantity -= item.quantity;
        product.reserved += item.quantity;
        product.updated_at = now.to_string();
        entry.2 = true;
        items.push(PricedItem {
            product_id: item.product_id.clone(),
            quantity: item.quantity,
            price: product.price,
        });
    }
    Ok(Reservation {
        order_id: request.order_id.clone(),
        total_amount: total(&items),
        items,
        state: ReservationState::Held,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    })
}
