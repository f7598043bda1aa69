//! The principal on NATS: a request that names a principal (`Oms-Principal`,
//! `Oms-Roles`, as the gateway forwards them) is held to that principal's
//! role by the handlers themselves, whatever NATS user carried it.

use serde_json::{json, Value};
use testkit::{Reply, Stack};

const SERVICES: [&str; 9] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-reserve",
    "inventory-release",
    "orders-create",
    "orders-get",
    "orders-list",
    "orders-update-status",
    "inventory-commit",
];

/// A request as `who` (`None`: a NATS user, no principal).
async fn ask(stack: &Stack, who: Option<(&str, &str)>, subject: &str, body: Value) -> Reply {
    let mut headers = async_nats::HeaderMap::new();
    if let Some((sub, roles)) = who {
        headers.insert("Oms-Principal", sub);
        headers.insert("Oms-Roles", roles);
    }
    let message = stack
        .client
        .request_with_headers(subject.to_string(), headers, body.to_string().into())
        .await
        .expect("a reply");
    let status = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
        .map_or(200, |v| v.as_str().parse().unwrap());
    Reply {
        status,
        body: serde_json::from_slice(&message.payload).unwrap(),
        headers: message.headers.unwrap_or_default(),
    }
}

const ALICE: Option<(&str, &str)> = Some(("alice", "customer"));
const BOB: Option<(&str, &str)> = Some(("bob", "customer"));
const STAFF: Option<(&str, &str)> = Some(("sam", "staff"));

#[tokio::test]
async fn a_customer_principal_reaches_only_its_own_orders() {
    let stack = Stack::start(&SERVICES).await;
    stack.add_stock("A", 10, 2.0).await;
    let item = json!([{"productId": "A", "quantity": 1}]);

    // Staff-only operations refuse a customer and change nothing.
    let before = stack.snapshot().await;
    let add = json!({"productId": "A", "quantity": 5, "price": 0});
    assert_eq!(
        ask(&stack, ALICE, "inventory.add-stock", add).await.status,
        403
    );
    let hold = json!({"orderId": "h1", "items": item});
    assert_eq!(
        ask(&stack, ALICE, "inventory.reserve", hold).await.status,
        403
    );
    let other = json!({"customerId": "bob", "items": item});
    assert_eq!(ask(&stack, ALICE, "orders.create", other).await.status, 403);
    assert_eq!(stack.snapshot().await, before, "refusals change nothing");
    let read = ask(&stack, ALICE, "inventory.get", json!({"productId": "A"})).await;
    assert_eq!(read.status, 200);

    // A customer orders for itself; staff and NATS users must name one.
    let mine = ask(&stack, ALICE, "orders.create", json!({"items": item})).await;
    assert_eq!(mine.status, 200, "{:?}", mine.body);
    assert_eq!(mine.body["customerId"], "alice");
    let id = mine.body["id"].as_str().unwrap().to_string();
    let unnamed = ask(&stack, STAFF, "orders.create", json!({"items": item})).await;
    assert_eq!(unnamed.status, 400);
    let named = json!({"customerId": "bob", "items": item});
    assert_eq!(ask(&stack, STAFF, "orders.create", named).await.status, 200);

    // Another's order does not exist for a customer; staff sees it.
    let get = json!({"id": id});
    assert_eq!(
        ask(&stack, BOB, "orders.get", get.clone()).await.status,
        404
    );
    assert_eq!(
        ask(&stack, ALICE, "orders.get", get.clone()).await.status,
        200
    );
    assert_eq!(
        ask(&stack, STAFF, "orders.get", get.clone()).await.status,
        200
    );
    assert_eq!(ask(&stack, None, "orders.get", get).await.status, 200);

    // Lists: a customer's own only.
    testkit::eventually(10, "both orders indexed", || async {
        let all = ask(&stack, STAFF, "orders.list", json!({})).await;
        all.body["items"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let bobs = ask(&stack, BOB, "orders.list", json!({})).await;
    let owners: Vec<_> = bobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["customerId"].clone())
        .collect();
    assert_eq!(owners, [json!("bob")]);
    let spying = ask(&stack, BOB, "orders.list", json!({"customerId": "alice"})).await;
    assert_eq!(spying.status, 403);

    // Status: a customer cancels its own order, and does nothing else.
    let cancel = json!({"id": id, "status": "CANCELLED"});
    assert_eq!(
        ask(&stack, BOB, "orders.update-status", cancel.clone())
            .await
            .status,
        404
    );
    let confirm = json!({"id": id, "status": "CONFIRMED"});
    assert_eq!(
        ask(&stack, ALICE, "orders.update-status", confirm)
            .await
            .status,
        403
    );
    let cancelled = ask(&stack, ALICE, "orders.update-status", cancel).await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CANCELLED");
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_its_principal() {
    let stack = Stack::start(&SERVICES).await;
    stack.add_stock("A", 10, 2.0).await;
    let body = json!({"items": [{"productId": "A", "quantity": 1}], "idempotencyKey": "cart-1"});
    let alice = ask(&stack, ALICE, "orders.create", body.clone()).await;
    let bob = ask(&stack, BOB, "orders.create", body.clone()).await;
    let again = ask(&stack, ALICE, "orders.create", body).await;
    assert_eq!((alice.status, bob.status, again.status), (200, 200, 200));
    assert_ne!(
        alice.body["id"], bob.body["id"],
        "two principals, two orders"
    );
    assert_eq!(again.body, alice.body, "the same principal, the same order");
    let stock = ask(&stack, None, "inventory.get", json!({"productId": "A"})).await;
    assert_eq!(stock.body["reserved"], 2);
}

#[tokio::test]
async fn a_request_id_belongs_to_its_principal() {
    let stack = Stack::start(&SERVICES).await;
    let add = |quantity: u64| json!({"productId": "R", "quantity": quantity, "price": 1.0, "requestId": "restock-1"});
    let kim = Some(("kim", "staff"));
    let first = ask(&stack, STAFF, "inventory.add-stock", add(2)).await;
    let retry = ask(&stack, STAFF, "inventory.add-stock", add(2)).await;
    assert_eq!((first.status, retry.status), (200, 200));
    assert_eq!(retry.body, first.body, "a retry is applied once");
    // Another principal's, and a NATS user's, same id are their own.
    let other = ask(&stack, kim, "inventory.add-stock", add(5)).await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    let plain = ask(&stack, None, "inventory.add-stock", add(1)).await;
    assert_eq!(plain.status, 200, "{:?}", plain.body);
    assert_eq!(plain.body["quantity"], 8);
    // Still sam's: another body under it is refused, and nothing changes.
    let reused = ask(&stack, STAFF, "inventory.add-stock", add(3)).await;
    assert_eq!(reused.status, 422, "{:?}", reused.body);
    assert_eq!(stack.counts("R").await, (8, 0));
}
