//! `inventory.reserve`: holds every item of an order, or none.
//!
//! With a `customerId` (how `orders.create` calls it) the order is stored
//! PENDING in the same atomic write that takes its stock: an order and its
//! hold are one record, so no hold can outlive a crash without its order,
//! and nothing has to finish the change later. Without one (an operator's
//! or a cart's hold) the stock is held under `reservation.<orderId>`, which
//! `inventory-holds` releases when it outlives `OMS_HOLD_TTL`.
//!
//! Requests that arrive together are decided together (`group.rs`): one
//! read of the products they name, one atomic batch for all of them.
//! Why the invariants hold:
//! - No oversell: each request is decided against the running counts of
//!   its group, and each product is written compare-and-set on the revision
//!   it was read at; a group that lost a race is read and decided again.
//! - All or nothing: a request's products and its order (or hold) are in
//!   one atomic batch, and `decide` accepts all of its items or none.
//! - Exactly once: the order (or hold) key must be absent for the batch to
//!   commit, so a replay cannot take stock again; it finds the order and
//!   gets it back.

use oms_handlers::contract::money::MAX_CENTS;
use oms_handlers::contract::{self, Cents, Item, Order, PricedItem, Reservation};
use oms_handlers::contract::{Part, Reason};
use oms_handlers::contract::{ReservationState, Reserve, Shortage, Status};
use oms_handlers::group::{Books, Decision, Group, Key, Read, Record};
use oms_handlers::model::{check_distinct, total};
use oms_handlers::{run_with, Ctx, Problem};
use oms_runtime::FieldError;
use std::sync::Arc;

type Reservations = Group<Reserve, Reservation>;

fn main() {
    let group = |app: &Arc<oms_runtime::App>| {
        std::future::ready(Group::new(app.store.clone(), reads, decide))
    };
    run_with(&contract::INVENTORY_RESERVE, group, reserve)
}

async fn reserve(
    ctx: Ctx<Arc<Reservations>>,
    mut request: Reserve,
) -> Result<Reservation, Problem> {
    ctx.staff_only()?;
    check_distinct(&request.items)?;
    request.actor = ctx.actor().map(String::from);
    ctx.state.submit(request, ctx.deadline).await
}

/// Its products, and the key it would create: for a new order id (the
/// common case) that key is assumed absent, not read.
fn reads(_: &Books, request: &Reserve) -> Vec<Read> {
    let id = || request.order_id.clone();
    let mut reads: Vec<_> = request
        .items
        .iter()
        .map(|i| Read::key(Key::Product(i.product_id.clone())))
        .collect();
    match request.customer_id {
        Some(_) => reads.push(Read::fresh(Key::Order(id()))),
        // Operator holds are rare: read whether the id is an order's too.
        None => reads.extend([Read::key(Key::Order(id())), Read::fresh(Key::Hold(id()))]),
    }
    reads
}

/// One request against the group's running books: all items or none.
fn decide(books: &Books, request: &Reserve, now: &str) -> Decision<Reservation> {
    let id = &request.order_id;
    let earlier = books
        .order(id)
        .map(Reservation::of_order)
        .or_else(|| books.hold(id).cloned());
    if let Some(earlier) = earlier {
        return replay(earlier, request);
    }
    if let Err(problem) = check_stock(books, request) {
        return Decision::Refuse(problem);
    }
    let mut changes = Vec::with_capacity(request.items.len() + 1);
    let mut items = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let mut product = books.product(&item.product_id).expect("checked").clone();
        product.quantity -= item.quantity;
        product.reserved += item.quantity;
        product.updated_at = now.to_string();
        let moved = item.quantity as i64;
        let part = Part::new(Reason::Reserve, Some(id), request.actor.as_deref());
        books.record_change(&mut product, part.moved(-moved, moved));
        items.push(PricedItem {
            product_id: item.product_id.clone(),
            quantity: item.quantity,
            price: product.price,
        });
        changes.push(Record::Product(product));
    }
    let Some(total_amount) = checked_total(&items) else {
        return Decision::Refuse(too_expensive());
    };
    let reservation = match &request.customer_id {
        Some(customer_id) => {
            let order = Order {
                id: id.clone(),
                customer_id: customer_id.clone(),
                items,
                status: Status::Pending,
                previous_status: None,
                total_amount,
                created_at: now.to_string(),
                updated_at: now.to_string(),
                revision: None,
            };
            changes.push(Record::Order(order.clone()));
            Reservation::of_order(&order)
        }
        None => {
            let hold = Reservation {
                order_id: id.clone(),
                items,
                total_amount,
                state: ReservationState::Held,
                created_at: now.to_string(),
                updated_at: now.to_string(),
                order: None,
            };
            changes.push(Record::Hold(hold.clone()));
            hold
        }
    };
    Decision::Accept(reservation, changes)
}

/// The same request again gets the same reservation; other items under a
/// used id are a 409.
fn replay(earlier: Reservation, request: &Reserve) -> Decision<Reservation> {
    if earlier.holds_same(&request.items) {
        Decision::Accept(earlier, Vec::new())
    } else {
        Decision::Refuse(Problem::conflict(
            "order-id-reused",
            format!("order {} already holds other items", request.order_id),
        ))
    }
}

