//! Limits that fail cleanly, against a real nats-server and the
//! real binaries: refused requests leave nothing behind, a full store is a
//! 507 that changes nothing, list pages stay within `max_payload`, a
//! deadline stops a chain, and a message that keeps failing ends in
//! `OMS_DLQ`, from where it can be replayed once.

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;
use oms_handlers::model::keyed_order_id;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::{eventually, Reply, Stack};

/// The bucket stream's message count and last sequence: "no write at all"
/// is both unchanged.
async fn bucket_state(stack: &Stack) -> (u64, u64) {
    let js = jetstream::new(stack.client.clone());
    let mut stream = js.get_stream("KV_oms").await.expect("the bucket");
    let state = stream.info().await.expect("bucket info").state.clone();
    (state.messages, state.last_sequence)
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A request with these headers, as any NATS caller may send it.
async fn request_with(
    stack: &Stack,
    subject: &str,
    body: &Value,
    headers: HeaderMap,
    wait: Duration,
) -> Reply {
    let request = async_nats::Request::new()
        .payload(body.to_string().into())
        .headers(headers)
        .timeout(Some(wait));
    let message = stack
        .client
        .send_request(subject.to_string(), request)
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let headers = message.headers.clone().unwrap_or_default();
    let status = headers
        .get("Nats-Service-Error-Code")
        .map_or(200, |v| v.as_str().parse().unwrap());
    Reply {
        status,
        body: serde_json::from_slice(&message.payload).unwrap_or(Value::Null),
        headers,
    }
}

fn deadline_in(millis: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let at = epoch_millis() as i64 + millis;
    headers.insert("Oms-Deadline", at.to_string().as_str());
    headers
}

fn order_body(items: Value, key: &str) -> Value {
    json!({"customerId": "c-1", "items": items, "idempotencyKey": key})
}

#[tokio::test]
async fn a_refused_request_of_each_kind_leaves_the_bucket_as_it_was() {
    let stack = Stack::start(&[
        "inventory-add-stock",
        "inventory-get",
        "inventory-reserve",
        "inventory-release",
        "inventory-commit",
        "orders-create",
        "orders-get",
        "orders-update-status",
    ])
    .await;
    let restock = json!({"productId": "A", "quantity": 5, "price": 1.5, "requestId": "r-1"});
    assert_eq!(
        stack.request("inventory.add-stock", &restock).await.status,
        200
    );
    let made = stack
        .request(
            "orders.create",
            &order_body(json!([{"productId": "A", "quantity": 1}]), "k-ok"),
        )
        .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();

    let before = stack.snapshot().await;
    let state = bucket_state(&stack).await;
    let refused: Vec<(&str, Value, u16)> = vec![
        // 400: schema, and what only code can see (a repeated product).
        (
            "inventory.add-stock",
            json!({"productId": "A", "quantity": 0, "price": 1, "requestId": "r-2"}),
            400,
        ),
        (
            "orders.create",
            order_body(
                json!([{"productId": "A", "quantity": 1}, {"productId": "A", "quantity": 1}]),
                "k-400",
            ),
            400,
        ),
        // 404: nothing by that id.
        (
            "orders.update-status",
            json!({"id": "nope", "status": "CONFIRMED"}),
            404,
        ),
        ("inventory.release", json!({"orderId": "nope"}), 404),
        // 409: not enough stock, an illegal transition, a reused order id.
        (
            "orders.create",
            order_body(json!([{"productId": "A", "quantity": 50}]), "k-409"),
            409,
        ),
        (
            "orders.update-status",
            json!({"id": id, "status": "COMPLETED"}),
            409,
        ),
        (
            "inventory.reserve",
            json!({"orderId": id, "items": [{"productId": "A", "quantity": 2}], "customerId": "c-1"}),
            409,
        ),
        // 422: an unknown product, a key or request id reused for another body.
        (
            "orders.create",
            order_body(json!([{"productId": "ZZ", "quantity": 1}]), "k-422"),
            422,
        ),
        (
            "orders.create",
            order_body(json!([{"productId": "A", "quantity": 2}]), "k-ok"),
            422,
        ),
        (
            "inventory.add-stock",
            json!({"productId": "A", "quantity": 6, "price": 1.5, "requestId": "r-1"}),
            422,
        ),
    ];
    for (subject, body, status) in &refused {
        let reply = stack.request(subject, body).await;
        assert_eq!(reply.status, *status, "{subject} {body}: {:?}", reply.body);
    }
    assert_eq!(bucket_state(&stack).await, state, "no message stored");
    assert_eq!(stack.snapshot().await, before, "no key changed");
    // A refused key is free for the request that can be done.
    let later = stack
        .request(
            "orders.create",
            &order_body(json!([{"productId": "A", "quantity": 2}]), "k-409"),
        )
        .await;
    assert_eq!(later.status, 200, "{:?}", later.body);
}

#[tokio::test]
async fn a_full_bucket_answers_507_changes_nothing_and_reads_keep_working() {
    let stack = Stack::start_with_env(
        &[
            "inventory-add-stock",
            "inventory-get",
            "inventory-list",
            "inventory-reserve",
            "orders-create",
            "orders-get",
        ],
        &[("OMS_BUCKET_MAX_BYTES", "256KiB")],
    )
    .await;
    let js = jetstream::new(stack.client.clone());
    let mut bucket = js.get_stream("KV_oms").await.unwrap();
    let config = bucket.info().await.unwrap().config.clone();
    assert_eq!(config.max_bytes, 256 * 1024);
    assert_eq!(config.discard, jetstream::stream::DiscardPolicy::New);

    stack.add_stock("A", 10, 2.0).await;
    // Fill it with small products, 32 at a time, until the store says full.
    let mut filled = 0;
    let full = 'fill: loop {
        let replies = futures::future::join_all((0..32).map(|i| {
            let body = json!({"productId": format!("f{}", filled + i), "quantity": 1, "price": 1});
            let client = stack.client.clone();
            async move { testkit::request(&client, "inventory.add-stock", &body).await }
        }))
        .await;
        filled += 32;
        for reply in replies {
            match reply.status {
                200 => {}
                507 => break 'fill reply,
                other => panic!("filling: {other} {:?}", reply.body),
            }
        }
        assert!(filled < 5000, "256 KiB never filled");
    };
    assert_eq!(
        full.body["type"], "/problems/storage-full",
        "{:?}",
        full.body
    );
    assert_eq!(full.body["status"], 507);
    assert_eq!(
        full.headers
            .get("Nats-Service-Error-Code")
            .unwrap()
            .as_str(),
        "507"
    );

    // Writes larger than the room left: a compare-and-set and an atomic batch.
    let before = stack.snapshot().await;
    let state = bucket_state(&stack).await;
    let long = format!("big-{}", "x".repeat(60));
    let product = json!({"productId": long, "quantity": 1, "price": 1, "requestId": "r-full"});
    let refused = stack.request("inventory.add-stock", &product).await;
    assert_eq!(refused.status, 507, "{:?}", refused.body);
    let order = order_body(json!([{"productId": "A", "quantity": 3}]), "k-full");
    let refused = stack.request("orders.create", &order).await;
    assert_eq!(refused.status, 507, "{:?}", refused.body);
    assert_eq!(refused.body["type"], "/problems/storage-full");
    assert_eq!(bucket_state(&stack).await, state, "nothing half-written");
    assert_eq!(stack.snapshot().await, before);

    // Reads keep working.
    assert_eq!(stack.counts("A").await, (10, 0));
    let listed = stack.request("inventory.list", &json!({"limit": 5})).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let missing = stack.request("orders.get", &json!({"id": "nope"})).await;
    assert_eq!(missing.status, 404);

    // An operator deletes data (`nats stream purge KV_oms --subject ...`):
    // writes work again, and the refused order can be placed now.
    for i in 0..200 {
        bucket
            .purge()
            .filter(format!("$KV.oms.product.f{i}"))
            .await
            .unwrap();
    }
    let placed = stack.request("orders.create", &order).await;
    assert_eq!(placed.status, 200, "{:?}", placed.body);
    assert_eq!(stack.counts("A").await, (7, 3));
}

