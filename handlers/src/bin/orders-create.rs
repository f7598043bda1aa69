//! `orders.create`: asks `inventory.reserve` to store the order PENDING
//! together with the stock it takes, in one atomic write, and answers the
//! order it stored.
//!
//! An `idempotencyKey` names the order id (a digest of the key), so a retry
//! — after a timeout, a crash, or concurrently — reaches the same order:
//! `inventory.reserve` finds it and answers it again instead of taking stock
//! twice. The same key with another body is a 422, and a refused request
//! leaves nothing behind: there is no record of the key but the order.

use oms_handlers::contract::{self, Create, Order, Reservation, Reserve};
use oms_handlers::model::{check_distinct, keyed_order_id, order_key};
use oms_handlers::{run, Ctx, Problem};

fn main() {
    run(&contract::ORDERS_CREATE, create)
}

async fn create(ctx: Ctx, mut req: Create) -> Result<Order, Problem> {
    check_distinct(&req.items)?;
    let customer_id = customer_of(ctx.customer(), &req)?;
    req.customer_id = Some(customer_id.clone());
    let order_id = match &req.idempotency_key {
        Some(key) => {
            let scope = ctx.principal.as_ref().map(|p| p.sub.as_str());
            let id = keyed_order_id(scope, key);
            // A retry usually finds its order: answer it without a reserve.
            if let Some(order) = ctx.store.get::<Order>(&order_key(&id)).await? {
                return same_request(order.value.at(order.revision), &req);
            }
            id
        }
        None => nuid::next().to_string(),
    };
    let reserve = Reserve {
        order_id: order_id.clone(),
        items: req.items.clone(),
        customer_id: Some(customer_id),
        // inventory.reserve names the actor this request carries.
        actor: None,
    };
    let reserved: Reservation = ctx
        .call(&contract::INVENTORY_RESERVE, &reserve)
        .await
        .map_err(|problem| match problem.kind.as_str() {
            "/problems/order-id-reused" if req.idempotency_key.is_some() => key_reused(&req),
            _ => problem,
        })?;
    match reserved.order {
        Some(order) if order.id == order_id => same_request(order, &req),
        _ => Err(Problem::internal(format!(
            "inventory.reserve answered something else than order {order_id}"
        ))),
    }
}

/// Whose order this is: a customer orders for itself (its own id when
/// `customerId` is omitted, 403 for another's); staff and NATS users name
/// the customer.
fn customer_of(customer: Option<&str>, req: &Create) -> Result<String, Problem> {
    match (customer, &req.customer_id) {
        (Some(own), None) => Ok(own.to_string()),
        (Some(own), Some(asked)) if asked == own => Ok(own.to_string()),
        (Some(own), Some(_)) => Err(Problem::forbidden(format!(
            "{own} may order only for itself"
        ))),
        (None, Some(asked)) => Ok(asked.clone()),
        (None, None) => Err(Problem::invalid_field(
            "/customerId",
            "customerId is required",
        )),
    }
}

/// The stored order, if it is what this request asks for; else the key
/// was used for another order.
fn same_request(order: Order, req: &Create) -> Result<Order, Problem> {
    let same_items = Reservation::of_order(&order).holds_same(&req.items);
    if Some(&order.customer_id) == req.customer_id.as_ref() && same_items {
        Ok(order)
    } else {
        Err(key_reused(req))
    }
}

fn key_reused(req: &Create) -> Problem {
    Problem::unprocessable(
        "idempotency-key-reused",
        format!(
            "idempotency key {} was used for a different order",
            req.idempotency_key.as_deref().unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_handlers::contract::{Cents, Item, PricedItem, Status};

    fn create(customer: Option<&str>, items: &[(&str, u64)]) -> Create {
        Create {
            customer_id: customer.map(String::from),
            items: items.iter().map(|(p, q)| Item::new(*p, *q)).collect(),
            idempotency_key: Some("k".into()),
        }
    }

    fn stored(customer: &str, items: &[(&str, u64)]) -> Order {
        Order {
            id: "o".into(),
            customer_id: customer.into(),
            items: items
                .iter()
                .map(|(p, q)| PricedItem {
                    product_id: p.to_string(),
                    quantity: *q,
                    price: Cents(100),
                })
                .collect(),
            status: Status::Pending,
            total_amount: Cents(100),
            ..Default::default()
        }
    }

    #[test]
    fn a_customer_orders_for_itself_and_staff_name_the_customer() {
        let own = |req| customer_of(Some("c-1"), &req);
        assert_eq!(own(create(None, &[("A", 1)])).unwrap(), "c-1");
        assert_eq!(own(create(Some("c-1"), &[("A", 1)])).unwrap(), "c-1");
        assert_eq!(
            own(create(Some("c-2"), &[("A", 1)])).unwrap_err().status,
            403
        );
        let staff = |req| customer_of(None, &req);
        assert_eq!(staff(create(Some("c-2"), &[("A", 1)])).unwrap(), "c-2");
        let missing = staff(create(None, &[("A", 1)])).unwrap_err();
        assert_eq!(
            (missing.status, missing.errors[0].pointer.as_str()),
            (400, "/customerId")
        );
    }

    #[test]
    fn a_key_again_answers_its_order_only_for_the_same_request() {
        let order = stored("c-1", &[("A", 2), ("B", 1)]);
        // The same lines in another order are the same request.
        let again = create(Some("c-1"), &[("B", 1), ("A", 2)]);
        assert_eq!(same_request(order.clone(), &again).unwrap(), order);
        for other in [
            create(Some("c-1"), &[("A", 3), ("B", 1)]),
            create(Some("c-1"), &[("A", 2)]),
            create(Some("c-2"), &[("A", 2), ("B", 1)]),
        ] {
            let problem = same_request(order.clone(), &other).unwrap_err();
            assert_eq!(
                (problem.status, problem.kind.as_str()),
                (422, "/problems/idempotency-key-reused")
            );
        }
    }
}
