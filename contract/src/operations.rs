//! Every operation of the system, as data: the table the handlers register
//! from, the gateway routes from, OpenAPI and the NATS permissions are
//! generated from, and the tests and the bench drive.

use crate::inventory::*;
use crate::operation::{Kind, Operation, Route, Spec};
use crate::orders::*;
use crate::Page;

const fn route(method: &'static str, path: &'static str, status: u16) -> Option<Route> {
    Some(Route {
        method,
        path,
        status,
    })
}

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

/// Every request/reply operation, in the order the README lists them.
pub const OPERATIONS: &[&Spec] = &[
    &INVENTORY_ADD_STOCK.spec,
    &INVENTORY_CHECK.spec,
    &INVENTORY_RESERVE.spec,
    &INVENTORY_RELEASE.spec,
    &INVENTORY_COMMIT.spec,
    &INVENTORY_GET.spec,
    &INVENTORY_LIST.spec,
    &ORDERS_CREATE.spec,
    &ORDERS_UPDATE_STATUS.spec,
    &ORDERS_GET.spec,
    &ORDERS_LIST.spec,
];

/// The problem body every error reply carries (bundled JSON Schema).
pub fn problem_schema() -> &'static str {
    crate::schemas::schema("problem.json")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_names_schemas_that_exist() {
        for op in super::OPERATIONS {
            for text in [op.request_schema(), op.response_schema()] {
                let schema: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(schema["type"], "object", "{}", op.service);
            }
        }
    }
}
