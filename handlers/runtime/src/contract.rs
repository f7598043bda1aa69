//! The operations of DESIGN §3 as data: one table that the handlers register
//! from, the gateway routes from and OpenAPI is generated from.

/// How an operation is reached over REST.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// `{name}` segments become fields of the request payload.
    pub path: &'static str,
    /// Status of a successful answer.
    pub status: u16,
}

/// One NATS service with one endpoint.
#[derive(Debug)]
pub struct Operation {
    /// Service name, binary name and queue group.
    pub service: &'static str,
    /// Subject = `group.endpoint`; endpoint names may not contain dots.
    pub group: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub route: Option<Route>,
    pub request_schema: &'static str,
    pub response_schema: &'static str,
}

impl Operation {
    pub fn subject(&self) -> String {
        format!("{}.{}", self.group, self.endpoint)
    }
}

macro_rules! schema {
    ($file:literal) => {
        include_str!(concat!("../../../schemas/", $file))
    };
}

const fn route(method: &'static str, path: &'static str, status: u16) -> Option<Route> {
    Some(Route {
        method,
        path,
        status,
    })
}

pub const INVENTORY_ADD_STOCK: Operation = Operation {
    service: "inventory-add-stock",
    group: "inventory",
    endpoint: "add-stock",
    description: "Adds units to a product (creating it) and sets its price",
    route: route("POST", "/inventory", 201),
    request_schema: schema!("inventory.add-stock.request.json"),
    response_schema: schema!("product.json"),
};

pub const INVENTORY_CHECK: Operation = Operation {
    service: "inventory-check",
    group: "inventory",
    endpoint: "check",
    description: "Tells whether every item is in stock, without reserving",
    route: route("POST", "/inventory/check", 200),
    request_schema: schema!("inventory.check.request.json"),
    response_schema: schema!("inventory.check.response.json"),
};

pub const INVENTORY_RESERVE: Operation = Operation {
    service: "inventory-reserve",
    group: "inventory",
    endpoint: "reserve",
    description: "Reserves all items of an order or none; idempotent on orderId",
    route: None,
    request_schema: schema!("inventory.reserve.request.json"),
    response_schema: schema!("reservation.json"),
};

pub const INVENTORY_RELEASE: Operation = Operation {
    service: "inventory-release",
    group: "inventory",
    endpoint: "release",
    description:
        "Returns the stock of a cancelled or never-stored order (operator use); idempotent",
    route: None,
    request_schema: schema!("inventory.settle.request.json"),
    response_schema: schema!("reservation.json"),
};

pub const INVENTORY_COMMIT: Operation = Operation {
    service: "inventory-commit",
    group: "inventory",
    endpoint: "commit",
    description: "Marks a completed order's stock as sold (operator use); idempotent",
    route: None,
    request_schema: schema!("inventory.settle.request.json"),
    response_schema: schema!("reservation.json"),
};

pub const INVENTORY_GET: Operation = Operation {
    service: "inventory-get",
    group: "inventory",
    endpoint: "get",
    description: "One product, now or as it was at a time",
    route: route("GET", "/inventory/{productId}", 200),
    request_schema: schema!("inventory.get.request.json"),
    response_schema: schema!("product.json"),
};

pub const INVENTORY_LIST: Operation = Operation {
    service: "inventory-list",
    group: "inventory",
    endpoint: "list",
    description: "Products in productId order, a page at a time",
    route: route("GET", "/inventory", 200),
    request_schema: schema!("inventory.list.request.json"),
    response_schema: schema!("inventory.list.response.json"),
};

pub const INVENTORY_ADJUST: Operation = Operation {
    service: "inventory-adjust",
    group: "inventory",
    endpoint: "adjust",
    description: "Sets or changes a product's available count, saying why (staff)",
    route: route("POST", "/inventory/{productId}/adjust", 200),
    request_schema: schema!("inventory.adjust.request.json"),
    response_schema: schema!("product.json"),
};

pub const INVENTORY_HISTORY: Operation = Operation {
    service: "inventory-history",
    group: "inventory",
    endpoint: "history",
    description: "A product's ledger entries, newest first, a page at a time (staff)",
    route: route("GET", "/inventory/{productId}/history", 200),
    request_schema: schema!("inventory.history.request.json"),
    response_schema: schema!("inventory.history.response.json"),
};

pub const ORDERS_CREATE: Operation = Operation {
    service: "orders-create",
    group: "orders",
    endpoint: "create",
    description: "Reserves stock and stores a PENDING order",
    route: route("POST", "/orders", 201),
    request_schema: schema!("orders.create.request.json"),
    response_schema: schema!("order.json"),
};

pub const ORDERS_UPDATE_STATUS: Operation = Operation {
    service: "orders-update-status",
    group: "orders",
    endpoint: "update-status",
    description: "Moves an order through PENDING, CONFIRMED, COMPLETED or CANCELLED",
    route: route("PUT", "/orders/{id}/status", 200),
    request_schema: schema!("orders.update-status.request.json"),
    response_schema: schema!("order.json"),
};

pub const ORDERS_GET: Operation = Operation {
    service: "orders-get",
    group: "orders",
    endpoint: "get",
    description: "One order",
    route: route("GET", "/orders/{id}", 200),
    request_schema: schema!("orders.get.request.json"),
    response_schema: schema!("order.json"),
};

pub const ORDERS_LIST: Operation = Operation {
    service: "orders-list",
    group: "orders",
    endpoint: "list",
    description: "Orders, newest first, filtered by status and customerId",
    route: route("GET", "/orders", 200),
    request_schema: schema!("orders.list.request.json"),
    response_schema: schema!("orders.list.response.json"),
};

/// Every request/reply operation, in the order the README lists them.
pub const OPERATIONS: &[&Operation] = &[
    &INVENTORY_ADD_STOCK,
    &INVENTORY_CHECK,
    &INVENTORY_RESERVE,
    &INVENTORY_RELEASE,
    &INVENTORY_COMMIT,
    &INVENTORY_GET,
    &INVENTORY_LIST,
    &INVENTORY_ADJUST,
    &INVENTORY_HISTORY,
    &ORDERS_CREATE,
    &ORDERS_UPDATE_STATUS,
    &ORDERS_GET,
    &ORDERS_LIST,
];

/// The problem body every error reply carries.
pub const PROBLEM_SCHEMA: &str = schema!("problem.json");
