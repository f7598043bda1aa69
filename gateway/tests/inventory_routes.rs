//! The inventory routes through the real gateway, real handlers and a real
//! nats-server: success paths, paging, the bad-request table, and REST vs
//! `nats req` giving the same body.

mod common;

use common::Gateway;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use testkit::{eventually, request, Stack};

const INVENTORY: [&str; 4] = [
    "inventory-add-stock",
    "inventory-check",
    "inventory-get",
    "inventory-list",
];

async fn setup() -> (Stack, Gateway) {
    let stack = Stack::start(&INVENTORY).await;
    let gateway = Gateway::start(&stack.server, &[]).await;
    (stack, gateway)
}

#[tokio::test]
async fn every_inventory_route_succeeds_and_says_what_nats_says() {
    let (stack, gw) = setup().await;

    // POST /inventory: 201, the Product, where to read it.
    let created = gw
        .post(
            "/inventory",
            &json!({"productId": "SKU-1", "quantity": 10, "price": 19.99}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.header("location"), Some("/inventory/SKU-1"));
    let product = created.json();
    assert_eq!(product["productId"], "SKU-1");
    assert_eq!(product["quantity"], 10);
    assert_eq!(product["reserved"], 0);
    assert_eq!(product["price"], 19.99);

    // GET /inventory/{productId}: the same body `nats req inventory.get` gets.
    let got = gw.get("/inventory/SKU-1").await;
    assert_eq!(got.status, 200);
    let nats = request(
        &stack.client,
        "inventory.get",
        &json!({"productId": "SKU-1"}),
    )
    .await;
    assert_eq!(nats.status, 200);
    assert_eq!(got.json(), nats.body);
    assert_eq!(got.json(), product);

    // POST /inventory/check: 200, same as NATS.
    let check = json!({"items": [{"productId": "SKU-1", "quantity": 3}, {"productId": "ghost", "quantity": 1}]});
    let rest = gw.post("/inventory/check", &check).await;
    assert_eq!(rest.status, 200, "{}", rest.text());
    let nats = request(&stack.client, "inventory.check", &check).await;
    assert_eq!(rest.json(), nats.body);
    assert_eq!(rest.json()["available"], false);

    // GET /inventory: a JSON array of the page's items.
    eventually(10, "the list index has SKU-1", || async {
        gw.get("/inventory")
            .await
            .json()
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .await;
    let list = gw.get("/inventory?limit=10").await;
    assert_eq!(list.status, 200);
    assert!(list.header("link").is_none(), "one page only");
    let nats = request(&stack.client, "inventory.list", &json!({"limit": 10})).await;
    assert_eq!(list.json(), nats.body["items"]);

    // Errors are the handler's problem, passed through as is.
    let missing = gw.get("/inventory/nope").await;
    let body = missing.problem(404);
    let nats = request(
        &stack.client,
        "inventory.get",
        &json!({"productId": "nope"}),
    )
    .await;
    assert_eq!(body, nats.body);
    let bad = gw
        .post(
            "/inventory",
            &json!({"productId": "SKU-1", "quantity": 0, "price": 1}),
        )
        .await;
    let nats = request(
        &stack.client,
        "inventory.add-stock",
        &json!({"productId": "SKU-1", "quantity": 0, "price": 1}),
    )
    .await;
    assert_eq!(bad.problem(400), nats.body);

    // Idempotency-Key maps onto add-stock's retry token `requestId`.
    let headers = [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "restock-1"),
    ];
    let body = br#"{"productId":"SKU-1","quantity":5,"price":19.99}"#;
    let first = gw.request("POST", "/inventory", &headers, Some(body)).await;
    let again = gw.request("POST", "/inventory", &headers, Some(body)).await;
    assert_eq!(first.status, 201);
    assert_eq!(again.json(), first.json(), "a retry is applied once");
    assert_eq!(gw.get("/inventory/SKU-1").await.json()["quantity"], 15);
}

#[tokio::test]
async fn lists_page_with_link_headers() {
    let (_stack, gw) = setup().await;
    let ids: BTreeSet<String> = (0..23).map(|i| format!("p-{i:03}")).collect();
    for id in &ids {
        let r = gw
            .post(
                "/inventory",
                &json!({"productId": id, "quantity": 1, "price": 2.5}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    eventually(10, "the list index holds every product", || async {
        gw.get("/inventory?limit=1000")
            .await
            .json()
            .as_array()
            .map(Vec::len)
            == Some(ids.len())
    })
    .await;

    let mut seen = Vec::new();
    let mut next = Some("/inventory?limit=5".to_string());
    let mut links = Vec::new();
    while let Some(path) = next.take() {
        let page = gw.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        let items = page.json();
        let items = items.as_array().expect("a list is a JSON array");
        assert!(items.len() <= 5);
        seen.extend(
            items
                .iter()
                .map(|p| p["productId"].as_str().unwrap().to_string()),
        );
        if let Some(link) = page.header("link") {
            links.push(link.to_string());
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
                .map(|(target, _)| target.to_string())
                .unwrap_or_else(|| panic!("malformed Link: {link}"));
            next = Some(target);
        }
    }
    assert_eq!(links.len(), 4, "5 pages, 4 next links");
    assert_eq!(links[0], "</inventory?limit=5&cursor=p-004>; rel=\"next\"");
    assert_eq!(seen.len(), ids.len(), "no product twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), ids);

    // A cursor that needs encoding survives the round trip.
    let odd = gw.get("/inventory?cursor=p-004&limit=2").await;
    assert_eq!(
        odd.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["productId"].clone())
            .collect::<Vec<_>>(),
        vec![json!("p-005"), json!("p-006")]
    );

    // Query values are typed by the schema; a wrong one is the handler's precise 400.
    for (query, pointer) in [
        ("limit=ten", "/limit"),
        ("limit=0", "/limit"),
        ("limit=1001", "/limit"),
        ("color=red", "/color"),
    ] {
        let bad = gw.get(&format!("/inventory?{query}")).await;
        bad.problem(400);
        assert!(
            bad.pointers().contains(&pointer.to_string()),
            "{query}: {:?}",
            bad.pointers()
        );
    }
}

/// A bad request: what to send, the status it must get, and for 400s the
/// JSON Pointer its problem must name.
struct Case {
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    pointer: Option<&'static str>,
}

fn case(
    method: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    pointer: Option<&'static str>,
) -> Case {
    Case {
        method,
        path,
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        status,
        pointer,
    }
}

#[tokio::test]
async fn bad_inventory_writes_get_their_status_and_change_nothing() {
    let (stack, gw) = setup().await;
    let seeded = gw
        .post(
            "/inventory",
            &json!({"productId": "known", "quantity": 5, "price": 1.0, "requestId": "seed-1"}),
        )
        .await;
    assert_eq!(seeded.status, 201);
    let before = stack.snapshot().await;

    let add = |body: &str, status, pointer| case("POST", "/inventory", body, status, pointer);
    let check =
        |body: &str, status, pointer| case("POST", "/inventory/check", body, status, pointer);
    let mut cases = vec![
        add("{not json", 400, Some("")),
        add("[1,2]", 400, Some("")),
        add("", 400, Some("/productId")),
        add(
            r#"{"productId":"known","quantity":"5","price":1}"#,
            400,
            Some("/quantity"),
        ),
        add(r#"{"quantity":5,"price":1}"#, 400, Some("/productId")),
        add(r#"{"productId":"known","price":1}"#, 400, Some("/quantity")),
        add(r#"{"productId":"known","quantity":5}"#, 400, Some("/price")),
        add(
            r#"{"productId":"known","quantity":5,"price":1,"color":"red"}"#,
            400,
            Some("/color"),
        ),
        add(
            r#"{"productId":"bad id","quantity":5,"price":1}"#,
            400,
            Some("/productId"),
        ),
        add(
            r#"{"productId":"known","quantity":0,"price":1}"#,
            400,
            Some("/quantity"),
        ),
        add(
            r#"{"productId":"known","quantity":1.5,"price":1}"#,
            400,
            Some("/quantity"),
        ),
        add(
            r#"{"productId":"known","quantity":1000000001,"price":1}"#,
            400,
            Some("/quantity"),
        ),
        add(
            r#"{"productId":"known","quantity":1,"price":1.999}"#,
            400,
            Some("/price"),
        ),
        add(
            r#"{"productId":"known","quantity":1,"price":-1}"#,
            400,
            Some("/price"),
        ),
        add(
            r#"{"productId":"known","quantity":1,"price":1,"requestId":"no spaces"}"#,
            400,
            Some("/requestId"),
        ),
        // A used requestId with a different body.
        add(
            r#"{"productId":"known","quantity":6,"price":1.0,"requestId":"seed-1"}"#,
            422,
            None,
        ),
        check(r#"{"items":[]}"#, 400, Some("/items")),
        check(
            r#"{"items":[{"productId":"known"}]}"#,
            400,
            Some("/items/0/quantity"),
        ),
        check(
            r#"{"items":[{"productId":"known","quantity":1},{"productId":"known","quantity":2}]}"#,
            400,
            Some("/items/1/productId"),
        ),
        check(r#"{"items":"known"}"#, 400, Some("/items")),
        check("{}", 400, Some("/items")),
    ];
    // Not JSON at all: 415 before anything is read or sent.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        for path in ["/inventory", "/inventory/check"] {
            cases.push(Case {
                content_type: Some(content_type),
                ..case(
                    "POST",
                    path,
                    r#"{"productId":"known","quantity":1,"price":1}"#,
                    415,
                    None,
                )
            });
        }
    }
    // Over 64 KiB: 413.
    let huge = format!(
        r#"{{"productId":"known","quantity":1,"price":1,"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    cases.push(case("POST", "/inventory", &huge, 413, None));
    cases.push(case("POST", "/inventory/check", &huge, 413, None));
    // A method the route does not have: 405.
    cases.push(case("PUT", "/inventory", "{}", 405, None));
    cases.push(case("DELETE", "/inventory/known", "", 405, None));
    assert!(cases.len() >= 30, "{} cases", cases.len());

    for c in &cases {
        let mut headers = Vec::new();
        if let Some(t) = c.content_type {
            headers.push(("Content-Type", t));
        }
        let response = gw.request(c.method, c.path, &headers, Some(&c.body)).await;
        let label = format!(
            "{} {} {}",
            c.method,
            c.path,
            String::from_utf8_lossy(&c.body[..c.body.len().min(80)])
        );
        assert_eq!(response.status, c.status, "{label}: {}", response.text());
        let problem = response.problem(c.status);
        if let Some(pointer) = c.pointer {
            assert!(
                response.pointers().iter().any(|p| p == pointer),
                "{label}: want pointer {pointer:?}, got {problem}"
            );
        }
        if c.status == 405 {
            assert!(
                response.header("allow").is_some(),
                "{label}: 405 without Allow"
            );
        }
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a bad request changed the bucket"
    );
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let (_stack, gw) = setup().await;
    let mine = gw
        .request(
            "GET",
            "/inventory/none",
            &[("X-Request-Id", "req-abc-123")],
            None,
        )
        .await;
    assert_eq!(mine.header("x-request-id"), Some("req-abc-123"));
    let a = gw.get("/inventory").await;
    let b = gw.get("/inventory").await;
    let (a, b) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert!(!a.is_empty() && a != b, "{a} {b}");
    // Also on gateway-made answers.
    assert!(gw
        .get("/no/such/route")
        .await
        .header("x-request-id")
        .is_some());
    let _: Value = gw.get("/healthz").await.json();
}
