//! The inventory's requests and replies. The stored JSON of a product is
//! its reply shape, so `nats kv get oms product.X` reads like the API.

use crate::money::Cents;
use crate::operation::{route, Kind, Operation, Spec};
use crate::orders::Order;
use crate::status::Status;
use crate::Page;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
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
    /// say it. Part of the stored value and of replies.
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

/// Why a product's counts changed: the reasons of `inventory.adjust` and
/// those of the automatic writers.
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

/// One product revision's change of counts: an entry of the ledger
/// (`OMS_LEDGER`, `ledger.<productId>`), and of `inventory.history`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub product_id: String,
    /// The product's KV revision this entry stands for.
    pub revision: u64,
    /// The product's change number (`lastChange.seq`): 1, 2, ... per
    /// product; 0 for a revision that recorded no change.
    pub seq: u64,
    /// When the change was made (the product's `updatedAt`).
    pub at: String,
    /// `reason` (`unrecorded` for a revision that recorded none: a hand
    /// edit, or a write from before changes were recorded; its deltas are
    /// 0, the ledger does not guess), `ref`, `actor`, `note`, the deltas.
    #[serde(flatten)]
    pub change: Part,
    pub quantity_after: u64,
    pub reserved_after: u64,
    /// The requests' changes when a group wrote several at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

impl LedgerEntry {
    /// The entry a stored product revision stands for.
    pub fn of(product: Product, revision: u64) -> LedgerEntry {
        let (seq, change, parts) = match product.last_change {
            Some(change) => (change.seq, change.part, change.parts),
            None => (0, Part::new(Reason::Unrecorded, None, None), Vec::new()),
        };
        LedgerEntry {
            product_id: product.product_id,
            revision,
            seq,
            at: product.updated_at,
            change,
            quantity_after: product.quantity,
            reserved_after: product.reserved,
            parts,
        }
    }

    /// The counts before this entry, by its own account.
    pub fn before(&self) -> (i64, i64) {
        (
            self.quantity_after as i64 - self.change.quantity_delta,
            self.reserved_after as i64 - self.change.reserved_delta,
        )
    }
}

/// A line of a request: what and how many.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Item {
    pub product_id: String,
    pub quantity: u64,
}

impl Item {
    pub fn new(product_id: impl Into<String>, quantity: u64) -> Item {
        Item {
            product_id: product_id.into(),
            quantity,
        }
    }
}

/// A line of an order or reservation: with the unit price it was sold at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PricedItem {
    pub product_id: String,
    pub quantity: u64,
    pub price: Cents,
}

/// `inventory.add-stock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddStock {
    pub product_id: String,
    pub quantity: u64,
    pub price: Cents,
    /// Makes a retry safe: the same id is applied once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `inventory.check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Availability {
    pub available: bool,
    pub items: Vec<ItemAvailability>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemAvailability {
    pub product_id: String,
    pub requested: u64,
    /// Available now; 0 for an unknown product.
    pub quantity: u64,
    pub price: Cents,
    pub sufficient: bool,
}

/// `inventory.get`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetProduct {
    pub product_id: String,
    /// The product as it was then (RFC 3339); now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// `inventory.list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListProducts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `inventory.adjust`: an absolute available count or a signed change
/// (exactly one), and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Adjust {
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<u64>,
}

/// `inventory.history`: a product's ledger, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct History {
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `inventory.reserve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reserve {
    pub order_id: String,
    pub items: Vec<Item>,
    /// Store the order for this customer in the same write (how
    /// `orders.create` calls it); without it, a hold that expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Who the products' ledger entries name (set by the handler from the
    /// request's principal or caller, never sent).
    #[serde(skip)]
    pub actor: Option<String>,
}

/// One short item of a 409 to a reserve.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shortage {
    pub product_id: String,
    pub requested: u64,
    pub available: u64,
}

/// `inventory.release` and `inventory.commit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettleRequest {
    pub order_id: String,
    /// The revision of the order (or hold) the caller decided on: another
    /// change since is a 412 (precondition failed) and nothing happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<u64>,
    /// Released because its time ran out (a hold past `OMS_HOLD_TTL`, an
    /// unpaid order past `OMS_PENDING_TTL`): the ledger says `expire`
    /// rather than `release`, and an order becomes EXPIRED (from PENDING
    /// only; else 409). Release only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expire: bool,
    /// Who the products' ledger entries name (set by the handler, never sent).
    #[serde(skip)]
    pub actor: Option<String>,
}

/// Where a reservation is in its life: HELD, then settled once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    Held,
    Committed,
    Released,
}

