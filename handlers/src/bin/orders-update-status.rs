//! `orders.update-status`: moves an order through the status machine
//! (`contract/src/status.rs`). CONFIRMED moves no stock: one
//! compare-and-set on the order. CANCELLED and COMPLETED move stock, so
//! they are decided where stock is decided: `inventory.release` /
//! `inventory.commit` write the order's new status and its products'
//! counts in one atomic write.
//!
//! Of two concurrent updates exactly one wins: each names the revision it
//! decided on, and the other gets 409. Setting the current status again
//! writes nothing, so it emits no event.
//!
//! A caller may name the revision it decided on itself (`expectedRevision`,
//! REST `If-Match`): another revision, now or when the write lands, is a
//! 412 and nothing changes — checked before the status machine, a repeat
//! of the current status too (RFC 9110: preconditions come first).

use oms_handlers::contract::{
    self, Order, Reservation, SettleRequest, Status, Transition, UpdateStatus,
};
use oms_handlers::model::order_key;
use oms_handlers::{run, Ctx, Problem, Write};
use oms_runtime::{time, StoreError};

fn main() {
    run(&contract::ORDERS_UPDATE_STATUS, update_status)
}

async fn update_status(ctx: Ctx, req: UpdateStatus) -> Result<Order, Problem> {
    let current = ctx.store.get::<Order>(&order_key(&req.id)).await?;
    let (order, revision) = match current {
        Some(current) => (Some(current.value), current.revision),
        None => (None, 0),
    };
    let settle = SettleRequest {
        order_id: req.id.clone(),
        expected_revision: Some(revision),
        ..Default::default()
    };
    let settled: Result<Reservation, Problem> = match decide(&req, ctx.customer(), order, revision)?
    {
        Move::Stay(order) => return Ok(order.at(revision)),
        Move::Confirm(order) => return confirm(&ctx, order, revision, req.expected_revision).await,
        Move::Release => ctx.call(&contract::INVENTORY_RELEASE, &settle).await,
        Move::Commit => ctx.call(&contract::INVENTORY_COMMIT, &settle).await,
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

/// What setting a status means for an order as it was read.
#[derive(Debug, PartialEq)]
enum Move {
    /// Already there: answered as it is, nothing written.
    Stay(Order),
    /// No stock moves: one compare-and-set here.
    Confirm(Order),
    /// Stock moves with the order: decided by `inventory.release` / `commit`.
    Release,
    Commit,
}

/// Who may move an order, the caller's precondition, then the status
/// machine. A customer may cancel its own order, nothing else; another's
/// order is "not found", so its existence does not leak.
fn decide(
    req: &UpdateStatus,
    customer: Option<&str>,
    order: Option<Order>,
    revision: u64,
) -> Result<Move, Problem> {
    let (id, to) = (&req.id, req.status);
    let order = order
        .filter(|o| customer.is_none_or(|c| c == o.customer_id))
        .ok_or_else(|| Problem::not_found(format!("order {id} not found")))?;
    if customer.is_some() && to != Status::Cancelled {
        return Err(Problem::forbidden("a customer may only cancel its order"));
    }
    if let Some(expected) = req.expected_revision.filter(|e| *e != revision) {
        return Err(Problem::precondition_failed(format!(
            "order {id} is at revision {revision}, not {expected}; read it again"
        )));
    }
    match order.status.transition(to) {
        Transition::Same => Ok(Move::Stay(order)),
        Transition::Illegal => Err(Problem::conflict(
            "illegal-transition",
            format!(
                "order {} is {} and cannot become {}",
                order.id,
                order.status.as_str(),
                to.as_str()
            ),
        )),
        Transition::Allowed => match to {
            Status::Cancelled => Ok(Move::Release),
            Status::Completed => Ok(Move::Commit),
            // Never asked for: the request's schema has no EXPIRED (400).
            Status::Expired => Err(Problem::invalid_field(
                "/status",
                "only the system expires orders",
            )),
            Status::Pending | Status::Confirmed => Ok(Move::Confirm(order)),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use oms_handlers::contract::Cents;
    use Status::*;

    fn order(status: Status) -> Order {
        Order {
            id: "o-1".into(),
            customer_id: "c-1".into(),
            items: Vec::new(),
            status,
            total_amount: Cents(0),
            ..Default::default()
        }
    }

    fn update(to: Status, expected_revision: Option<u64>) -> UpdateStatus {
        UpdateStatus {
            id: "o-1".into(),
            status: to,
            expected_revision,
        }
    }

    fn moved(customer: Option<&str>, from: Status, to: Status) -> Result<Move, u16> {
        decide(&update(to, None), customer, Some(order(from)), 7).map_err(|p| p.status)
    }

    #[test]
    fn each_allowed_move_goes_where_its_stock_is_decided() {
        assert_eq!(
            moved(None, Pending, Confirmed),
            Ok(Move::Confirm(order(Pending)))
        );
        assert_eq!(moved(None, Pending, Cancelled), Ok(Move::Release));
        assert_eq!(moved(None, Confirmed, Cancelled), Ok(Move::Release));
        assert_eq!(moved(None, Confirmed, Completed), Ok(Move::Commit));
        assert_eq!(
            moved(None, Completed, Completed),
            Ok(Move::Stay(order(Completed)))
        );
        assert_eq!(moved(None, Completed, Cancelled), Err(409));
        assert_eq!(moved(None, Pending, Completed), Err(409));
        assert_eq!(
            decide(&update(Cancelled, None), None, None, 0)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(moved(None, Pending, Expired), Err(400), "only the system");
    }

    #[test]
    fn a_stale_expected_revision_is_412_before_the_status_machine() {
        let at = |expected, from, to| {
            decide(&update(to, Some(expected)), None, Some(order(from)), 7).map_err(|p| p.status)
        };
        assert_eq!(at(7, Pending, Confirmed), Ok(Move::Confirm(order(Pending))));
        assert_eq!(at(6, Pending, Confirmed), Err(412));
        // Even a repeat of the current status, or an illegal move.
        assert_eq!(at(6, Completed, Completed), Err(412));
        assert_eq!(at(6, Completed, Pending), Err(412));
    }

    #[test]
    fn a_customer_may_only_cancel_its_own_order() {
        assert_eq!(moved(Some("c-1"), Pending, Cancelled), Ok(Move::Release));
        assert_eq!(moved(Some("c-1"), Pending, Confirmed), Err(403));
        assert_eq!(moved(Some("c-1"), Confirmed, Completed), Err(403));
        // Another's order does not exist for it, whatever it asks.
        assert_eq!(moved(Some("c-2"), Pending, Cancelled), Err(404));
        assert_eq!(moved(Some("c-2"), Pending, Confirmed), Err(404));
    }
}
