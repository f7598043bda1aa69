//! Where things are stored in the `oms` bucket, and the few rules about
//! an order's lines that a schema cannot say. The stored JSON is the API
//! shape (the types are in `oms_contract`), so `nats kv get oms product.X`
//! reads like a REST response.

use oms_contract::{Cents, Item, PricedItem};
use oms_runtime::{FieldError, Problem};

/// Every product's key, as a subject pattern (lists and derivations).
pub const PRODUCTS: &str = "product.>";
/// Every order's key, as a subject pattern.
pub const ORDERS: &str = "order.>";

pub fn product_key(product_id: &str) -> String {
    format!("product.{product_id}")
}
pub fn order_key(order_id: &str) -> String {
    format!("order.{order_id}")
}
pub fn reservation_key(order_id: &str) -> String {
    format!("reservation.{order_id}")
}
/// Remembers an `add-stock` `requestId` so a retry is applied once. A
/// request id is the principal's own, like an idempotency key: with one,
/// the record is under `by.<digest of principal and id>` (a bare id has no
/// dot, so the two never meet).
pub fn stock_request_key(principal: Option<&str>, request_id: &str) -> String {
    match principal {
        Some(_) => format!(
            "request.add-stock.by.{}",
            keyed_order_id(principal, request_id)
        ),
        None => format!("request.add-stock.{request_id}"),
    }
}
/// The order id an `orders.create` idempotency key names: a digest of the
/// key, so a retry finds its order without a record of the key, and a key
/// whose request was refused leaves nothing behind. A key is the
/// principal's own: the same key from two principals names
/// two orders. This is the one place keys are scoped: the gateway passes a
/// client's key as it came, with the principal in `Oms-Principal`.
pub fn keyed_order_id(principal: Option<&str>, key: &str) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    if let Some(principal) = principal {
        hasher.update(principal.as_bytes());
        hasher.update([0]);
    }
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `items` must name each product once: the schema cannot say it.
pub fn check_distinct(items: &[Item]) -> Result<(), Problem> {
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if items[..i]
            .iter()
            .any(|earlier| earlier.product_id == item.product_id)
        {
            errors.push(FieldError {
                pointer: format!("/items/{i}/productId"),
                message: format!("{} appears more than once", item.product_id),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "items must name distinct products",
            errors,
        ))
    }
}

pub fn total(items: &[PricedItem]) -> Cents {
    items.iter().map(|i| i.price.times(i.quantity)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_contract::{Part, Product, Reason};

    fn item(id: &str) -> Item {
        Item {
            product_id: id.into(),
            quantity: 1,
        }
    }

    #[test]
    fn duplicate_product_ids_point_at_the_repeat() {
        assert!(check_distinct(&[item("a"), item("b")]).is_ok());
        let problem = check_distinct(&[item("a"), item("b"), item("a")]).unwrap_err();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors[0].pointer, "/items/2/productId");
    }

    #[test]
    fn keyed_order_ids_are_stable_distinct_and_valid() {
        let id = keyed_order_id(None, "cart-81");
        assert_eq!(id, keyed_order_id(None, "cart-81"));
        assert_ne!(id, keyed_order_id(None, "cart-82"));
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        // Fixed for ever: a retry after an upgrade must find the same order.
        assert_eq!(keyed_order_id(None, ""), "e3b0c44298fc1c149afbf4c8996fb924");
        // Each principal's keys are its own.
        let alice = keyed_order_id(Some("alice"), "cart-81");
        assert_ne!(alice, id);
        assert_ne!(alice, keyed_order_id(Some("bob"), "cart-81"));
        assert_ne!(
            keyed_order_id(Some("a"), "bc"),
            keyed_order_id(Some("ab"), "c")
        );
        // Fixed too: the order a REST retry with the same key finds.
        assert_eq!(
            keyed_order_id(Some("alice"), "cart-1"),
            "9d714f1ba0ac377597df65534a1d28d9"
        );
        let scoped = stock_request_key(Some("alice"), "r-1");
        assert_ne!(scoped, stock_request_key(Some("bob"), "r-1"));
        assert_eq!(stock_request_key(None, "r-1"), "request.add-stock.r-1");
        assert!(scoped.starts_with("request.add-stock.by."));
    }

    #[test]
    fn a_revision_records_its_change_and_a_group_joins_them() {
        let mut product = Product {
            product_id: "A".into(),
            quantity: 10,
            reserved: 0,
            price: Cents(1),
            ..Default::default()
        };
        let reserve = |order: &str, n: i64| {
            Part::new(Reason::Reserve, Some(order), Some("alice")).moved(-n, n)
        };
        product.record(reserve("o1", 2), true);
        let first = product.last_change.clone().unwrap();
        assert_eq!((first.seq, first.part.quantity_delta), (1, -2));
        assert!(first.parts.is_empty());
        // The next revision: the next number, the previous change replaced.
        product.record(reserve("o2", 3), true);
        // The same revision (one group): joined, summed, what they share kept.
        product.record(reserve("o3", 1), false);
        let change = product.last_change.clone().unwrap();
        assert_eq!(change.seq, 2);
        assert_eq!(change.parts.len(), 2);
        assert_eq!(
            (change.part.quantity_delta, change.part.reserved_delta),
            (-4, 4)
        );
        assert_eq!(change.part.reason, Reason::Reserve);
        assert_eq!(change.part.reference, None, "two orders");
        assert_eq!(change.part.actor.as_deref(), Some("alice"));
        let released = Part::new(Reason::Release, Some("o9"), Some("bob")).moved(5, -5);
        product.record(released, false);
        let change = product.last_change.unwrap();
        assert_eq!(change.part.reason, Reason::Mixed);
        assert_eq!(change.part.actor, None);
        assert_eq!(change.parts.len(), 3);
        let json = serde_json::to_value(&change.parts[2]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"reason": "release", "ref": "o9", "actor": "bob", "quantityDelta": 5, "reservedDelta": -5})
        );
    }

    #[test]
    fn total_is_exact() {
        let items = [
            PricedItem {
                product_id: "a".into(),
                quantity: 3,
                price: Cents(1999),
            },
            PricedItem {
                product_id: "b".into(),
                quantity: 1,
                price: Cents(1),
            },
        ];
        assert_eq!(total(&items), Cents(5998));
    }
}
