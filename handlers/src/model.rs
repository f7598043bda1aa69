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
/// Remembers an `add-stock` `requestId` so a retry is applied once.
pub fn stock_request_key(request_id: &str) -> String {
    format!("request.add-stock.{request_id}")
}
/// The order id an `orders.create` idempotency key names: a digest of the
/// key, so a retry finds its order without a record of the key, and a key
/// whose request was refused leaves nothing behind. A key is the
/// principal's own (DESIGN §10.2): the same key from two principals names
/// two orders.
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
    /// Below it, `events.inventory.low-stock` (set by `inventory.adjust`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<u64>,
    /// Why this revision changed the product: written by the change itself,
    /// in the same write, so the ledger entry derived from the revision can
    /// say it (DESIGN §11). Part of the stored value and of replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<Change>,
    /// The KV revision this value was read or written at: in replies only
    /// (it is the ETag), never stored (a stored value cannot know its own
    /// revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl Product {
    /// This value as read or written at `revision` (the reply's ETag).
    pub fn at(self, revision: u64) -> Product {
        Product {
            revision: Some(revision),
            ..self
        }
    }

    /// Records why this revision changes the product. `fresh`: the product
    /// is as it was read, so its `lastChange` is the previous revision's and
    /// this is the next change; otherwise the revision being built (by a
    /// group commit) already holds a change and `part` joins it.
    pub fn record(&mut self, part: Part, fresh: bool) {
        match (&mut self.last_change, fresh) {
            (Some(change), false) => change.join(part),
            (previous, _) => {
                let seq = previous.as_ref().map_or(1, |c| c.seq + 1);
                *previous = Some(Change::new(seq, part));
            }
        }
    }
}

/// Why a product's counts changed (DESIGN §11): the reasons of
/// `inventory.adjust` and those of the automatic writers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    AddStock,
    Reserve,
    Release,
    Sell,
    Expire,
    Received,
    Count,
    Damaged,
    Lost,
    Returned,
    Correction,
    /// A revision that holds changes of different reasons (see `parts`).
    Mixed,
    /// Ledger only: a revision that recorded no change (a hand edit in KV,
    /// or a write from before changes were recorded).
    Unrecorded,
}

/// One request's change of a product: why, on whose behalf, by how much.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub reason: Reason,
    /// The order or hold id, or the request id, the change belongs to.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Who asked: the principal (`Oms-Principal`), else the NATS user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub quantity_delta: i64,
    pub reserved_delta: i64,
}

impl Part {
    pub fn new(reason: Reason, reference: Option<&str>, actor: Option<&str>) -> Part {
        Part {
            reason,
            reference: reference.map(String::from),
            actor: actor.map(String::from),
            note: None,
            quantity_delta: 0,
            reserved_delta: 0,
        }
    }

    /// The same change, moving the counts by these amounts.
    pub fn moved(self, quantity_delta: i64, reserved_delta: i64) -> Part {
        Part {
            quantity_delta,
            reserved_delta,
            ..self
        }
    }
}

/// A product revision's change: one request's (`parts` empty), or the
/// sum of several that a group commit wrote as one revision (each in
/// `parts`; `ref`, `actor` and `note` then say what they share, and
/// `reason` is `mixed` when they differ).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The product's change number: 1 for its first recorded change, one
    /// more each revision. A gap or a repeat in the ledger is a lost or a
    /// foreign write.
    pub seq: u64,
    #[serde(flatten)]
    pub part: Part,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

impl Change {
    pub fn new(seq: u64, part: Part) -> Change {
        Change {
            seq,
            part,
            parts: Vec::new(),
        }
    }

    /// Adds another request's change to this revision's.
    fn join(&mut self, part: Part) {
        if self.parts.is_empty() {
            self.parts.push(self.part.clone());
        }
        let total = &mut self.part;
        total.quantity_delta += part.quantity_delta;
        total.reserved_delta += part.reserved_delta;
        if total.reason != part.reason {
            total.reason = Reason::Mixed;
        }
        if total.reference != part.reference {
            total.reference = None;
        }
        if total.actor != part.actor {
            total.actor = None;
        }
        if total.note != part.note {
            total.note = None;
        }
        self.parts.push(part);
    }
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
    }

    #[test]
    fn a_revision_records_its_change_and_a_group_joins_them() {
        let mut product = Product {
            product_id: "A".into(),
            quantity: 10,
            reserved: 0,
            price: Cents(1),
            created_at: String::new(),
            updated_at: String::new(),
            low_stock_threshold: None,
            last_change: None,
            revision: None,
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
            Status::Cancelled | Status::Expired => ReservationState::Released,
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
    /// The KV revision, in replies only (see [`Product::revision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl Order {
    /// This value as read or written at `revision` (the reply's ETag).
    pub fn at(self, revision: u64) -> Order {
        Order {
            revision: Some(revision),
            ..self
        }
    }
}
