//! The ledger's routes through the real gateway (DESIGN §11): adjust
//! (staff only, `If-Match`), history (staff only, newest first, `Link`
//! pages) and a product as it was (`?at=`).

mod common;

use common::{token, Gateway};
use serde_json::json;
use testkit::Stack;

const SERVICES: [&str; 3] = ["inventory-add-stock", "inventory-get", "inventory-adjust"];

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