/// The reply of reserve, release and commit; stored as a hold made
/// without an order (`reservation.<id>`).
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

// The operations, as data: what the handlers register, the gateway
// routes, OpenAPI, the NATS permissions and the tests are made from.

pub const INVENTORY_ADD_STOCK: Operation<AddStock, Product> = Operation::new(Spec {
    kind: Kind::Write,
    service: "inventory-add-stock",
    group: "inventory",
    endpoint: "add-stock",
    description: "Adds units to a product (creating it) and sets its price",
    route: route("POST", "/inventory", 201),
    request_schema_file: "inventory.add-stock.request.json",
    response_schema_file: "product.json",
});

pub const INVENTORY_CHECK: Operation<Check, Availability> = Operation::new(Spec {
    kind: Kind::Read,
    service: "inventory-check",
    group: "inventory",
    endpoint: "check",
    description: "Tells whether every item is in stock, without reserving",
    route: route("POST", "/inventory/check", 200),
    request_schema_file: "inventory.check.request.json",
    response_schema_file: "inventory.check.response.json",
});

pub const INVENTORY_RESERVE: Operation<Reserve, Reservation> = Operation::new(Spec {
    kind: Kind::Write,
    service: "inventory-reserve",
    group: "inventory",
    endpoint: "reserve",
    description: "Reserves all items of an order or none; idempotent on orderId",
    route: None,
    request_schema_file: "inventory.reserve.request.json",
    response_schema_file: "reservation.json",
});

pub const INVENTORY_RELEASE: Operation<SettleRequest, Reservation> = Operation::new(Spec {
    kind: Kind::Write,
    service: "inventory-release",
    group: "inventory",
    endpoint: "release",
    description:
        "Returns the stock of a cancelled or never-stored order (operator use); idempotent",
    route: None,
    request_schema_file: "inventory.settle.request.json",
    response_schema_file: "reservation.json",
});

pub const INVENTORY_COMMIT: Operation<SettleRequest, Reservation> = Operation::new(Spec {
    kind: Kind::Write,
    service: "inventory-commit",
    group: "inventory",
    endpoint: "commit",
    description: "Marks a completed order's stock as sold (operator use); idempotent",
    route: None,
    request_schema_file: "inventory.settle.request.json",
    response_schema_file: "reservation.json",
});

pub const INVENTORY_GET: Operation<GetProduct, Product> = Operation::new(Spec {
    kind: Kind::Read,
    service: "inventory-get",
    group: "inventory",
    endpoint: "get",
    description: "One product, now or as it was at a time",
    route: route("GET", "/inventory/{productId}", 200),
    request_schema_file: "inventory.get.request.json",
    response_schema_file: "product.json",
});

pub const INVENTORY_LIST: Operation<ListProducts, Page<Product>> = Operation::new(Spec {
    kind: Kind::Read,
    service: "inventory-list",
    group: "inventory",
    endpoint: "list",
    description: "Products in productId order, a page at a time",
    route: route("GET", "/inventory", 200),
    request_schema_file: "inventory.list.request.json",
    response_schema_file: "inventory.list.response.json",
});

pub const INVENTORY_ADJUST: Operation<Adjust, Product> = Operation::new(Spec {
    kind: Kind::Write,
    service: "inventory-adjust",
    group: "inventory",
    endpoint: "adjust",
    description: "Sets or changes a product's available count, saying why (staff)",
    route: route("POST", "/inventory/{productId}/adjust", 200),
    request_schema_file: "inventory.adjust.request.json",
    response_schema_file: "product.json",
});

pub const INVENTORY_HISTORY: Operation<History, Page<LedgerEntry>> = Operation::new(Spec {
    kind: Kind::Read,
    service: "inventory-history",
    group: "inventory",
    endpoint: "history",
    description: "A product's ledger entries, newest first, a page at a time (staff)",
    route: route("GET", "/inventory/{productId}/history", 200),
    request_schema_file: "inventory.history.request.json",
    response_schema_file: "inventory.history.response.json",
});

/// Every inventory operation, in the order the README lists them.
pub const INVENTORY: &[&Spec] = &[
    &INVENTORY_ADD_STOCK.spec,
    &INVENTORY_CHECK.spec,
    &INVENTORY_RESERVE.spec,
    &INVENTORY_RELEASE.spec,
    &INVENTORY_COMMIT.spec,
    &INVENTORY_GET.spec,
    &INVENTORY_LIST.spec,
    &INVENTORY_ADJUST.spec,
    &INVENTORY_HISTORY.spec,
];
