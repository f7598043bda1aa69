//! Versions: every Product and Order reply names its KV
//! revision, and a change decided on a revision (`expectedRevision`) is
//! refused with 412, changing nothing, once that revision is not current.

use serde_json::{json, Value};
use testkit::{request, Stack};

const SERVICES: [&str; 8] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-reserve",
    "inventory-release",
    "inventory-commit",
    "orders-create",
    "orders-get",
    "orders-update-status",
];

fn revision(body: &Value) -> u64 {
    body["revision"]
        .as_u64()
        .unwrap_or_else(|| panic!("no revision in {body}"))
}

/// The KV revision of a key, read from the bucket itself.
async fn stored_revision(stack: &Stack, key: &str) -> u64 {
    let kv = async_nats::jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await
        .unwrap();
    kv.entry(key).await.unwrap().expect("the key").revision
}

#[tokio::test]
async fn every_reply_names_the_revision_it_shows() {
    let stack = Stack::start(&SERVICES).await;
    let added = stack.add_stock("A", 10, 1.5).await;
    assert_eq!(revision(&added), stored_revision(&stack, "product.A").await);
    let got = stack
        .request("inventory.get", &json!({"productId": "A"}))
        .await;
    assert_eq!(got.body, added, "the same value at the same revision");

    // With a requestId the product is written in a batch beside the
    // request's record; a retry answers the same revision.
    let keyed = json!({"productId": "A", "quantity": 2, "price": 1.5, "requestId": "r-1"});
    let first = stack.request("inventory.add-stock", &keyed).await;
    assert_eq!(
        revision(&first.body),
        stored_revision(&stack, "product.A").await
    );
    let again = stack.request("inventory.add-stock", &keyed).await;
    assert_eq!(again.body, first.body);

    let created = stack
        .request(
            "orders.create",
            &json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}], "idempotencyKey": "k-1"}),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let order_revision = revision(&created.body);
    assert_eq!(
        order_revision,
        stored_revision(&stack, &format!("order.{id}")).await
    );
    let got = stack.request("orders.get", &json!({"id": id})).await;
    assert_eq!(got.body, created.body);
    // The create's retry finds the order and answers it at its revision.
    let retried = stack
        .request(
            "orders.create",
            &json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}], "idempotencyKey": "k-1"}),
        )
        .await;
    assert_eq!(retried.body, created.body);

    // Each step names the revision it wrote: the CAS of CONFIRMED and the
    // batch of COMPLETED (order and product together).
    for status in ["CONFIRMED", "COMPLETED"] {
        let moved = stack
            .request("orders.update-status", &json!({"id": id, "status": status}))
            .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);
        assert_eq!(
            revision(&moved.body),
            stored_revision(&stack, &format!("order.{id}")).await
        );
        let got = stack.request("orders.get", &json!({"id": id})).await;
        assert_eq!(got.body, moved.body);
    }
    let product = stack
        .request("inventory.get", &json!({"productId": "A"}))
        .await;
    assert_eq!(
        revision(&product.body),
        stored_revision(&stack, "product.A").await
    );
}

#[tokio::test]
async fn a_stale_expected_revision_is_412_and_changes_nothing() {
    let stack = Stack::start(&SERVICES).await;
    stack.add_stock("A", 10, 1.0).await;
    let created = stack
        .request(
            "orders.create",
            &json!({"customerId": "c", "items": [{"productId": "A", "quantity": 2}]}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let read_at = revision(&created.body);
    let confirmed = stack
        .request(
            "orders.update-status",
            &json!({"id": id, "status": "CONFIRMED", "expectedRevision": read_at}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let now_at = revision(&confirmed.body);
    assert!(now_at > read_at);

    // Decided on the old revision: every status, even the current one
    // (a precondition is checked first), is refused and nothing moves.
    let before = stack.snapshot().await;
    for status in ["CONFIRMED", "CANCELLED", "COMPLETED", "PENDING"] {
        let stale = stack
            .request(
                "orders.update-status",
                &json!({"id": id, "status": status, "expectedRevision": read_at}),
            )
            .await;
        assert_eq!(stale.status, 412, "{status}: {:?}", stale.body);
        assert_eq!(stale.body["type"], "/problems/precondition-failed");
        assert_eq!(
            stale
                .headers
                .get("Nats-Service-Error-Code")
                .unwrap()
                .as_str(),
            "412"
        );
    }
    assert_eq!(stack.snapshot().await, before, "nothing changed");
    assert_eq!(stack.counts("A").await, (8, 2));

    // The current revision goes through the settle, which checks it again
    // in the write.
    let cancelled = stack
        .request(
            "orders.update-status",
            &json!({"id": id, "status": "CANCELLED", "expectedRevision": now_at}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    assert_eq!(stack.counts("A").await, (10, 0));

    // inventory.release / commit name it too.
    let stale = stack
        .request(
            "inventory.release",
            &json!({"orderId": "nope", "expectedRevision": 1}),
        )
        .await;
    assert_eq!(stale.status, 404);
    stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "hold-1", "items": [{"productId": "A", "quantity": 1}]}),
        )
        .await;
    let stale = stack
        .request(
            "inventory.release",
            &json!({"orderId": "hold-1", "expectedRevision": 1}),
        )
        .await;
    assert_eq!(stale.status, 412, "{:?}", stale.body);
    assert_eq!(stack.counts("A").await, (9, 1), "the hold stays");
}

#[tokio::test]
async fn of_two_updates_decided_on_one_revision_one_wins_and_one_gets_412() {
    let stack = Stack::start(&SERVICES).await;
    stack.add_stock("A", 100, 1.0).await;
    for round in 0..10 {
        let created = stack
            .request(
                "orders.create",
                &json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}]}),
            )
            .await;
        let id = created.body["id"].as_str().unwrap().to_string();
        let at = revision(&created.body);
        // CONFIRMED is a compare-and-set on the order, CANCELLED a batch
        // through inventory.release: different paths, one check.
        let racers: Vec<_> = ["CONFIRMED", "CANCELLED"]
            .into_iter()
            .map(|status| {
                let client = stack.client.clone();
                let body = json!({"id": id, "status": status, "expectedRevision": at});
                tokio::spawn(async move {
                    let reply = request(&client, "orders.update-status", &body).await;
                    (status, reply.status)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.unwrap());
        }
        let winners: Vec<_> = outcomes.iter().filter(|o| o.1 == 200).collect();
        let losers: Vec<_> = outcomes.iter().filter(|o| o.1 == 412).collect();
        assert_eq!(
            (winners.len(), losers.len()),
            (1, 1),
            "round {round}: {outcomes:?}"
        );
        let stored = stack.request("orders.get", &json!({"id": id})).await;
        assert_eq!(stored.body["status"], winners[0].0, "round {round}");
        assert!(revision(&stored.body) > at, "the winner wrote");
    }
    // Ten orders, each either held (confirmed) or released (cancelled).
    let (quantity, reserved) = stack.counts("A").await;
    assert_eq!(quantity + reserved, 100);
}
