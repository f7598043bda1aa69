//! The order routes through the real gateway and the real order handlers:
//! create (201, Location, Idempotency-Key), get, list (filters, Link paging),
//! update-status, and the bad-request table with no state change.

mod common;

use common::Gateway;
use serde_json::{json, Value};
use testkit::{eventually, request, Stack};

const SERVICES: [&str; 9] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-reserve",
    "orders-create",
    "orders-get",
    "orders-list",
    "orders-update-status",
    "inventory-release",
    "inventory-commit",
];

async fn setup() -> (Stack, Gateway) {
    let stack = Stack::start(&SERVICES).await;
    let gateway = Gateway::start(&stack.server, &[]).await;
    for (id, quantity, price) in [("apple", 100, 0.5), ("pear", 10, 1.25), ("plum", 1, 3.0)] {
        let added = gateway
            .post(
                "/inventory",
                &json!({"productId": id, "quantity": quantity, "price": price}),
            )
            .await;
        assert_eq!(added.status, 201, "{}", added.text());
    }
    (stack, gateway)
}

async fn reserved(stack: &Stack, id: &str) -> Value {
    request(&stack.client, "inventory.get", &json!({"productId": id}))
        .await
        .body["reserved"]
        .clone()
}

#[tokio::test]
async fn every_order_route_succeeds_and_says_what_nats_says() {
    let (stack, gw) = setup().await;

    // POST /orders: 201, the Order, Location.
    let body = json!({"customerId": "c-1", "items": [{"productId": "apple", "quantity": 3}, {"productId": "pear", "quantity": 2}]});
    let created = gw.post("/orders", &body).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let order = created.json();
    let id = order["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/orders/{id}").as_str())
    );
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["customerId"], "c-1");
    assert_eq!(order["totalAmount"], 4.0);
    assert_eq!(
        order["items"][1],
        json!({"productId": "pear", "quantity": 2, "price": 1.25})
    );
    assert_eq!(reserved(&stack, "apple").await, 3);

    // GET the Location: the same order, and the same body as `nats req orders.get`.
    let got = gw.get(&format!("/orders/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), order);
    let nats = request(&stack.client, "orders.get", &json!({"id": id})).await;
    assert_eq!(got.json(), nats.body);

    // PUT /orders/{id}/status through the machine.
    let confirmed = gw
        .put(
            &format!("/orders/{id}/status"),
            &json!({"status": "CONFIRMED"}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(confirmed.json()["status"], "CONFIRMED");
    assert_eq!(confirmed.json()["previousStatus"], "PENDING");
    let again = gw
        .put(
            &format!("/orders/{id}/status"),
            &json!({"status": "CONFIRMED"}),
        )
        .await;
    assert_eq!(
        again.status, 200,
        "setting the current status again is a no-op 200"
    );
    let completed = gw
        .put(
            &format!("/orders/{id}/status"),
            &json!({"id": id, "status": "COMPLETED"}),
        )
        .await;
    assert_eq!(
        completed.status, 200,
        "the id may be in the body too when it agrees"
    );
    assert_eq!(completed.json()["status"], "COMPLETED");
    let nats = request(&stack.client, "orders.get", &json!({"id": id})).await;
    assert_eq!(gw.get(&format!("/orders/{id}")).await.json(), nats.body);

    // GET /orders: an array, the same items as NATS.
    eventually(10, "the order index has the order", || async {
        gw.get("/orders")
            .await
            .json()
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["status"] == "COMPLETED")
    })
    .await;
    let list = gw.get("/orders?customerId=c-1").await;
    let nats = request(&stack.client, "orders.list", &json!({"customerId": "c-1"})).await;
    assert_eq!(list.json(), nats.body["items"]);
    assert_eq!(list.json()[0]["id"], id.as_str());
}

#[tokio::test]
async fn idempotency_key_creates_one_order() {
    let (stack, gw) = setup().await;
    let body = br#"{"customerId":"c-2","items":[{"productId":"apple","quantity":5}]}"#;
    let headers = [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "order-key-1"),
    ];
    let first = gw.request("POST", "/orders", &headers, Some(body)).await;
    let second = gw.request("POST", "/orders", &headers, Some(body)).await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(second.status, 201, "{}", second.text());
    assert_eq!(
        second.json(),
        first.json(),
        "the retry returns the same order"
    );
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(reserved(&stack, "apple").await, 5, "reserved once");
    // The key in the body works the same way.
    let in_body = json!({"customerId": "c-2", "items": [{"productId": "apple", "quantity": 5}], "idempotencyKey": "order-key-1"});
    assert_eq!(gw.post("/orders", &in_body).await.json(), first.json());
}

#[tokio::test]
async fn order_lists_filter_and_page_with_link_headers() {
    let (_stack, gw) = setup().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let customer = if i % 2 == 0 { "even" } else { "odd" };
        let created = gw
            .post(
                "/orders",
                &json!({"customerId": customer, "items": [{"productId": "apple", "quantity": 1}]}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        ids.push(created.json()["id"].as_str().unwrap().to_string());
    }
    let cancelled = gw
        .put(
            &format!("/orders/{}/status", ids[0]),
            &json!({"status": "CANCELLED"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    eventually(10, "the index has all seven", || async {
        let all = gw.get("/orders?limit=1000").await.json();
        all.as_array()
            .is_some_and(|a| a.len() == 7 && a.iter().any(|o| o["status"] == "CANCELLED"))
    })
    .await;

    // PENDING orders of customer "even": 1 of 4 is cancelled, 3 left, 2 a page.
    let mut next = Some("/orders?status=PENDING&customerId=even&limit=2".to_string());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(path) = next.take() {
        let page = gw.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        pages += 1;
        for order in page.json().as_array().unwrap() {
            assert_eq!(order["status"], "PENDING");
            assert_eq!(order["customerId"], "even");
            seen.push(order["id"].as_str().unwrap().to_string());
        }
        if let Some(link) = page.header("link") {
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.split_once('>'))
                .unwrap()
                .0;
            assert!(
                target.starts_with("/orders?status=PENDING&customerId=even&limit=2&cursor="),
                "{link}"
            );
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            next = Some(target.to_string());
        }
    }
    assert_eq!(pages, 2);
    let mut want: Vec<String> = ids.iter().step_by(2).skip(1).cloned().collect();
    want.sort();
    seen.sort();
    assert_eq!(seen, want);
}

struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    pointer: Option<&'static str>,
}

#[tokio::test]
async fn bad_order_writes_get_their_status_and_change_nothing() {
    let (stack, gw) = setup().await;
    let keyed = gw
        .request(
            "POST",
            "/orders",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "used-key"),
            ],
            Some(br#"{"customerId":"c-3","items":[{"productId":"apple","quantity":1}]}"#),
        )
        .await;
    assert_eq!(keyed.status, 201, "{}", keyed.text());
    let id = keyed.json()["id"].as_str().unwrap().to_string();
    let status_path = format!("/orders/{id}/status");
    let before = stack.snapshot().await;

    let json_header = ("Content-Type", "application/json".to_string());
    let create = |body: &str, status, pointer| Case {
        method: "POST",
        path: "/orders".into(),
        headers: vec![json_header.clone()],
        body: body.into(),
        status,
        pointer,
    };
    let update = |path: &str, body: &str, status, pointer| Case {
        method: "PUT",
        path: path.into(),
        headers: vec![json_header.clone()],
        body: body.into(),
        status,
        pointer,
    };
    let item = r#"[{"productId":"apple","quantity":1}]"#;
    let mut cases = vec![
        create("{not json", 400, Some("")),
        create("{}", 400, Some("/items")),
        // Only a customer principal may leave out whose order it is.
        create(&format!(r#"{{"items":{item}}}"#), 400, Some("/customerId")),
        create(r#"{"customerId":"c"}"#, 400, Some("/items")),
        create(r#"{"customerId":"c","items":[]}"#, 400, Some("/items")),
        create(
            &format!(r#"{{"customerId":"","items":{item}}}"#),
            400,
            Some("/customerId"),
        ),
        create(
            &format!(r#"{{"customerId":"{}","items":{item}}}"#, "c".repeat(129)),
            400,
            Some("/customerId"),
        ),
        create(
            r#"{"customerId":"c","items":[{"productId":"apple","quantity":0}]}"#,
            400,
            Some("/items/0/quantity"),
        ),
        create(
            r#"{"customerId":"c","items":[{"productId":"bad id","quantity":1}]}"#,
            400,
            Some("/items/0/productId"),
        ),
        create(
            r#"{"customerId":"c","items":[{"productId":"apple","quantity":1},{"productId":"apple","quantity":2}]}"#,
            400,
            Some("/items/1/productId"),
        ),
        create(
            &format!(r#"{{"customerId":"c","items":{item},"color":"red"}}"#),
            400,
            Some("/color"),
        ),
        create(
            r#"{"customerId":"c","items":[{"productId":"ghost","quantity":1}]}"#,
            422,
            None,
        ),
        create(
            r#"{"customerId":"c","items":[{"productId":"apple","quantity":1},{"productId":"plum","quantity":2}]}"#,
            409,
            None,
        ),
        update(&status_path, "{}", 400, Some("/status")),
        update(
            &status_path,
            r#"{"status":"SHIPPED"}"#,
            400,
            Some("/status"),
        ),
        update(&status_path, r#"{"status":"COMPLETED"}"#, 409, None),
        update(
            &status_path,
            r#"{"id":"other","status":"CONFIRMED"}"#,
            400,
            Some("/id"),
        ),
        update(
            &status_path,
            r#"{"status":"CONFIRMED","note":"x"}"#,
            400,
            Some("/note"),
        ),
        update(&status_path, "[\"CONFIRMED\"]", 400, Some("")),
        update(
            "/orders/no-such-order/status",
            r#"{"status":"CONFIRMED"}"#,
            404,
            None,
        ),
        update(
            "/orders/bad%20id/status",
            r#"{"status":"CONFIRMED"}"#,
            400,
            Some("/id"),
        ),
    ];
    // Idempotency-Key: malformed, reused with another body, disagreeing with the body.
    let mut with_key = |key: &str, body: &str, status, pointer| {
        let mut c = create(body, status, pointer);
        c.headers.push(("Idempotency-Key", key.to_string()));
        cases.push(c);
    };
    with_key(
        "no spaces",
        &format!(r#"{{"customerId":"c","items":{item}}}"#),
        400,
        Some("/idempotencyKey"),
    );
    with_key(
        "used-key",
        &format!(r#"{{"customerId":"someone-else","items":{item}}}"#),
        422,
        None,
    );
    with_key(
        "key-a",
        &format!(r#"{{"customerId":"c","items":{item},"idempotencyKey":"key-b"}}"#),
        400,
        Some("/idempotencyKey"),
    );
    // Not JSON, too large.
    for (method, path) in [
        ("POST", "/orders".to_string()),
        ("PUT", status_path.clone()),
    ] {
        cases.push(Case {
            method,
            path: path.clone(),
            headers: vec![("Content-Type", "text/plain".into())],
            body: r#"{"status":"CONFIRMED"}"#.into(),
            status: 415,
            pointer: None,
        });
        cases.push(Case {
            method,
            path,
            headers: vec![json_header.clone()],
            body: format!(r#"{{"status":"CONFIRMED","pad":"{}"}}"#, "x".repeat(70_000)),
            status: 413,
            pointer: None,
        });
    }
    assert!(cases.len() >= 25, "{} cases", cases.len());

    for c in &cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = gw
            .request(c.method, &c.path, &headers, Some(c.body.as_bytes()))
            .await;
        let label = format!(
            "{} {} {}",
            c.method,
            c.path,
            &c.body[..c.body.len().min(100)]
        );
        assert_eq!(response.status, c.status, "{label}: {}", response.text());
        let problem = response.problem(c.status);
        if let Some(pointer) = c.pointer {
            assert!(
                response.pointers().iter().any(|p| p == pointer),
                "{label}: want {pointer:?}, got {problem}"
            );
        }
        if c.status == 409 && c.method == "POST" {
            let short = &problem["items"][0];
            assert_eq!(
                (short["productId"].as_str(), short["requested"].as_u64()),
                (Some("plum"), Some(2)),
                "{problem}"
            );
        }
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a bad request changed the bucket"
    );
    // Queries of the read routes are checked too.
    for (path, pointer) in [
        ("/orders?status=SHIPPED", "/status"),
        ("/orders?limit=0", "/limit"),
        ("/orders/bad%20id", "/id"),
    ] {
        let response = gw.get(path).await;
        response.problem(400);
        assert!(
            response.pointers().contains(&pointer.to_string()),
            "{path}: {:?}",
            response.pointers()
        );
    }
}
