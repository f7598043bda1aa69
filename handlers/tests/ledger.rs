//! The ledger (DESIGN §11): every write that changes a product records why
//! (`lastChange`, in the same write), and `inventory-ledger` derives one
//! entry per product revision from that, exactly once.

use serde_json::{json, Value};
use testkit::{eventually, Reply, Stack};

const SERVICES: [&str; 9] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-reserve",
    "inventory-release",
    "inventory-commit",
    "orders-create",
    "orders-get",
    "orders-update-status",
    "inventory-check",
];

/// A request as the gateway sends it for `principal` (a staff member).
async fn as_principal(stack: &Stack, principal: &str, subject: &str, body: &Value) -> Reply {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Oms-Principal", principal);
    headers.insert("Oms-Roles", "staff");
    let message = stack
        .client
        .request_with_headers(subject.to_string(), headers, body.to_string().into())
        .await
        .expect("a reply");
    let headers = message.headers.clone().unwrap_or_default();
    let status = headers
        .get("Nats-Service-Error-Code")
        .map_or(200, |v| v.as_str().parse().unwrap());
    Reply {
        status,
        body: serde_json::from_slice(&message.payload).unwrap(),
        headers,
    }
}

async fn last_change(stack: &Stack, product: &str) -> Value {
    let got = stack
        .request("inventory.get", &json!({"productId": product}))
        .await;
    got.body["lastChange"].clone()
}

#[tokio::test]
async fn every_write_records_why_and_who() {
    let mut stack = Stack::start_with_env(&SERVICES, &[("OMS_HOLD_TTL", "1")]).await;
    stack.spawn("inventory-holds");

    // add-stock: by the principal, ref the requestId.
    let added = as_principal(
        &stack,
        "alice",
        "inventory.add-stock",
        &json!({"productId": "A", "quantity": 10, "price": 1.0, "requestId": "restock-1"}),
    )
    .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(
        added.body["lastChange"],
        json!({"seq": 1, "reason": "add-stock", "ref": "restock-1", "actor": "alice", "quantityDelta": 10, "reservedDelta": 0})
    );
    // Without a principal: the handler's NATS user.
    stack.add_stock("A", 5, 1.0).await;
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 2, "reason": "add-stock", "actor": "inventory-add-stock", "quantityDelta": 5, "reservedDelta": 0})
    );

    // An order: reserve names the order and the principal that created it
    // (orders-create passes it on as Oms-Actor).
    let created = as_principal(
        &stack,
        "bob",
        "orders.create",
        &json!({"customerId": "c-1", "items": [{"productId": "A", "quantity": 3}]}),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 3, "reason": "reserve", "ref": id, "actor": "bob", "quantityDelta": -3, "reservedDelta": 3})
    );
    // Confirmed (no stock moves, the product keeps its change), then sold.
    for status in ["CONFIRMED", "COMPLETED"] {
        let moved = as_principal(
            &stack,
            "carol",
            "orders.update-status",
            &json!({"id": id, "status": status}),
        )
        .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);
    }
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 4, "reason": "sell", "ref": id, "actor": "carol", "quantityDelta": 0, "reservedDelta": -3})
    );

    // Cancelled: released.
    let second = stack
        .request(
            "orders.create",
            &json!({"customerId": "c-1", "items": [{"productId": "A", "quantity": 2}]}),
        )
        .await;
    let second = second.body["id"].as_str().unwrap().to_string();
    stack
        .request(
            "orders.update-status",
            &json!({"id": second, "status": "CANCELLED"}),
        )
        .await;
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 6, "reason": "release", "ref": second, "actor": "orders-update-status", "quantityDelta": 2, "reservedDelta": -2})
    );

    // A hold without an order runs out: expire, by the holds worker.
    stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "hold-1", "items": [{"productId": "A", "quantity": 4}]}),
        )
        .await;
    eventually(10, "the hold expired", || async {
        last_change(&stack, "A").await["reason"] == "expire"
    })
    .await;
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 8, "reason": "expire", "ref": "hold-1", "actor": "inventory-holds", "quantityDelta": 4, "reservedDelta": -4})
    );
    assert_eq!(stack.counts("A").await, (12, 0));

    // `expire` is for releases only.
    let refused = stack
        .request(
            "inventory.commit",
            &json!({"orderId": second, "expire": true}),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.pointers(), ["/expire"]);
}
