//! The orders' requests and replies. The stored JSON of an order is its
//! reply shape.

use crate::inventory::{Item, PricedItem};
use crate::money::Cents;
use crate::operation::{route, Kind, Operation, Spec};
use crate::status::Status;
use crate::Page;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub items: Vec<PricedItem>,
    pub status: Status,
    /// The status before the last change: lets change-data-capture tell a
    /// creation from an update without reading history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<Status>,
    pub total_amount: Cents,
    pub created_at: String,
    pub updated_at: String,
    /// The KV revision, in replies only (see [`crate::Product::revision`]).
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

/// `orders.create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Create {
    /// Omitted by a customer: its own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `orders.update-status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStatus {
    pub id: String,
    pub status: Status,
    /// The revision the caller decided on (REST `If-Match`): another is 412.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<u64>,
}

/// `orders.get`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetOrder {
    pub id: String,
}

/// `orders.list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListOrders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

// The operations, as data: what the handlers register, the gateway
// routes, OpenAPI, the NATS permissions and the tests are made from.

pub const ORDERS_CREATE: Operation<Create, Order> = Operation::new(Spec {
    kind: Kind::Write,
    service: "orders-create",
    group: "orders",
    endpoint: "create",
    description: "Reserves stock and stores a PENDING order",
    route: route("POST", "/orders", 201),
    request_schema_file: "orders.create.request.json",
    response_schema_file: "order.json",
});

pub const ORDERS_UPDATE_STATUS: Operation<UpdateStatus, Order> = Operation::new(Spec {
    kind: Kind::Write,
    service: "orders-update-status",
    group: "orders",
    endpoint: "update-status",
    description: "Moves an order through PENDING, CONFIRMED, COMPLETED or CANCELLED",
    route: route("PUT", "/orders/{id}/status", 200),
    request_schema_file: "orders.update-status.request.json",
    response_schema_file: "order.json",
});

pub const ORDERS_GET: Operation<GetOrder, Order> = Operation::new(Spec {
    kind: Kind::Read,
    service: "orders-get",
    group: "orders",
    endpoint: "get",
    description: "One order",
    route: route("GET", "/orders/{id}", 200),
    request_schema_file: "orders.get.request.json",
    response_schema_file: "order.json",
});

pub const ORDERS_LIST: Operation<ListOrders, Page<Order>> = Operation::new(Spec {
    kind: Kind::Read,
    service: "orders-list",
    group: "orders",
    endpoint: "list",
    description: "Orders, newest first, filtered by status and customerId",
    route: route("GET", "/orders", 200),
    request_schema_file: "orders.list.request.json",
    response_schema_file: "orders.list.response.json",
});

/// Every orders operation, in the order the README lists them.
pub const ORDERS: &[&Spec] = &[
    &ORDERS_CREATE.spec,
    &ORDERS_UPDATE_STATUS.spec,
    &ORDERS_GET.spec,
    &ORDERS_LIST.spec,
];
