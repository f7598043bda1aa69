//! Unpaid orders expire: with `OMS_PENDING_TTL` a PENDING order
//! older than it becomes EXPIRED, its stock released in the same write and
//! an event following; a confirmed one is untouched; no client can set
//! EXPIRED; without a TTL nothing expires.

use serde_json::json;
use testkit::{eventually, Stack};

const SERVICES: [&str; 7] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-reserve",
    "inventory-release",
    "orders-create",
    "orders-get",
    "orders-update-status",
];

async fn create(stack: &Stack, quantity: u64) -> String {
    let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": quantity}]});
    let created = stack.request("orders.create", &body).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

async fn status(stack: &Stack, id: &str) -> String {
    let got = stack.request("orders.get", &json!({"id": id})).await;
    got.body["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_unpaid_order_expires_with_its_stock_and_a_confirmed_one_stays() {
    let mut stack = Stack::start_with_env(&SERVICES, &[("OMS_PENDING_TTL", "1")]).await;
    stack.spawn("inventory-holds");
    stack.spawn("orders-events");
    stack.spawn("inventory-ledger");
    stack.add_stock("A", 10, 1.0).await;
    let unpaid = create(&stack, 3).await;
    let paid = create(&stack, 2).await;
    let confirmed = stack
        .request(
            "orders.update-status",
            &json!({"id": paid, "status": "CONFIRMED"}),
        )
        .await;
    assert_eq!(confirmed.status, 200);
    assert_eq!(stack.counts("A").await, (5, 5));

    eventually(15, "the unpaid order expired", || async {
        status(&stack, &unpaid).await == "EXPIRED"
    })
    .await;
    // Its stock came back in the same write; the confirmed one holds on.
    assert_eq!(stack.counts("A").await, (8, 2));
    assert_eq!(status(&stack, &paid).await, "CONFIRMED");
    let order = stack.request("orders.get", &json!({"id": unpaid})).await;
    assert_eq!(order.body["previousStatus"], "PENDING");

    // EXPIRED is final, and no client may set it.
    for target in ["CANCELLED", "CONFIRMED"] {
        let refused = stack
            .request(
                "orders.update-status",
                &json!({"id": unpaid, "status": target}),
            )
            .await;
        assert_eq!(refused.status, 409, "{target}: {:?}", refused.body);
    }
    let refused = stack
        .request(
            "orders.update-status",
            &json!({"id": paid, "status": "EXPIRED"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.pointers(), ["/status"]);
    // Nor expire a confirmed order through inventory.release.
    let refused = stack
        .request(
            "inventory.release",
            &json!({"orderId": paid, "expire": true}),
        )
        .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(status(&stack, &paid).await, "CONFIRMED");

    // The event follows, and the ledger says why.
    let events = stack.quiet_events().await;
    let expired: Vec<_> = events
        .iter()
        .filter(|e| e.2["orderId"] == unpaid.as_str())
        .map(|e| (e.0.as_str(), e.2["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        expired,
        [
            ("events.orders.created", "PENDING"),
            ("events.orders.status-updated", "EXPIRED")
        ]
    );
    let ledger = stack.quiet_ledger().await;
    let last = ledger.last().unwrap();
    assert_eq!(
        (&last["reason"], &last["ref"], &last["actor"]),
        (&json!("expire"), &json!(unpaid), &json!("inventory-holds"))
    );
    assert_eq!(
        (&last["quantityDelta"], &last["reservedDelta"]),
        (&json!(3), &json!(-3))
    );
}

#[tokio::test]
async fn without_a_pending_ttl_nothing_expires() {
    let mut stack = Stack::start_with_env(&SERVICES, &[("OMS_HOLD_TTL", "1")]).await;
    stack.spawn("inventory-holds");
    stack.add_stock("A", 10, 1.0).await;
    let order = create(&stack, 3).await;
    // A hold made after the order, released by the same worker after its
    // 1 s: the worker ran past the order's time, and left it alone.
    stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "hold-1", "items": [{"productId": "A", "quantity": 1}]}),
        )
        .await;
    eventually(15, "the hold expired", || async {
        stack.counts("A").await == (7, 3)
    })
    .await;
    assert_eq!(status(&stack, &order).await, "PENDING");
}
