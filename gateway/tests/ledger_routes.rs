//! The ledger's routes through the real gateway: adjust
//! (staff only, `If-Match`), history (staff only, newest first, `Link`
//! pages) and a product as it was (`?at=`).

mod common;

use common::{token, Gateway};
use serde_json::json;
use testkit::Stack;

const SERVICES: [&str; 4] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-adjust",
    "inventory-history",
];

async fn adjust(
    gw: &Gateway,
    product: &str,
    body: &serde_json::Value,
    if_match: Option<&str>,
) -> common::Response {
    let body = body.to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(tag) = if_match {
        headers.push(("If-Match", tag));
    }
    gw.request(
        "POST",
        &format!("/inventory/{product}/adjust"),
        &headers,
        Some(body.as_bytes()),
    )
    .await
}

#[tokio::test]
async fn staff_adjust_with_if_match_and_customers_may_not() {
    let stack = Stack::start(&SERVICES).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let added = gw
        .post(
            "/inventory",
            &json!({"productId": "A", "quantity": 5, "price": 2.0}),
        )
        .await;
    let tag = added.header("etag").unwrap().to_string();

    let counted = adjust(
        &gw,
        "A",
        &json!({"quantity": 4, "reason": "count"}),
        Some(&tag),
    )
    .await;
    assert_eq!(counted.status, 200, "{}", counted.text());
    assert_eq!(counted.json()["quantity"], 4);
    assert_eq!(
        counted.json()["lastChange"]["actor"],
        "staff-1",
        "the principal"
    );
    let new_tag = counted.header("etag").unwrap().to_string();
    assert_ne!(new_tag, tag);

    // The old tag: 412, nothing changed.
    let stale = adjust(
        &gw,
        "A",
        &json!({"delta": -1, "reason": "lost"}),
        Some(&tag),
    )
    .await;
    stale.problem(412);
    assert_eq!(stack.counts("A").await, (4, 0));
    // Validation names the field; below zero is 409; unknown product 404.
    let bad = adjust(&gw, "A", &json!({"delta": -1, "reason": "stolen"}), None).await;
    bad.problem(400);
    assert_eq!(bad.pointers(), ["/reason"]);
    adjust(&gw, "A", &json!({"delta": -5, "reason": "lost"}), None)
        .await
        .problem(409);
    adjust(
        &gw,
        "nope",
        &json!({"delta": 1, "reason": "received"}),
        None,
    )
    .await
    .problem(404);

    // A customer: 403 at the gateway.
    let customer = token("c-1", &["customer"]);
    let body = json!({"delta": 1, "reason": "received"}).to_string();
    let refused = gw
        .request_as(
            Some(&customer),
            "POST",
            "/inventory/A/adjust",
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
        .await;
    refused.problem(403);
    assert_eq!(stack.counts("A").await, (4, 0));
}

#[tokio::test]
async fn history_pages_by_link_and_a_product_as_it_was() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-ledger");
    let gw = Gateway::start(&stack.server, &[]).await;
    let first = gw
        .post(
            "/inventory",
            &json!({"productId": "A", "quantity": 5, "price": 2.0}),
        )
        .await
        .json();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let then = oms_runtime::time::now();
    for delta in [1, 2, 3, 4] {
        let moved = adjust(
            &gw,
            "A",
            &json!({"delta": delta, "reason": "received"}),
            None,
        )
        .await;
        assert_eq!(moved.status, 200, "{}", moved.text());
    }
    stack.quiet_ledger().await;

    // Newest first, two at a time, following Link.
    let mut path = "/inventory/A/history?limit=2".to_string();
    let mut seen = Vec::new();
    loop {
        let page = gw.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let items = page.json();
        seen.extend(
            items
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        let Some(link) = page.header("link") else {
            break;
        };
        let target = link.trim_start_matches('<').split('>').next().unwrap();
        assert!(
            target.starts_with("/inventory/A/history?limit=2&cursor="),
            "{link}"
        );
        path = target.to_string();
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);

    // As it was: the first revision, with its ETag.
    let at = gw
        .get(&format!("/inventory/A?at={}", then.replace(':', "%3A")))
        .await;
    assert_eq!(at.status, 200, "{}", at.text());
    assert_eq!(at.json(), first);
    assert_eq!(
        at.header("etag"),
        Some(format!("\"{}\"", first["revision"]).as_str())
    );
    gw.get("/inventory/A?at=soon").await.problem(400);

    // History is for staff.
    let customer = token("c-1", &["customer"]);
    gw.request_as(Some(&customer), "GET", "/inventory/A/history", &[], None)
        .await
        .problem(403);
    gw.get("/inventory/none/history").await.problem(404);
}
