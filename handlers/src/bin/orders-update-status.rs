//! `orders.update-status`: moves an order through the status machine
//! (`status.rs`). CONFIRMED moves no stock: one compare-and-set on the
//! order. CANCELLED and COMPLETED move stock, so they are decided where
//! stock is decided: `inventory.release` / `inventory.commit` write the
//! order's new status and its products' counts in one atomic write.
//!
//! Of two concurrent updates exactly one wins: each names the revision it
//! decided on, and the other gets 409. Setting the current status again
//! writes nothing, so it emits no event.
//!
//! A caller may name the revision it decided on itself (`expectedRevision`,
//! REST `If-Match`): another revision, now or when the write lands, is a
//! 412 and nothing changes — checked before anything else, a repeat of the
//! current status too (RFC 9110 §13.2.2: preconditions come first).

use oms_handlers::model::{order_key, Order, Reservation};
use oms_handlers::status::{Status, Transition};
use oms_handlers::{contract, run, Ctx, Problem, Write};
use oms_runtime::{time, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct UpdateStatus {
    id: String,
    status: Status,
    #[serde(default)]
    expected_revision: Option<u64>,
}

/// What `inventory.release` / `inventory.commit` are asked.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Settle<'a> {
    order_id: &'a str,
    expected_revision: u64,
}

fn main() {
    run(&contract::ORDERS_UPDATE_STATUS, update_status)
}

async fn update_status(ctx: Ctx, req: UpdateStatus) -> Result<Order, Problem> {
    let key = order_key(&req.id);
    let current = ctx.store.get::<Order>(&key).await?;
    // A customer may cancel its own order, nothing else; another's order
    // is "not found", so its existence does not leak.
    let Some(current) = current.filter(|o| ctx.customer().is_none_or(|c| c == o.value.customer_id))
    else {
        return Err(Problem::not_found(format!("order {} not found", req.id)));
    };
    if ctx.customer().is_some() && req.status != Status::Cancelled {
        return Err(Problem::forbidden("a customer may only cancel its order"));
    }
    if let Some(expected) = req.expected_revision {
        if expected != current.revision {
            return Err(stale(&req.id, expected, current.revision));
        }
    }
    let order = current.value;
    match order.status.transition(req.status) {
        Transition::Same => return Ok(order.at(current.revision)),
        Transition::Illegal => {
            return Err(Problem::conflict(
                "illegal-transition",
                format!(
                    "order {} is {} and cannot become {}",
                    req.id,
                    order.status.as_str(),
                    req.status.as_str()
                ),
            ))
        }
        Transition::Allowed => {}
    }
    let settle = Settle {
        order_id: &req.id,
        expected_revision: current.revision,
    };
    let settled: Result<Reservation, Problem> = match req.status {
        Status::Cancelled => ctx.call(&contract::INVENTORY_RELEASE, &settle).await,
        Status::Completed => ctx.call(&contract::INVENTORY_COMMIT, &settle).await,
        // Never asked for: the request's schema has no EXPIRED (400).
        Status::Expired => {
            return Err(Problem::invalid_field(
                "/status",
                "only the system expires orders",
            ))
        }
        Status::Pending | Status::Confirmed => {
            return confirm(&ctx, order, current.revision, req.expected_revision).await
        }
    };
    let settled = settled.map_err(|problem| match req.expected_revision {
        // The revision this request read is no longer the order's: the
        // caller's own precondition failed (412); without one, a
        // concurrent update won (409).
        None if problem.status == 412 => lost_race(&req.id),
        _ => problem,
    })?;
    settled
        .order
        .filter(|o| o.id == req.id)
        .ok_or_else(|| Problem::internal(format!("the settle of {} named no order", req.id)))
}

fn stale(id: &str, expected: u64, current: u64) -> Problem {
    Problem::precondition_failed(format!(
        "order {id} is at revision {current}, not {expected}; read it again"
    ))
}

fn lost_race(id: &str) -> Problem {
    Problem::conflict(
        "concurrent-update",
        format!("order {id} was changed concurrently; read it again"),
    )
}

async fn confirm(
    ctx: &Ctx,
    order: Order,
    revision: u64,
    expected: Option<u64>,
) -> Result<Order, Problem> {
    let updated = Order {
        previous_status: Some(order.status),
        status: Status::Confirmed,
        updated_at: time::now(),
        ..order
    };
    let write = Write::json(order_key(&updated.id), &updated, revision);
    match ctx.store.apply(&[write]).await {
        Ok(written) => Ok(updated.at(written)),
        Err(StoreError::Conflict) => Err(match expected {
            Some(expected) => Problem::precondition_failed(format!(
                "order {} was changed after revision {expected}; read it again",
                updated.id
            )),
            None => lost_race(&updated.id),
        }),
        Err(err) => Err(err.into()),
    }
}
