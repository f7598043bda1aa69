//! Crash safety proven at the exact step: each test arms one fault point
//! (`OMS_FAULTS`, see `oms_runtime::fault`) in one process, checks that the
//! process died there, checks what the books say at that very moment, and
//! then that a fresh instance finishes the work exactly once.

use async_nats::jetstream;
use oms_handlers::model::keyed_order_id;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{try_request, Stack};

const SERVICES: [&str; 5] = [
    "inventory-add-stock",
    "inventory-get",
    "orders-create",
    "orders-get",
    "orders-update-status",
];

fn kill_at(point: &str) -> [(&'static str, String); 1] {
    [("OMS_FAULTS", format!("{point}=kill"))]
}

async fn armed(stack: &mut Stack, binary: &str, point: &str) -> usize {
    let [(name, value)] = kill_at(point);
    let index = stack.spawn_with(binary, &[(name, value.as_str())]);
    stack.wait_for(binary, 1).await;
    index
}

async fn product(stack: &Stack, id: &str) -> (u64, u64) {
    stack.counts(id).await
}

async fn order_status(stack: &Stack, id: &str) -> Option<String> {
    let reply = stack.request("orders.get", &json!({"id": id})).await;
    match reply.status {
        200 => Some(reply.body["status"].as_str().unwrap().to_string()),
        404 => None,
        other => panic!("orders.get answered {other}"),
    }
}

/// Sends a request in the background, as a client that waits for it.
fn send(
    stack: &Stack,
    subject: &'static str,
    body: Value,
) -> tokio::task::JoinHandle<testkit::Reply> {
    let client = stack.client.clone();
    tokio::spawn(async move {
        try_request(&client, subject, body.to_string(), Duration::from_secs(30))
            .await
            .expect("an answer")
    })
}

async fn event_count(stack: &Stack) -> usize {
    let js = jetstream::new(stack.client.clone());
    match js.get_stream("OMS_EVENTS").await {
        Ok(mut stream) => stream.info().await.unwrap().state.messages as usize,
        Err(_) => 0,
    }
}

#[tokio::test]
async fn reserve_killed_after_its_write_leaves_an_order_that_a_retry_answers() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("orders-events");
    stack.add_stock("A", 10, 2.5).await;
    let victim = armed(&mut stack, "inventory-reserve", "group.after-write").await;
    let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 2}], "idempotencyKey": "k-after"});
    let pending = send(&stack, "orders.create", body);
    stack.wait_exit(victim, 10).await;
    // Dead before its reply: the order and its stock are already one fact.
    let id = keyed_order_id(None, "k-after");
    assert_eq!(order_status(&stack, &id).await.as_deref(), Some("PENDING"));
    assert_eq!(product(&stack, "A").await, (8, 2));
    // orders-create asks again (after its 5 s timeout); a new instance
    // finds the order and answers it.
    stack.spawn("inventory-reserve");
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["id"], id.as_str());
    assert_eq!(product(&stack, "A").await, (8, 2), "stock taken once");
    let events = stack.quiet_events().await;
    assert_eq!(events.len(), 1, "one created event: {events:?}");
}

#[tokio::test]
async fn reserve_killed_before_its_write_changes_nothing() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.add_stock("A", 10, 2.5).await;
    let before = stack.snapshot().await;
    let victim = armed(&mut stack, "inventory-reserve", "group.before-write").await;
    let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 3}], "idempotencyKey": "k-before"});
    let pending = send(&stack, "orders.create", body);
    stack.wait_exit(victim, 10).await;
    assert_eq!(stack.snapshot().await, before, "nothing half-written");
    stack.spawn("inventory-reserve");
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(product(&stack, "A").await, (7, 3));
}

#[tokio::test]
async fn release_killed_after_its_write_has_cancelled_and_a_retry_says_so() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-reserve");
    stack.spawn("orders-events");
    stack.wait_for("inventory-reserve", 1).await;
    stack.add_stock("A", 10, 2.5).await;
    let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 4}]});
    let created = stack.request("orders.create", &body).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(product(&stack, "A").await, (6, 4));
    let victim = armed(&mut stack, "inventory-release", "group.after-write").await;
    let pending = send(
        &stack,
        "orders.update-status",
        json!({"id": id, "status": "CANCELLED"}),
    );
    stack.wait_exit(victim, 10).await;
    // Cancelled and released in the one write that happened.
    assert_eq!(
        order_status(&stack, &id).await.as_deref(),
        Some("CANCELLED")
    );
    assert_eq!(product(&stack, "A").await, (10, 0));
    stack.spawn("inventory-release");
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "CANCELLED");
    assert_eq!(product(&stack, "A").await, (10, 0), "released once");
    let events = stack.quiet_events().await;
    let kinds: Vec<_> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["events.orders.created", "events.orders.status-updated"]
    );
}

/// Five orders stored while no deriver runs: their events wait in the
/// bucket's history.
async fn orders_without_events(stack: &mut Stack) -> Vec<String> {
    stack.spawn("inventory-reserve");
    stack.wait_for("inventory-reserve", 1).await;
    stack.add_stock("A", 10, 1.0).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}]});
        let reply = stack.request("orders.create", &body).await;
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Exactly one created event per order, in the order they were stored.
async fn assert_one_event_each(stack: &Stack, ids: &[String]) {
    let events = stack.quiet_events().await;
    let ordered: Vec<_> = events
        .iter()
        .map(|e| e.2["orderId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ordered, ids, "each order's event once, in order");
}

#[tokio::test]
async fn event_deriver_killed_before_publishing_loses_no_event() {
    let mut stack = Stack::start(&SERVICES).await;
    let ids = orders_without_events(&mut stack).await;
    let victim = stack.spawn_with("orders-events", &[("OMS_FAULTS", "derive.received=kill")]);
    stack.wait_exit(victim, 10).await;
    assert_eq!(event_count(&stack).await, 0, "died before publishing");
    stack.spawn("orders-events");
    assert_one_event_each(&stack, &ids).await;
}

#[tokio::test]
async fn event_deriver_killed_mid_chunk_stores_each_event_once() {
    let mut stack = Stack::start(&SERVICES).await;
    let ids = orders_without_events(&mut stack).await;
    let victim = stack.spawn_with("orders-events", &[("OMS_FAULTS", "derive.mid-chunk=kill")]);
    stack.wait_exit(victim, 10).await;
    let stored = event_count(&stack).await;
    assert!(
        (1..ids.len()).contains(&stored),
        "died with part of a chunk stored ({stored})"
    );
    // Two derivers resume at once: they race for the same chain.
    stack.spawn("orders-events");
    stack.spawn("orders-events");
    assert_one_event_each(&stack, &ids).await;
}
