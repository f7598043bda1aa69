//! `inventory.adjust`: staff set or move a product's available
//! count, saying why; never below zero; a stale `expectedRevision` is a 412;
//! bad input is a precise 400 and changes nothing.

use serde_json::{json, Value};
use testkit::{request, request_raw, Reply, Stack};

const SERVICES: [&str; 3] = ["inventory-add-stock", "inventory-get", "inventory-adjust"];

async fn adjust(stack: &Stack, body: Value) -> Reply {
    stack.request("inventory.adjust", &body).await
}

#[tokio::test]
async fn adjustments_set_or_move_the_available_count_and_say_why() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-ledger");
    stack.add_stock("A", 10, 1.0).await;
    let counted = adjust(
        &stack,
        json!({"productId": "A", "quantity": 8, "reason": "count", "note": "shelf count", "lowStockThreshold": 3}),
    )
    .await;
    assert_eq!(counted.status, 200, "{:?}", counted.body);
    assert_eq!(counted.body["quantity"], 8);
    assert_eq!(counted.body["lowStockThreshold"], 3);
    assert_eq!(
        counted.body["lastChange"],
        json!({"seq": 2, "reason": "count", "note": "shelf count", "actor": "inventory-adjust", "quantityDelta": -2, "reservedDelta": 0})
    );
    let got = stack
        .request("inventory.get", &json!({"productId": "A"}))
        .await;
    assert_eq!(got.body, counted.body, "the reply is the stored product");

    let damaged = adjust(
        &stack,
        json!({"productId": "A", "delta": -8, "reason": "damaged"}),
    )
    .await;
    assert_eq!(damaged.status, 200, "{:?}", damaged.body);
    assert_eq!(damaged.body["quantity"], 0);
    assert_eq!(damaged.body["lowStockThreshold"], 3, "kept");
    let received = adjust(
        &stack,
        json!({"productId": "A", "delta": 5, "reason": "received"}),
    )
    .await;
    assert_eq!(received.body["quantity"], 5);

    let ledger = stack.quiet_ledger().await;
    let reasons: Vec<_> = ledger
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap(),
                e["quantityDelta"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("add-stock", 10),
            ("count", -2),
            ("damaged", -8),
            ("received", 5)
        ]
    );
}

#[tokio::test]
async fn bad_adjustments_are_refused_precisely_and_change_nothing() {
    let stack = Stack::start(&SERVICES).await;
    stack.add_stock("A", 3, 1.0).await;
    let before = stack.snapshot().await;
    let cases: [(Value, u16, &[&str]); 10] = [
        (
            json!({"productId": "A", "delta": 1, "reason": "stolen"}),
            400,
            &["/reason"],
        ),
        (json!({"productId": "A", "delta": 1}), 400, &["/reason"]),
        (
            json!({"productId": "A", "quantity": 1, "delta": 1, "reason": "count"}),
            400,
            &["/quantity", "/delta"],
        ),
        (
            json!({"productId": "A", "reason": "count"}),
            400,
            &["/quantity", "/delta"],
        ),
        (
            json!({"productId": "A", "delta": 1.5, "reason": "count"}),
            400,
            &["/delta"],
        ),
        (
            json!({"productId": "A", "quantity": -1, "reason": "count"}),
            400,
            &["/quantity"],
        ),
        (
            json!({"productId": "A", "quantity": "7", "reason": "count"}),
            400,
            &["/quantity"],
        ),
        (
            json!({"productId": "A", "delta": 1, "reason": "count", "colour": "red"}),
            400,
            &["/colour"],
        ),
        (
            json!({"productId": "A", "delta": -4, "reason": "lost"}),
            409,
            &[],
        ),
        (
            json!({"productId": "nope", "delta": 1, "reason": "received"}),
            404,
            &[],
        ),
    ];
    for (body, status, pointers) in cases {
        let reply = adjust(&stack, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        assert_eq!(reply.pointers(), pointers, "{body}");
    }
    let negative = adjust(
        &stack,
        json!({"productId": "A", "delta": -4, "reason": "lost"}),
    )
    .await;
    assert_eq!(negative.body["type"], "/problems/negative-stock");
    assert_eq!(negative.body["available"], 3);
    assert_eq!(
        request_raw(&stack.client, "inventory.adjust", "{nope")
            .await
            .status,
        400
    );
    // A customer may not adjust (defence in depth behind the gateway).
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Oms-Principal", "c-1");
    headers.insert("Oms-Roles", "customer");
    let refused = stack
        .client
        .request_with_headers(
            "inventory.adjust",
            headers,
            json!({"productId": "A", "delta": 1, "reason": "count"})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    let code = refused.headers.unwrap();
    assert_eq!(code.get("Nats-Service-Error-Code").unwrap().as_str(), "403");
    assert_eq!(stack.snapshot().await, before, "nothing changed");
}

#[tokio::test]
async fn a_stale_revision_is_412_and_of_two_concurrent_adjusts_on_one_revision_one_wins() {
    let stack = Stack::start(&SERVICES).await;
    let added = stack.add_stock("A", 100, 1.0).await;
    let at = added["revision"].as_u64().unwrap();
    let moved = adjust(
        &stack,
        json!({"productId": "A", "delta": -1, "reason": "lost", "expectedRevision": at}),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let before = stack.snapshot().await;
    // The revision it was decided on is gone: a retry is refused too.
    let stale = adjust(
        &stack,
        json!({"productId": "A", "delta": -1, "reason": "lost", "expectedRevision": at}),
    )
    .await;
    assert_eq!(stale.status, 412, "{:?}", stale.body);
    assert_eq!(stale.body["type"], "/problems/precondition-failed");
    assert_eq!(stack.snapshot().await, before);
    assert_eq!(stack.counts("A").await, (99, 0));

    for round in 0..10 {
        let at = stack
            .request("inventory.get", &json!({"productId": "A"}))
            .await
            .body["revision"]
            .as_u64()
            .unwrap();
        let racers: Vec<_> = [json!({"quantity": 50}), json!({"delta": -7})]
            .into_iter()
            .map(|mut body| {
                body["productId"] = "A".into();
                body["reason"] = "count".into();
                body["expectedRevision"] = at.into();
                let client = stack.client.clone();
                tokio::spawn(
                    async move { request(&client, "inventory.adjust", &body).await.status },
                )
            })
            .collect();
        let mut statuses = Vec::new();
        for racer in racers {
            statuses.push(racer.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, [200, 412], "round {round}");
    }
}
