//! The limits seen from HTTP: the gateway's own deadline travels with every
//! request (a client's `Oms-Deadline` is dropped), a request that outlives
//! it is a 504 that leaves no order behind, a full store is a 507 counted
//! in `/metrics` beside the streams' bytes and the dead letters.

mod common;

use common::Gateway;
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::Stack;

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn the_gateway_sends_its_own_deadline_and_drops_a_clients() {
    let stack = Stack::start(&[]).await;
    // A stand-in for inventory.check that echoes the deadline it got.
    let mut sub = stack.client.subscribe("inventory.check").await.unwrap();
    let client = stack.client.clone();
    let echo = tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            let headers = message.headers.clone().unwrap_or_default();
            let deadline = headers.get("Oms-Deadline").map(|v| v.to_string());
            let body = json!({ "deadline": deadline });
            client
                .publish(message.reply.unwrap(), body.to_string().into())
                .await
                .unwrap();
        }
    });
    stack.client.flush().await.unwrap();
    let gw = Gateway::start(&stack.server, &[("OMS_REQUEST_TIMEOUT", "2")]).await;
    let sent = epoch_millis();
    let response = gw
        .request(
            "POST",
            "/inventory/check",
            &[("Content-Type", "application/json"), ("Oms-Deadline", "1")],
            Some(br#"{"items":[{"productId":"p","quantity":1}]}"#),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let deadline: u64 = response.json()["deadline"]
        .as_str()
        .expect("a deadline reached the handler")
        .parse()
        .unwrap();
    // Its own: now + OMS_REQUEST_TIMEOUT, not the client's.
    assert!(
        (sent + 1500..=epoch_millis() + 2000).contains(&deadline),
        "{deadline} vs sent at {sent}"
    );
    echo.abort();
}

#[tokio::test]
async fn an_order_slower_than_the_gateway_is_504_stores_nothing_and_a_retry_makes_one() {
    let mut stack = Stack::start(&[
        "inventory-add-stock",
        "inventory-get",
        "orders-create",
        "orders-get",
    ])
    .await;
    stack.spawn_with(
        "inventory-reserve",
        &[("OMS_FAULTS", "group.before-write=sleep:2000")],
    );
    stack.wait_for("inventory-reserve", 1).await;
    stack.add_stock("A", 10, 1.0).await;
    let impatient = Gateway::start(&stack.server, &[("OMS_REQUEST_TIMEOUT", "1")]).await;
    let patient = Gateway::start(&stack.server, &[]).await;
    let order = json!({"customerId": "c-1", "items": [{"productId": "A", "quantity": 2}]});
    let body = order.to_string();
    async fn post(gw: &Gateway, body: &str) -> common::Response {
        let headers = [
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "cart-late"),
        ];
        gw.request("POST", "/orders", &headers, Some(body.as_bytes()))
            .await
    }
    let late = post(&impatient, &body).await;
    late.problem(504);
    // Long after the stalled reservation woke up: no order, no stock taken.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let keys = stack.snapshot().await;
    assert!(
        keys.iter().all(|(k, _)| !k.starts_with("order.")),
        "{keys:?}"
    );
    assert_eq!(stack.counts("A").await, (10, 0));
    // The client retries with its key, given time: exactly one order.
    let first = post(&patient, &body).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = post(&patient, &body).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_eq!(stack.counts("A").await, (8, 2));
}

#[tokio::test]
async fn a_full_store_is_507_counted_in_metrics_while_reads_answer() {
    let stack = Stack::start_with_env(
        &["inventory-add-stock", "inventory-get"],
        &[("OMS_BUCKET_MAX_BYTES", "128KiB")],
    )
    .await;
    let gw = Gateway::start(&stack.server, &[]).await;
    stack.add_stock("A", 1, 1.0).await;
    for i in 0.. {
        let body = json!({"productId": format!("f{i}"), "quantity": 1, "price": 1});
        let reply = stack.request("inventory.add-stock", &body).await;
        if reply.status == 507 {
            break;
        }
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert!(i < 3000, "128 KiB never filled");
    }
    let long = format!("big-{}", "x".repeat(60));
    let refused = gw
        .post(
            "/inventory",
            &json!({"productId": long, "quantity": 1, "price": 1}),
        )
        .await;
    let problem = refused.problem(507);
    assert_eq!(problem["type"], "/problems/storage-full");
    let read = gw.get("/inventory/A").await;
    assert_eq!(read.status, 200, "{}", read.text());

    // A dead letter, as a worker would store it.
    let js = async_nats::jetstream::new(stack.client.clone());
    js.publish("dlq.KV_oms.inventory-holds", "poison".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let page = gw.get("/metrics").await.text();
    for line in [
        "gateway_http_requests_total{method=\"POST\",route=\"/inventory\",status=\"507\"} 1",
        "oms_stream_max_bytes{stream=\"KV_oms\"} 131072",
        "oms_dead_letters{subject=\"dlq.KV_oms.inventory-holds\"} 1",
        "oms_dead_letters_total 1",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} not in\n{page}");
    }
    let stored: u64 = page
        .lines()
        .find_map(|l| l.strip_prefix("oms_stream_bytes{stream=\"KV_oms\"} "))
        .expect("the bucket's bytes")
        .parse()
        .unwrap();
    assert!(stored > 120 * 1024 && stored <= 128 * 1024, "{stored}");
}
