//! The inventory operations end to end: real nats-server, real binaries.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use testkit::{discover, eventually, request, request_raw, try_request, Stack};

const INVENTORY: [&str; 4] = [
    "inventory-add-stock",
    "inventory-check",
    "inventory-get",
    "inventory-list",
];

#[tokio::test]
async fn discovery_answers_like_the_nats_cli_expects() {
    let stack = Stack::start(&INVENTORY).await;
    let pings = discover(&stack.client, "$SRV.PING").await;
    let names: BTreeSet<_> = pings
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, INVENTORY.iter().map(|s| s.to_string()).collect());
    for ping in &pings {
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        assert!(ping["metadata"].is_object());
    }

    for (service, subject) in [
        ("inventory-add-stock", "inventory.add-stock"),
        ("inventory-check", "inventory.check"),
        ("inventory-get", "inventory.get"),
        ("inventory-list", "inventory.list"),
    ] {
        let infos = discover(&stack.client, &format!("$SRV.INFO.{service}")).await;
        assert_eq!(infos.len(), 1, "{service}");
        let info = &infos[0];
        assert_eq!(info["type"], "io.nats.micro.v1.info_response");
        for field in ["name", "id", "version", "description"] {
            assert!(info[field].is_string(), "{service} INFO lacks {field}");
        }
        assert_eq!(info["name"], service);
        assert!(info["metadata"].is_object());
        let endpoint = &info["endpoints"][0];
        assert_eq!(endpoint["subject"], subject);
        assert_eq!(endpoint["name"], subject.split('.').nth(1).unwrap());
        assert_eq!(endpoint["queue_group"], service);
        // The schemas travel in metadata as strings, and parse as JSON Schema.
        for key in ["request_schema", "response_schema"] {
            let text = endpoint["metadata"][key].as_str().unwrap();
            let schema: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
        }
        assert!(endpoint["metadata"]["rest"]
            .as_str()
            .unwrap()
            .contains("/inventory"));
    }

    // STATS counts requests and errors.
    stack.add_stock("p1", 1, 1.0).await;
    let bad = stack
        .request("inventory.add-stock", &json!({"productId": "p1"}))
        .await;
    assert_eq!(bad.status, 400);
    let stats = discover(&stack.client, "$SRV.STATS.inventory-add-stock").await;
    let stats = &stats[0];
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    assert!(stats["started"].is_string());
    let endpoint = &stats["endpoints"][0];
    assert_eq!(endpoint["num_requests"], 2);
    assert_eq!(endpoint["num_errors"], 1);
    assert!(endpoint["last_error"].as_str().unwrap().starts_with("400"));
    assert!(endpoint["processing_time"].as_u64().unwrap() > 0);
    assert!(endpoint["average_processing_time"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_stray_discovery_publish_does_not_remove_an_instance() {
    let stack = Stack::start(&["inventory-get"]).await;
    // No reply subject: must be ignored, not end the responder.
    stack.client.publish("$SRV.PING", "".into()).await.unwrap();
    stack
        .client
        .publish("$SRV.INFO.inventory-get", "".into())
        .await
        .unwrap();
    stack.client.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        discover(&stack.client, "$SRV.PING.inventory-get")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn services_may_not_send_discovery_requests() {
    let stack = Stack::start(&["inventory-get"]).await;
    // A handler's user may not publish on $SRV.>: its request never arrives.
    let service_client = stack.server.client_as("inventory-get").await;
    let seen = discover(&service_client, "$SRV.PING").await;
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test]
async fn add_stock_adds_creates_and_sets_price() {
    let stack = Stack::start(&INVENTORY).await;
    let created = stack.add_stock("SKU-1", 5, 19.99).await;
    assert_eq!(created["productId"], "SKU-1");
    assert_eq!(created["quantity"], 5);
    assert_eq!(created["reserved"], 0);
    assert_eq!(created["price"], 19.99);
    let again = stack.add_stock("SKU-1", 3, 17.5).await;
    assert_eq!(again["quantity"], 8, "adds, never overwrites");
    assert_eq!(again["price"], 17.5);
    assert_eq!(again["createdAt"], created["createdAt"]);

    let got = stack
        .request("inventory.get", &json!({"productId": "SKU-1"}))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, again);
    let keys: BTreeSet<_> = got.body.as_object().unwrap().keys().cloned().collect();
    let want: BTreeSet<_> = [
        "productId",
        "quantity",
        "reserved",
        "price",
        "createdAt",
        "updatedAt",
        "lastChange",
        "revision",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(keys, want);

    let missing = stack
        .request("inventory.get", &json!({"productId": "nope"}))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["status"], 404);

    let check = stack
        .request(
            "inventory.check",
            &json!({"items": [{"productId": "SKU-1", "quantity": 8}, {"productId": "ghost", "quantity": 1}]}),
        )
        .await;
    assert_eq!(check.status, 200);
    assert_eq!(check.body["available"], false);
    assert_eq!(check.body["items"][0]["sufficient"], true);
    assert_eq!(check.body["items"][0]["quantity"], 8);
    assert_eq!(check.body["items"][1]["quantity"], 0);
    assert_eq!(check.body["items"][1]["sufficient"], false);
    let enough = stack
        .request(
            "inventory.check",
            &json!({"items": [{"productId": "SKU-1", "quantity": 8}]}),
        )
        .await;
    assert_eq!(enough.body["available"], true);
}

/// A list instance joins its service only once its index holds everything
/// stored, so even its very first answer is complete.
#[tokio::test]
async fn a_new_list_instance_answers_only_from_a_complete_index() {
    const PRODUCTS: usize = 3000;
    let mut stack = Stack::start(&["inventory-add-stock"]).await;
    let ids: Vec<String> = (0..PRODUCTS).map(|i| format!("bulk-{i:05}")).collect();
    for chunk in ids.chunks(100) {
        futures::future::join_all(chunk.iter().map(|id| stack.add_stock(id, 1, 1.0))).await;
    }
    // Ask from before it starts: the first answer comes the moment it joins.
    stack.spawn("inventory-list");
    let first = json!({"limit": 1000}).to_string();
    let mut page = loop {
        let reply = try_request(
            &stack.client,
            "inventory.list",
            first.clone(),
            Duration::from_secs(5),
        )
        .await;
        match reply {
            Ok(reply) => break reply,
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await, // no responders yet
        }
    };
    let mut seen = 0;
    loop {
        assert_eq!(page.status, 200, "{:?}", page.body);
        seen += page.body["items"].as_array().unwrap().len();
        let Some(next) = page.body["nextCursor"].as_str() else {
            break;
        };
        let body = json!({"limit": 1000, "cursor": next});
        page = stack.request("inventory.list", &body).await;
    }
    assert_eq!(seen, PRODUCTS, "the first pages list every product");
}

/// Every (productId, quantity) `inventory.list` shows, or None while it
/// cannot answer (e.g. NATS is restarting).
async fn listed(client: &async_nats::Client) -> Option<Vec<(String, u64)>> {
    let body = json!({"limit": 1000}).to_string();
    let reply = try_request(client, "inventory.list", body, Duration::from_secs(2))
        .await
        .ok()?;
    let items = reply.body["items"].as_array()?;
    Some(
        items
            .iter()
            .map(|p| {
                let id = p["productId"].as_str().unwrap_or_default().to_string();
                (id, p["quantity"].as_u64().unwrap_or_default())
            })
            .collect(),
    )
}

/// The index follows the bucket from the last revision it saw: a server
/// restart, which takes its consumer away, loses no later write.
#[tokio::test]
async fn list_keeps_following_across_a_server_restart() {
    let mut stack = Stack::start(&["inventory-add-stock", "inventory-list"]).await;
    stack.add_stock("before", 1, 1.0).await;
    let first = vec![("before".to_string(), 1)];
    eventually(10, "the index holds the first product", || async {
        listed(&stack.client).await == Some(first.clone())
    })
    .await;

    stack.server.restart().await;
    // Retried until served again; `requestId` makes a retry a no-op.
    for (id, quantity) in [("after", 2), ("before", 3)] {
        let body = json!({"productId": id, "quantity": quantity, "price": 1.0,
                          "requestId": format!("restart-{id}")});
        eventually(20, "add-stock is served again", || async {
            try_request(
                &stack.client,
                "inventory.add-stock",
                body.to_string(),
                Duration::from_secs(2),
            )
            .await
            .is_ok_and(|reply| reply.status == 200)
        })
        .await;
    }
    let both = vec![("after".to_string(), 2), ("before".to_string(), 4)];
    eventually(
        20,
        "the index holds the writes made after the restart",
        || async { listed(&stack.client).await == Some(both.clone()) },
    )
    .await;
}

#[tokio::test]
async fn list_walks_every_product_exactly_once() {
    let stack = Stack::start(&["inventory-add-stock", "inventory-list"]).await;
    let ids: BTreeSet<String> = (0..23).map(|i| format!("p-{i:03}")).collect();
    for id in &ids {
        stack.add_stock(id, 1, 2.5).await;
    }
    // The list index follows KV and may lag by a few milliseconds.
    eventually(10, "index holds every product", || async {
        let page = stack
            .request("inventory.list", &json!({"limit": 1000}))
            .await;
        page.body["items"].as_array().unwrap().len() == ids.len()
    })
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"limit": 5});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = stack.request("inventory.list", &body).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(
            items
                .iter()
                .map(|p| p["productId"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), ids.len(), "no product twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids);
    // An empty body is an empty request: the first page, default limit.
    let empty = request_raw(&stack.client, "inventory.list", "").await;
    assert_eq!(empty.body["items"].as_array().unwrap().len(), ids.len());
}

#[tokio::test]
async fn malformed_requests_get_a_precise_400_and_change_nothing() {
    let stack = Stack::start(&INVENTORY).await;
    stack.add_stock("known", 5, 1.0).await;
    let before = stack.snapshot().await;

    let cases: Vec<(&str, &str, &str)> = vec![
        ("inventory.add-stock", "{not json", ""),
        ("inventory.add-stock", r#"[1,2]"#, ""),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":"5","price":1}"#,
            "/quantity",
        ),
        (
            "inventory.add-stock",
            r#"{"quantity":5,"price":1}"#,
            "/productId",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","price":1}"#,
            "/quantity",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":5}"#,
            "/price",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":5,"price":1,"color":"red"}"#,
            "/color",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"bad id","quantity":5,"price":1}"#,
            "/productId",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"-dash","quantity":5,"price":1}"#,
            "/productId",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":0,"price":1}"#,
            "/quantity",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":-3,"price":1}"#,
            "/quantity",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":1.5,"price":1}"#,
            "/quantity",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":1000000001,"price":1}"#,
            "/quantity",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":1,"price":1.999}"#,
            "/price",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":1,"price":-1}"#,
            "/price",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":1,"price":"1.00"}"#,
            "/price",
        ),
        (
            "inventory.add-stock",
            r#"{"productId":"known","quantity":1,"price":1,"requestId":"no spaces"}"#,
            "/requestId",
        ),
        ("inventory.check", r#"{"items":[]}"#, "/items"),
        (
            "inventory.check",
            r#"{"items":[{"productId":"known"}]}"#,
            "/items/0/quantity",
        ),
        (
            "inventory.check",
            r#"{"items":[{"productId":"known","quantity":1},{"productId":"known","quantity":2}]}"#,
            "/items/1/productId",
        ),
        ("inventory.get", r#"{"productId":""}"#, "/productId"),
        ("inventory.get", r#"{"id":"known"}"#, "/id"),
        ("inventory.list", r#"{"limit":0}"#, "/limit"),
        ("inventory.list", r#"{"limit":1001}"#, "/limit"),
        ("inventory.list", r#"{"limit":"ten"}"#, "/limit"),
    ];
    for (subject, payload, pointer) in &cases {
        let reply = request_raw(&stack.client, subject, payload.to_string()).await;
        assert_eq!(reply.status, 400, "{subject} {payload}: {:?}", reply.body);
        assert!(
            reply.headers.get("Nats-Service-Error").is_some(),
            "{payload}"
        );
        assert_eq!(reply.body["status"], 400);
        assert_eq!(reply.body["title"], "Invalid request");
        assert!(reply.body["type"].is_string() && reply.body["detail"].is_string());
        assert!(
            reply.pointers().iter().any(|p| p == pointer),
            "{subject} {payload}: want pointer {pointer:?}, got {:?}",
            reply.pointers()
        );
    }
    // Binary garbage and oversized bodies: precise statuses, no crash.
    let garbage = request_raw(&stack.client, "inventory.add-stock", vec![0xff, 0xfe, 0x00]).await;
    assert_eq!(garbage.status, 400);
    let huge = format!(
        r#"{{"productId":"known","quantity":1,"price":1,"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    let too_large = request_raw(&stack.client, "inventory.add-stock", huge).await;
    assert_eq!(too_large.status, 413);

    assert_eq!(stack.snapshot().await, before, "bad requests changed KV");
    // And every instance is still there.
    assert_eq!(
        discover(&stack.client, "$SRV.PING").await.len(),
        INVENTORY.len()
    );
}

#[tokio::test]
async fn concurrent_add_stock_loses_no_increment() {
    let mut stack = Stack::start(&["inventory-add-stock", "inventory-get"]).await;
    stack.spawn("inventory-add-stock");
    stack.wait_for("inventory-add-stock", 2).await;
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let client = stack.client.clone();
            tokio::spawn(async move {
                let mut sum = 0;
                for i in 0..10u64 {
                    let quantity = 1 + (t + i) % 4;
                    let reply = request(
                        &client,
                        "inventory.add-stock",
                        &json!({"productId": "hot", "quantity": quantity, "price": 3.0}),
                    )
                    .await;
                    assert_eq!(reply.status, 200, "{:?}", reply.body);
                    sum += quantity;
                }
                sum
            })
        })
        .collect();
    let mut expected = 0;
    for task in tasks {
        expected += task.await.unwrap();
    }
    let product = stack
        .request("inventory.get", &json!({"productId": "hot"}))
        .await;
    assert_eq!(product.body["quantity"], expected);
    // Both instances took a share.
    let stats = discover(&stack.client, "$SRV.STATS.inventory-add-stock").await;
    assert_eq!(stats.len(), 2);
    for s in &stats {
        assert!(
            s["endpoints"][0]["num_requests"].as_u64().unwrap() > 0,
            "{s}"
        );
    }
}

#[tokio::test]
async fn request_id_applies_a_retry_once() {
    let stack = Stack::start(&["inventory-add-stock", "inventory-get"]).await;
    let body = json!({"productId": "r1", "quantity": 4, "price": 1.25, "requestId": "req-42"});
    let first = stack.request("inventory.add-stock", &body).await;
    let second = stack.request("inventory.add-stock", &body).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.body, first.body, "a retry returns the first answer");
    let product = stack
        .request("inventory.get", &json!({"productId": "r1"}))
        .await;
    assert_eq!(product.body["quantity"], 4);
    let other = stack
        .request(
            "inventory.add-stock",
            &json!({"productId": "r1", "quantity": 5, "price": 1.25, "requestId": "req-42"}),
        )
        .await;
    assert_eq!(other.status, 422);
    let product = stack
        .request("inventory.get", &json!({"productId": "r1"}))
        .await;
    assert_eq!(product.body["quantity"], 4);
}
