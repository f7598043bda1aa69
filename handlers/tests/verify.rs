//! `oms-verify`: exit 0 when the counts are their ledger's sum
//! and `reserved` is what open orders and holds hold; exit 1 naming the
//! product when a count is changed behind the handlers' back. (It also ends
//! the crash storm, `crash_storm.rs`.)

use serde_json::json;
use testkit::Stack;

const SERVICES: [&str; 8] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-adjust",
    "inventory-reserve",
    "inventory-release",
    "orders-create",
    "orders-get",
    "orders-update-status",
];

#[tokio::test]
async fn balanced_books_pass_and_a_count_corrupted_in_kv_fails_naming_the_product() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-ledger");
    for product in ["A", "B", "C"] {
        stack.add_stock(product, 10, 1.0).await;
    }
    let order = |product: &str| json!({"customerId": "c", "items": [{"productId": product, "quantity": 2}]});
    let kept = stack.request("orders.create", &order("A")).await;
    assert_eq!(kept.status, 200);
    let cancelled = stack.request("orders.create", &order("B")).await;
    let id = cancelled.body["id"].as_str().unwrap();
    stack
        .request(
            "orders.update-status",
            &json!({"id": id, "status": "CANCELLED"}),
        )
        .await;
    stack
        .request(
            "inventory.adjust",
            &json!({"productId": "C", "delta": -3, "reason": "damaged"}),
        )
        .await;
    stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "hold-1", "items": [{"productId": "C", "quantity": 1}]}),
        )
        .await;
    stack.quiet_ledger().await;

    let (code, output) = stack.verify().await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(
            "oms-verify: 3 products, 8 ledger entries, 2 orders, 1 holds: the books balance"
        ),
        "{output}"
    );

    // Someone edits B's count in KV (the CLI's `nats kv put`), keeping the
    // rest of the record as it was.
    let kv = async_nats::jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await
        .unwrap();
    let stored = kv.get("product.B").await.unwrap().unwrap();
    let mut product: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    product["quantity"] = 12.into();
    kv.put("product.B", product.to_string().into())
        .await
        .unwrap();
    stack.quiet_ledger().await;

    let (code, output) = stack.verify().await;
    assert_eq!(code, 1, "{output}");
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("product "))
        .collect();
    assert!(!lines.is_empty(), "{output}");
    assert!(
        lines.iter().all(|l| l.starts_with("product B: ")),
        "only B: {lines:#?}"
    );
    assert!(
        // The copied change is counted again: the sum cannot match.
        lines
            .iter()
            .any(|l| l.contains("quantity 12, reserved 0, but its 4 ledger entries sum to 12, -2")),
        "{lines:#?}"
    );
    assert!(output.contains("1 products disagree"), "{output}");

    // reserved edited: the open orders say otherwise.
    let stored = kv.get("product.A").await.unwrap().unwrap();
    let mut product: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    product["reserved"] = 0.into();
    product["quantity"] = 10.into();
    product["lastChange"] = serde_json::Value::Null;
    product.as_object_mut().unwrap().remove("lastChange");
    kv.put("product.A", product.to_string().into())
        .await
        .unwrap();
    stack.quiet_ledger().await;
    let (code, output) = stack.verify().await;
    assert_eq!(code, 1);
    assert!(
        output.contains("product A: reserved 0, but its open orders and holds hold 2"),
        "{output}"
    );
    assert!(output.contains("2 products disagree"), "{output}");
}

#[tokio::test]
async fn a_stopped_ledger_deriver_is_reported_not_waited_for_forever() {
    let mut stack = Stack::start(&SERVICES).await;
    let deriver = stack.spawn("inventory-ledger");
    stack.add_stock("A", 10, 1.0).await;
    stack.quiet_ledger().await;
    stack.procs[deriver].kill();
    stack.add_stock("A", 1, 1.0).await;
    let (code, output) = stack.verify().await;
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("is inventory-ledger running?"), "{output}");
}
