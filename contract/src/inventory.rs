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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettleRequest {
    pub order_id: String,
    /// The revision of the order (or hold) the caller decided on: another
    /// change since is a 409 and nothing happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<u64>,
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
    description: "One product",
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

/// Every inventory operation, in the order the README lists them.
pub const INVENTORY: &[&Spec] = &[
    &INVENTORY_ADD_STOCK.spec,
    &INVENTORY_CHECK.spec,
    &INVENTORY_RESERVE.spec,
    &INVENTORY_RELEASE.spec,
    &INVENTORY_COMMIT.spec,
    &INVENTORY_GET.spec,
    &INVENTORY_LIST.spec,
];