/// 422 for unknown products, else 409 for every short item.
fn check_stock(books: &Books, request: &Reserve) -> Result<(), Problem> {
    let unknown: Vec<_> = request
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| books.product(&item.product_id).is_none())
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
    let available = |item: &Item| books.product(&item.product_id).map_or(0, |p| p.quantity);
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
    if short.is_empty() {
        Ok(())
    } else {
        Err(
            Problem::conflict("insufficient-stock", "not enough stock for every item")
                .with("items", short),
        )
    }
}

/// The total, if it stays within the range money is kept in (the largest
/// price): past it a stored amount could not be read back exactly.
fn checked_total(items: &[PricedItem]) -> Option<Cents> {
    let total = total(items);
    (total.0 <= MAX_CENTS).then_some(total)
}

fn too_expensive() -> Problem {
    Problem::unprocessable(
        "amount-too-large",
        format!(
            "the order's total passes the largest amount kept ({})",
            Cents(MAX_CENTS).to_decimal()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_handlers::contract::Product;

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn product(id: &str, quantity: u64, cents: i64) -> (Record, u64) {
        let product = Product {
            product_id: id.into(),
            quantity,
            price: Cents(cents),
            ..Default::default()
        };
        (Record::Product(product), 7)
    }

    fn request(id: &str, items: &[(&str, u64)], customer: Option<&str>) -> Reserve {
        Reserve {
            order_id: id.into(),
            items: items.iter().map(|(p, q)| Item::new(*p, *q)).collect(),
            customer_id: customer.map(String::from),
            actor: Some("tester".into()),
        }
    }

    fn accept(decision: Decision<Reservation>) -> (Reservation, Vec<Record>) {
        match decision {
            Decision::Accept(reply, changes) => (reply, changes),
            Decision::Refuse(problem) => panic!("refused: {problem}"),
            Decision::Stale => panic!("stale"),
        }
    }

    fn refuse(decision: Decision<Reservation>) -> Problem {
        match decision {
            Decision::Refuse(problem) => problem,
            Decision::Accept(..) | Decision::Stale => panic!("not refused"),
        }
    }

    #[test]
    fn an_order_and_its_stock_are_one_change() {
        let books = Books::with([product("A", 5, 250), product("B", 1, 100)]);
        let req = request("o1", &[("A", 2), ("B", 1)], Some("c1"));
        let (held, changes) = accept(decide(&books, &req, NOW));
        assert_eq!(held.state, ReservationState::Held);
        assert_eq!(held.total_amount, Cents(600));
        let order = held.order.expect("the stored order");
        assert_eq!(
            (order.status, order.customer_id.as_str()),
            (Status::Pending, "c1")
        );
        let counts: Vec<_> = changes
            .iter()
            .filter_map(|c| match c {
                Record::Product(p) => Some((p.product_id.as_str(), p.quantity, p.reserved)),
                _ => None,
            })
            .collect();
        assert_eq!(counts, [("A", 3, 2), ("B", 0, 1)]);
        assert!(changes
            .iter()
            .any(|c| matches!(c, Record::Order(o) if o.id == "o1")));
    }

    #[test]
    fn one_short_item_refuses_the_whole_request() {
        let books = Books::with([product("A", 5, 250), product("B", 1, 100)]);
        let problem = refuse(decide(
            &books,
            &request("o1", &[("A", 2), ("B", 2)], None),
            NOW,
        ));
        assert_eq!(problem.status, 409);
        assert_eq!(problem.extensions["items"][0]["productId"], "B");
        assert_eq!(problem.extensions["items"][0]["available"], 1);
    }

    #[test]
    fn unknown_products_are_422_with_pointers() {
        let books = Books::with([product("A", 5, 250)]);
        let problem = refuse(decide(
            &books,
            &request("o1", &[("A", 1), ("Z", 1)], None),
            NOW,
        ));
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].pointer, "/items/1/productId");
    }

    #[test]
    fn requests_of_one_group_share_the_running_counts() {
        let mut books = Books::with([product("A", 3, 100)]);
        let (_, changes) = accept(decide(&books, &request("o1", &[("A", 2)], Some("c")), NOW));
        books.apply(changes);
        let problem = refuse(decide(&books, &request("o2", &[("A", 2)], Some("c")), NOW));
        assert_eq!(problem.status, 409, "only 1 of 3 left");
        // The same order again, even in the same group, is a replay.
        let (again, changes) = accept(decide(&books, &request("o1", &[("A", 2)], Some("c")), NOW));
        assert!(changes.is_empty());
        assert_eq!(again.order.unwrap().id, "o1");
        let reused = refuse(decide(&books, &request("o1", &[("A", 1)], Some("c")), NOW));
        assert_eq!(reused.status, 409);
    }

    #[test]
    fn a_total_past_the_money_range_is_refused_not_stored() {
        let books = Books::with([product("A", 5, MAX_CENTS)]);
        let (held, _) = accept(decide(&books, &request("o1", &[("A", 1)], Some("c")), NOW));
        assert_eq!(held.total_amount, Cents(MAX_CENTS));
        let problem = refuse(decide(&books, &request("o2", &[("A", 2)], Some("c")), NOW));
        assert_eq!(
            (problem.status, problem.kind.as_str()),
            (422, "/problems/amount-too-large")
        );
    }
}
