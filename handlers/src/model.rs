//! What is stored in the `oms` bucket, and under which key (DESIGN §3–§4).
//! The stored JSON is the API shape, so `nats kv get oms product.X` reads
//! like a REST response.

use crate::money::Cents;
use oms_runtime::{FieldError, Problem};
use serde::{Deserialize, Serialize};

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
/// principal's own (DESIGN §10.2): the same key from two principals names
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub product_id: String,
    /// Available to sell.
    pub quantity: u64,
    /// Held by open orders.
    pub reserved: u64,
    pub price: Cents,
    pub created_at: String,
    pub updated_at: String,
}

/// A line of a request: what and how many.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Item {
    pub product_id: String,
    pub quantity: u64,
}

/// A line of an order or reservation: with the unit price it was sold at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PricedItem {
    pub product_id: String,
    pub quantity: u64,
    pub price: Cents,
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

/// Where a reservation is in its life: HELD, then settled once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    Held,
    Committed,
    Released,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: String,
    pub items: Vec<PricedItem>,
    pub total_amount: Cents,
    pub state: ReservationState,
    pub created_at: String,
    pub updated_at: String,
    /// The order whose stock this is, when there is one (a reply of
    /// reserve, release or commit for an order; never stored in a hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
}

impl Reservation {
    /// An order's stock seen as a reservation: an order holds its stock
    /// itself (no `reservation.<id>` key), so its status says where the
    /// stock is.
    pub fn of_order(order: &Order) -> Reservation {
        use crate::status::Status;
        let state = match order.status {
            Status::Pending | Status::Confirmed => ReservationState::Held,
            Status::Completed => ReservationState::Committed,
            Status::Cancelled => ReservationState::Released,
        };
        Reservation {
            order_id: order.id.clone(),
            items: order.items.clone(),
            total_amount: order.total_amount,
            state,
            created_at: order.created_at.clone(),
            updated_at: order.updated_at.clone(),
            order: Some(order.clone()),
        }
    }

    /// Same products and quantities, in any order: the test of a replay.
    pub fn holds_same(&self, items: &[Item]) -> bool {
        let mut held: Vec<_> = self
            .items
            .iter()
            .map(|i| (&i.product_id, i.quantity))
            .collect();
        let mut asked: Vec<_> = items.iter().map(|i| (&i.product_id, i.quantity)).collect();
        held.sort();
        asked.sort();
        held == asked
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub items: Vec<PricedItem>,
    pub status: crate::status::Status,
    /// The status before the last change: lets change-data-capture tell a
    /// creation from an update without reading history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<crate::status::Status>,
    pub total_amount: Cents,
    pub created_at: String,
    pub updated_at: String,
}
