//! Versions over REST: `ETag: "<revision>"` on what a reply
//! shows, `If-Match` on a change; a stale one is a 412 and changes nothing.

mod common;

use common::Gateway;
use serde_json::json;
use testkit::Stack;

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

fn tag(revision: &serde_json::Value) -> String {
    format!("\"{}\"", revision.as_u64().expect("a revision"))
}

async fn put_status(
    gw: &Gateway,
    id: &str,
    status: &str,
    if_match: Option<&str>,
) -> common::Response {
    let body = json!({"status": status}).to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(tag) = if_match {
        headers.push(("If-Match", tag));
    }
    gw.request(
        "PUT",
        &format!("/orders/{id}/status"),
        &headers,
        Some(body.as_bytes()),
    )
    .await
}

#[tokio::test]
async fn gets_carry_an_etag_and_a_stale_if_match_is_412() {
    let stack = Stack::start(&SERVICES).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let added = gw
        .post(
            "/inventory",
            &json!({"productId": "A", "quantity": 5, "price": 2.0}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text());
    let product = gw.get("/inventory/A").await;
    assert_eq!(product.status, 200);
    let product_tag = tag(&product.json()["revision"]);
    assert_eq!(product.header("etag"), Some(product_tag.as_str()));
    assert_eq!(added.header("etag"), Some(product_tag.as_str()));

    let created = gw
        .post(
            "/orders",
            &json!({"customerId": "c", "items": [{"productId": "A", "quantity": 2}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let got = gw.get(&format!("/orders/{id}")).await;
    let first = got.header("etag").expect("an ETag").to_string();
    assert_eq!(first, tag(&got.json()["revision"]));
    assert_eq!(created.header("etag"), Some(first.as_str()));

    // The current tag: the change goes through and answers the new one.
    let confirmed = put_status(&gw, &id, "CONFIRMED", Some(&first)).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    let second = confirmed.header("etag").expect("an ETag").to_string();
    assert_ne!(second, first);
    assert_eq!(
        gw.get(&format!("/orders/{id}")).await.header("etag"),
        Some(second.as_str())
    );

    // The old one: 412, and nothing changed (order, stock, revision).
    let before = stack.snapshot().await;
    let stale = put_status(&gw, &id, "CANCELLED", Some(&first)).await;
    let problem = stale.problem(412);
    assert_eq!(problem["type"], "/problems/precondition-failed");
    // A weak tag never matches (strong comparison), a tag that is not a
    // revision neither: 412 without asking the handler.
    for never in ["W/\"1\"", "\"latest\""] {
        put_status(&gw, &id, "CANCELLED", Some(never))
            .await
            .problem(412);
    }
    assert_eq!(stack.snapshot().await, before);
    let order = gw.get(&format!("/orders/{id}")).await.json();
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(stack.counts("A").await, (3, 2));

    // Not a list of entity tags, or two revisions at once: 400.
    for bad in ["12", "\"1\", \"2\""] {
        let refused = put_status(&gw, &id, "CANCELLED", Some(bad)).await;
        refused.problem(400);
        assert_eq!(refused.pointers(), ["/expectedRevision"]);
    }
    // `*`, or no If-Match at all: no precondition.
    let any = put_status(&gw, &id, "CANCELLED", Some("*")).await;
    assert_eq!(any.status, 200, "{}", any.text());
    assert_eq!(any.json()["status"], "CANCELLED");
    assert_eq!(stack.counts("A").await, (5, 0));

    // OpenAPI says so.
    let doc = gw.get("/openapi.json").await.json();
    let put = &doc["paths"]["/orders/{id}/status"]["put"];
    assert!(put["responses"]["412"].is_object());
    assert!(put["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "If-Match"));
    let get = &doc["paths"]["/inventory/{productId}"]["get"];
    assert!(get["responses"]["200"]["headers"]["ETag"].is_object());
}
