//! Settling stock: release it (back to `quantity`) or commit it (`reserved`
//! drops: sold). Decided here for `inventory.release` and
//! `inventory.commit`, which run it through their group commit.
//!
//! An order holds its own stock, so settling an order's stock *is* moving
//! the order: release cancels it, commit completes it, and the order's new
//! status and its products' counts are one atomic write. A hold made without
//! an order (`reservation.<id>`) is settled the same way, its state moving
//! from HELD. Either way a settle is applied once: a replay finds the target
//! state and changes nothing.

use crate::group::{Books, Decide, Decision, Group, Key, Read, Record};
use oms_contract::{Part, PricedItem, Reason, Reservation, ReservationState};
use oms_contract::{SettleRequest, Status, Transition};
use oms_runtime::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Stock back to `quantity`: the order is cancelled.
    Release,
    /// `reserved` drops, sold: the order is completed.
    Commit,
}

impl Settle {
    fn order_status(self) -> Status {
        match self {
            Settle::Release => Status::Cancelled,
            Settle::Commit => Status::Completed,
        }
    }

    fn hold_state(self) -> ReservationState {
        match self {
            Settle::Release => ReservationState::Released,
            Settle::Commit => ReservationState::Committed,
        }
    }
}

/// Runs `inventory.release` or `inventory.commit`: requests for staff (and
/// NATS users), settled by `decide` through the group commit.
pub fn serve(
    op: &'static oms_runtime::Operation<SettleRequest, Reservation>,
    decide: Decide<SettleRequest, Reservation>,
) {
    type Settles = Group<SettleRequest, Reservation>;
    let group = move |app: &std::sync::Arc<oms_runtime::App>| {
        std::future::ready(Group::new(app.store.clone(), reads, decide))
    };
    let settle = |ctx: oms_runtime::Ctx<std::sync::Arc<Settles>>, mut request: SettleRequest| async move {
        ctx.staff_only()?;
        request.actor = ctx.actor().map(String::from);
        ctx.state.submit(request, ctx.deadline).await
    };
    oms_runtime::run_with(op, group, settle)
}

/// The order under the id; if there is none, the hold; then the products
/// of whichever exists.
pub fn reads(books: &Books, request: &SettleRequest) -> Vec<Read> {
    let id = &request.order_id;
    let order = Key::Order(id.clone());
    let hold = Key::Hold(id.clone());
    let items = match (books.has(&order), books.order(id), books.has(&hold)) {
        (false, _, _) => return vec![Read::key(order)],
        (true, Some(order), _) => &order.items,
        (true, None, false) => return vec![Read::key(order), Read::key(hold)],
        (true, None, true) => match books.hold(id) {
            Some(hold) => &hold.items,
            None => return vec![Read::key(order), Read::key(hold)],
        },
    };
    let products = items
        .iter()
        .map(|i| Read::key(Key::Product(i.product_id.clone())));
    std::iter::once(Read::key(order))
        .chain(books.has(&hold).then(|| Read::key(hold)))
        .chain(products)
        .collect()
}

pub fn decide(
    books: &Books,
    request: &SettleRequest,
    now: &str,
    how: Settle,
) -> Decision<Reservation> {
    match settle(books, request, now, how) {
        Ok((reply, changes)) => Decision::Accept(reply, changes),
        Err(Refusal::Problem(problem)) => Decision::Refuse(problem),
        Err(Refusal::Stale) => Decision::Stale,
    }
}

/// Why a settle is not accepted.
enum Refusal {
    Problem(Problem),
    /// The order and its products were read on either side of another
    /// write: read again.
    Stale,
}

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Refusal {
        Refusal::Problem(problem)
    }
}

fn settle(
    books: &Books,
    request: &SettleRequest,
    now: &str,
    how: Settle,
) -> Result<(Reservation, Vec<Record>), Refusal> {
    let id = &request.order_id;
    if request.expire && how == Settle::Commit {
        return Err(Problem::invalid_field("/expire", "only a release expires").into());
    }
    if let Some(order) = books.order(id) {
        // An expiry moves only a PENDING order, to EXPIRED.
        let to = if request.expire {
            Status::Expired
        } else {
            how.order_status()
        };
        match order.status.transition(to) {
            // Already there: a retry of this very change succeeds.
            Transition::Same => return Ok((Reservation::of_order(order), Vec::new())),
            Transition::Illegal => {
                return Err(Refusal::Problem(Problem::conflict(
                    "illegal-transition",
                    format!(
                        "order {id} is {} and cannot become {}",
                        order.status.as_str(),
                        to.as_str()
                    ),
                )))
            }
            Transition::Allowed => {}
        }
        check_revision(books, Key::Order(id.clone()), request)?;
        let mut changes = move_stock(books, request, &order.items, now, how)?;
        let mut order = order.clone();
        order.previous_status = Some(order.status);
        order.status = to;
        order.updated_at = now.to_string();
        changes.push(Record::Order(order.clone()));
        return Ok((Reservation::of_order(&order), changes));
    }
    let Some(hold) = books.hold(id) else {
        return Err(Problem::not_found(format!("no order or hold {id}")).into());
    };
    if hold.state == how.hold_state() {
        return Ok((hold.clone(), Vec::new()));
    }
    if hold.state != ReservationState::Held {
        return Err(Problem::conflict(
            "reservation-settled",
            format!("hold {id} is {:?}", hold.state),
        )
        .into());
    }
    check_revision(books, Key::Hold(id.clone()), request)?;
    let mut changes = move_stock(books, request, &hold.items, now, how)?;
    let settled = Reservation {
        state: how.hold_state(),
        updated_at: now.to_string(),
        ..hold.clone()
    };
    changes.push(Record::Hold(settled.clone()));
    Ok((settled, changes))
}