#[tokio::test]
async fn orders_past_the_reply_limit_list_completely_across_pages() {
    let stack = Stack::start(&[
        "inventory-add-stock",
        "inventory-reserve",
        "orders-create",
        "orders-list",
    ])
    .await;
    // 100 items with 64-character product ids: ~11 KB an order, so 100 of
    // them (one default page) pass the server's 1 MB max_payload.
    let max_payload = stack.client.server_info().max_payload;
    assert_eq!(max_payload, 1024 * 1024);
    let products: Vec<String> = (0..100)
        .map(|i| format!("p{i:03}-{}", "x".repeat(59)))
        .collect();
    for product in &products {
        stack.add_stock(product, 1000, 12345.67).await;
    }
    let items: Vec<Value> = products
        .iter()
        .map(|p| json!({"productId": p, "quantity": 1}))
        .collect();
    let mut created = HashSet::new();
    for round in 0..15 {
        let replies = futures::future::join_all((0..8).map(|i| {
            let body = json!({"customerId": format!("c-{round}-{i}"), "items": items});
            let client = stack.client.clone();
            async move { testkit::request(&client, "orders.create", &body).await }
        }))
        .await;
        for reply in replies {
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            created.insert(reply.body["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(created.len(), 120);
    let first = stack.request("orders.list", &json!({"limit": 1})).await;
    let one_order = first.body["items"][0].to_string().len();
    assert!(100 * one_order > max_payload, "a page of 100 would fit");

    for limit in [None, Some(1000)] {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut ask = json!({});
            if let Some(limit) = limit {
                ask["limit"] = json!(limit);
            }
            if let Some(cursor) = &cursor {
                ask["cursor"] = json!(cursor);
            }
            let page = stack.request("orders.list", &ask).await;
            assert_eq!(page.status, 200, "page {pages}: {:?}", page.body);
            let items = page.body["items"].as_array().unwrap();
            assert!(!items.is_empty());
            assert!(page.body.to_string().len() <= max_payload);
            seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_string()));
            pages += 1;
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert!(pages >= 2, "{limit:?}: one page of {}", seen.len());
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{limit:?}: an order twice");
        assert_eq!(unique, created, "{limit:?}: every order once");
    }
}

#[tokio::test]
async fn a_reservation_slower_than_the_deadline_stores_no_order_and_a_retry_makes_one() {
    let mut stack = Stack::start(&[
        "inventory-add-stock",
        "inventory-get",
        "orders-create",
        "orders-get",
    ])
    .await;
    // Every reservation stalls 3 s right before its write.
    stack.spawn_with(
        "inventory-reserve",
        &[("OMS_FAULTS", "group.before-write=sleep:3000")],
    );
    stack.wait_for("inventory-reserve", 1).await;
    stack.add_stock("A", 10, 1.0).await;
    let body = order_body(json!([{"productId": "A", "quantity": 2}]), "k-late");
    let id = keyed_order_id(None, "k-late");

    // The caller waits 1 s; orders-create gives up then, and says 504.
    let started = Instant::now();
    let late = request_with(
        &stack,
        "orders.create",
        &body,
        deadline_in(1000),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(late.status, 504, "{:?}", late.body);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    // Well after the stalled reservation woke up: it wrote nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let found = stack.request("orders.get", &json!({"id": id})).await;
    assert_eq!(found.status, 404, "{:?}", found.body);
    assert_eq!(stack.counts("A").await, (10, 0));

    // The client retries with its key and time to wait: exactly one order.
    for _ in 0..2 {
        let retry = request_with(
            &stack,
            "orders.create",
            &body,
            deadline_in(10_000),
            Duration::from_secs(12),
        )
        .await;
        assert_eq!(retry.status, 200, "{:?}", retry.body);
        assert_eq!(retry.body["id"], id.as_str());
    }
    assert_eq!(stack.counts("A").await, (8, 2), "stock taken once");
    let orders: Vec<_> = stack
        .snapshot()
        .await
        .into_iter()
        .filter(|(key, _)| key.starts_with("order."))
        .collect();
    assert_eq!(orders.len(), 1, "{orders:?}");

    // Work already past its deadline is not started; a malformed one is a 400.
    let state = bucket_state(&stack).await;
    let stock = json!({"productId": "B", "quantity": 1, "price": 1});
    let past = request_with(
        &stack,
        "inventory.add-stock",
        &stock,
        deadline_in(-1),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(past.status, 504, "{:?}", past.body);
    let mut garbled = HeaderMap::new();
    garbled.insert("Oms-Deadline", "tomorrow");
    let bad = request_with(
        &stack,
        "inventory.add-stock",
        &stock,
        garbled,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert_eq!(bucket_state(&stack).await, state);
}

/// Dead letters stored under `subject`, with their headers and sequence.
async fn dead_letters(stack: &Stack, subject: &str) -> Vec<(u64, HeaderMap, bytes::Bytes)> {
    let js = jetstream::new(stack.client.clone());
    let Ok(mut stream) = js.get_stream("OMS_DLQ").await else {
        return Vec::new();
    };
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut found = Vec::new();
    for sequence in 1..=last {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            if message.subject.as_str() == subject {
                found.push((sequence, message.headers, message.payload));
            }
        }
    }
    found
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.as_str())
}

#[tokio::test]
async fn a_hold_that_cannot_be_released_is_dead_lettered_and_a_replay_releases_it_once() {
    let mut stack = Stack::start_with_env(
        &["inventory-add-stock", "inventory-get", "inventory-reserve"],
        &[("OMS_HOLD_TTL", "1"), ("OMS_MAX_DELIVER", "3")],
    )
    .await;
    // No inventory-release runs: every release of an expired hold fails.
    stack.spawn("inventory-holds");
    stack.add_stock("A", 10, 1.0).await;
    let hold = json!({"orderId": "hold-1", "items": [{"productId": "A", "quantity": 4}]});
    assert_eq!(stack.request("inventory.reserve", &hold).await.status, 200);
    assert_eq!(stack.counts("A").await, (6, 4));

    let subject = "dlq.KV_oms.inventory-holds";
    eventually(40, "the hold dead-lettered", || async {
        !dead_letters(&stack, subject).await.is_empty()
    })
    .await;
    let js = jetstream::new(stack.client.clone());
    let kv = js.get_key_value("oms").await.unwrap();
    let held = kv.entry("reservation.hold-1").await.unwrap().unwrap();
    let letters = dead_letters(&stack, subject).await;
    assert_eq!(letters.len(), 1);
    let (sequence, headers, payload) = &letters[0];
    assert_eq!(header(headers, "Oms-Dlq-Deliveries"), "3");
    assert!(
        header(headers, "Oms-Dlq-Reason").starts_with("failed 3 deliveries"),
        "{headers:?}"
    );
    assert_eq!(header(headers, "Oms-Dlq-Stream"), "KV_oms");
    assert_eq!(
        header(headers, "Oms-Dlq-Subject"),
        "$KV.oms.reservation.hold-1"
    );
    assert_eq!(
        header(headers, "Oms-Dlq-Sequence"),
        held.revision.to_string()
    );
    assert_eq!(payload, &held.value);
    // Given up on, not retried for ever: nothing outstanding, stock still held.
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_stream("KV_oms")
        .await
        .unwrap()
        .get_consumer("inventory-holds")
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    assert_eq!(stack.counts("A").await, (6, 4));

    // The release is back; the operator replays the letter as the README
    // says: the same value again, expecting the revision it had.
    stack.spawn("inventory-release");
    stack.wait_for("inventory-release", 1).await;
    let replay = || async {
        let mut replay = HeaderMap::new();
        replay.insert(
            "Nats-Expected-Last-Subject-Sequence",
            header(headers, "Oms-Dlq-Sequence"),
        );
        js.publish_with_headers(
            header(headers, "Oms-Dlq-Subject").to_string(),
            replay,
            payload.clone(),
        )
        .await
        .unwrap()
        .await
    };
    replay().await.expect("the replay is stored");
    js.get_stream("OMS_DLQ")
        .await
        .unwrap()
        .delete_message(*sequence)
        .await
        .unwrap();
    eventually(20, "the replayed hold released", || async {
        stack.counts("A").await == (10, 0)
    })
    .await;
    // A second replay of the same letter is refused: the hold has moved on.
    assert!(replay().await.is_err(), "a stale replay is stored");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.counts("A").await, (10, 0), "released once");
    let released = kv.entry("reservation.hold-1").await.unwrap().unwrap();
    let released: Value = serde_json::from_slice(&released.value).unwrap();
    assert_eq!(released["state"], "RELEASED");
    assert!(dead_letters(&stack, subject).await.is_empty());
}

#[tokio::test]
async fn malformed_records_are_dead_lettered_at_once_and_events_go_on() {
    let mut stack = Stack::start(&["inventory-add-stock", "inventory-reserve"]).await;
    stack.spawn("inventory-holds");
    stack.spawn("orders-events");
    let js = jetstream::new(stack.client.clone());
    let kv = js.get_key_value("oms").await.unwrap();
    kv.put("reservation.junk", "not a hold".into())
        .await
        .unwrap();
    kv.put("order.junk", "{\"id\":7}".into()).await.unwrap();
    stack.add_stock("A", 10, 1.0).await;
    let order = json!({"orderId": "o-after", "items": [{"productId": "A", "quantity": 1}], "customerId": "c"});
    assert_eq!(stack.request("inventory.reserve", &order).await.status, 200);

    for (subject, key, reason) in [
        (
            "dlq.KV_oms.inventory-holds",
            "reservation.junk",
            "not a hold",
        ),
        ("dlq.KV_oms.OMS_EVENTS", "order.junk", "not an order"),
    ] {
        eventually(20, subject, || async {
            !dead_letters(&stack, subject).await.is_empty()
        })
        .await;
        let letters = dead_letters(&stack, subject).await;
        assert_eq!(letters.len(), 1, "{subject}");
        let (_, headers, _) = &letters[0];
        assert!(
            header(headers, "Oms-Dlq-Reason").starts_with(reason),
            "{headers:?}"
        );
        assert_eq!(header(headers, "Oms-Dlq-Subject"), format!("$KV.oms.{key}"));
        assert_eq!(header(headers, "Oms-Dlq-Deliveries"), "1");
    }
    // The chain of events went on past the bad order.
    let events = stack.quiet_events().await;
    let ids: Vec<_> = events.iter().map(|e| e.2["orderId"].clone()).collect();
    assert_eq!(ids, [json!("o-after")]);
    // Nothing is retried: the holds consumer has nothing outstanding.
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_stream("KV_oms")
        .await
        .unwrap()
        .get_consumer("inventory-holds")
        .await
        .unwrap();
    let mut subjects = js
        .get_stream("OMS_DLQ")
        .await
        .unwrap()
        .info_with_subjects("dlq.>")
        .await
        .unwrap();
    let mut counted = 0;
    while let Some(Ok((_, count))) = subjects.next().await {
        counted += count;
    }
    assert_eq!(counted, 2);
    assert_eq!(consumer.info().await.unwrap().num_ack_pending, 0);
}