fn check_revision(books: &Books, key: Key, request: &SettleRequest) -> Result<(), Refusal> {
    match request.expected_revision {
        Some(expected) if books.revision(&key) != Some(expected) => {
            let detail = format!(
                "{} is no longer at revision {expected}; read it again",
                request.order_id
            );
            Err(Problem::precondition_failed(detail).into())
        }
        _ => Ok(()),
    }
}

/// The products' counts after settling `items`, each recording why. A
/// product that holds less than the order was read after a write that
/// already moved this stock (the order itself was read before it): stale,
/// not a fault.
fn move_stock(
    books: &Books,
    request: &SettleRequest,
    items: &[PricedItem],
    now: &str,
    how: Settle,
) -> Result<Vec<Record>, Refusal> {
    let reason = match how {
        Settle::Release if request.expire => Reason::Expire,
        Settle::Release => Reason::Release,
        Settle::Commit => Reason::Sell,
    };
    let part = Part::new(reason, Some(&request.order_id), request.actor.as_deref());
    items
        .iter()
        .map(|item| {
            let mut product = books
                .product(&item.product_id)
                .ok_or_else(|| Problem::internal(format!("product {} vanished", item.product_id)))?
                .clone();
            product.reserved = product
                .reserved
                .checked_sub(item.quantity)
                .ok_or(Refusal::Stale)?;
            if how == Settle::Release {
                product.quantity += item.quantity;
            }
            product.updated_at = now.to_string();
            let moved = item.quantity as i64;
            let back = if how == Settle::Release { moved } else { 0 };
            books.record_change(&mut product, part.clone().moved(back, -moved));
            Ok(Record::Product(product))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_contract::Cents;
    use oms_contract::{Order, Product};

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn books(status: Status) -> Books {
        let order = Order {
            id: "o1".into(),
            customer_id: "c".into(),
            items: vec![PricedItem {
                product_id: "A".into(),
                quantity: 2,
                price: Cents(100),
            }],
            status,
            total_amount: Cents(200),
            ..Default::default()
        };
        let product = Product {
            product_id: "A".into(),
            quantity: 3,
            reserved: 2,
            price: Cents(100),
            ..Default::default()
        };
        Books::with([(Record::Order(order), 10), (Record::Product(product), 9)])
    }

    fn request(expected_revision: Option<u64>) -> SettleRequest {
        SettleRequest {
            order_id: "o1".into(),
            expected_revision,
            expire: false,
            actor: Some("tester".into()),
        }
    }

    fn counts(changes: &[Record]) -> (u64, u64) {
        changes
            .iter()
            .find_map(|c| match c {
                Record::Product(p) => Some((p.quantity, p.reserved)),
                _ => None,
            })
            .expect("a product change")
    }

    #[test]
    fn release_cancels_and_returns_stock_in_one_change() {
        let Decision::Accept(reply, changes) = decide(
            &books(Status::Pending),
            &request(None),
            NOW,
            Settle::Release,
        ) else {
            panic!("refused")
        };
        assert_eq!(reply.state, ReservationState::Released);
        let order = reply.order.unwrap();
        assert_eq!(
            (order.status, order.previous_status),
            (Status::Cancelled, Some(Status::Pending))
        );
        assert_eq!(counts(&changes), (5, 0));
    }

    #[test]
    fn commit_completes_and_sells() {
        let Decision::Accept(_, changes) = decide(
            &books(Status::Confirmed),
            &request(Some(10)),
            NOW,
            Settle::Commit,
        ) else {
            panic!("refused")
        };
        assert_eq!(counts(&changes), (3, 0));
    }

    #[test]
    fn commit_of_a_pending_order_is_illegal() {
        let Decision::Refuse(problem) =
            decide(&books(Status::Pending), &request(None), NOW, Settle::Commit)
        else {
            panic!("accepted")
        };
        assert_eq!(problem.status, 409);
    }

    #[test]
    fn stock_already_moved_under_an_open_order_is_read_again_not_a_fault() {
        // The order was read before a concurrent settle landed, its product
        // after: the books disagree, and the group reads again.
        let mut books = books(Status::Confirmed);
        let moved = Product {
            product_id: "A".into(),
            quantity: 5,
            price: Cents(100),
            ..Default::default()
        };
        books.apply(vec![Record::Product(moved)]);
        let decision = decide(&books, &request(None), NOW, Settle::Commit);
        assert!(matches!(decision, Decision::Stale));
    }

    #[test]
    fn a_replay_changes_nothing_and_a_stale_revision_is_refused() {
        let Decision::Accept(_, changes) = decide(
            &books(Status::Cancelled),
            &request(Some(3)),
            NOW,
            Settle::Release,
        ) else {
            panic!("refused")
        };
        assert!(changes.is_empty(), "already cancelled: nothing to write");
        let Decision::Refuse(problem) = decide(
            &books(Status::Pending),
            &request(Some(3)),
            NOW,
            Settle::Release,
        ) else {
            panic!("accepted")
        };
        assert_eq!(problem.kind, "/problems/precondition-failed");
        assert_eq!(problem.status, 412);
    }
}
