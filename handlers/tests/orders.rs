//! Orders and reservations end to end: real nats-server, real binaries.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use testkit::{eventually, request, request_raw, Stack};

const ORDERS: [&str; 9] = [
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

/// The services plus the two workers (which do not answer PING).
async fn start(extra_env: &[(&str, &str)]) -> Stack {
    let mut stack = Stack::start_with_env(&ORDERS, extra_env).await;
    stack.spawn("orders-events");
    stack.spawn("inventory-holds");
    stack
}

async fn product(stack: &Stack, id: &str) -> (u64, u64) {
    stack.counts(id).await
}

async fn order(stack: &Stack, items: Value) -> testkit::Reply {
    stack
        .request(
            "orders.create",
            &json!({"customerId": "c-1", "items": items}),
        )
        .await
}

async fn set_status(stack: &Stack, id: &str, status: &str) -> testkit::Reply {
    stack
        .request("orders.update-status", &json!({"id": id, "status": status}))
        .await
}

#[tokio::test]
async fn an_order_reserves_stock_at_exact_prices() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 19.99).await;
    stack.add_stock("B", 5, 0.01).await;
    let created = order(
        &stack,
        json!([{"productId": "A", "quantity": 3}, {"productId": "B", "quantity": 1}]),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let body = &created.body;
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["customerId"], "c-1");
    assert_eq!(
        body["totalAmount"], 59.98,
        "3 x 19.99 + 0.01, no float drift"
    );
    assert_eq!(
        body["items"][0],
        json!({"productId": "A", "quantity": 3, "price": 19.99})
    );
    assert_eq!(product(&stack, "A").await, (7, 3));
    assert_eq!(product(&stack, "B").await, (4, 1));

    let id = body["id"].as_str().unwrap();
    let got = stack.request("orders.get", &json!({"id": id})).await;
    assert_eq!(got.body, created.body);
    let missing = stack.request("orders.get", &json!({"id": "nope"})).await;
    assert_eq!(missing.status, 404);

    let unknown = order(
        &stack,
        json!([{"productId": "A", "quantity": 1}, {"productId": "ghost", "quantity": 1}]),
    )
    .await;
    assert_eq!(unknown.status, 422, "{:?}", unknown.body);
    assert_eq!(unknown.pointers(), vec!["/items/1/productId"]);
    let short = order(
        &stack,
        json!([{"productId": "A", "quantity": 8}, {"productId": "B", "quantity": 1}]),
    )
    .await;
    assert_eq!(short.status, 409);
    assert_eq!(
        short.body["items"],
        json!([{"productId": "A", "requested": 8, "available": 7}])
    );
    assert_eq!(
        product(&stack, "A").await,
        (7, 3),
        "failed orders reserve nothing"
    );
    assert_eq!(product(&stack, "B").await, (4, 1));
}

#[tokio::test]
async fn a_hundred_buyers_of_ten_units_get_exactly_ten() {
    let mut stack = start(&[]).await;
    stack.spawn("orders-create");
    stack.spawn("inventory-reserve");
    stack.wait_for("orders-create", 2).await;
    stack.wait_for("inventory-reserve", 2).await;
    stack.add_stock("last", 10, 5.0).await;
    let buyers: Vec<_> = (0..100)
        .map(|i| {
            let client = stack.client.clone();
            tokio::spawn(async move {
                let body = json!({"customerId": format!("c{i}"), "items": [{"productId": "last", "quantity": 1}]});
                request(&client, "orders.create", &body).await.status
            })
        })
        .collect();
    let mut statuses = HashMap::new();
    for buyer in buyers {
        *statuses.entry(buyer.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&10), "{statuses:?}");
    assert_eq!(statuses.get(&409), Some(&90), "{statuses:?}");
    assert_eq!(product(&stack, "last").await, (0, 10));
}

#[tokio::test]
async fn all_or_nothing_when_one_item_runs_out() {
    let stack = start(&[]).await;
    stack.add_stock("A", 5, 1.0).await;
    stack.add_stock("B", 1, 1.0).await;
    let buyers: Vec<_> = (0..20)
        .map(|_| {
            let client = stack.client.clone();
            tokio::spawn(async move {
                let items =
                    json!([{"productId": "A", "quantity": 1}, {"productId": "B", "quantity": 1}]);
                request(
                    &client,
                    "orders.create",
                    &json!({"customerId": "c", "items": items}),
                )
                .await
                .status
            })
        })
        .collect();
    let mut ok = 0;
    for buyer in buyers {
        if buyer.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(product(&stack, "A").await, (4, 1));
    assert_eq!(product(&stack, "B").await, (0, 1));
}

#[tokio::test]
async fn retries_are_applied_once() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 2.5).await;
    let reserve = json!({"orderId": "o-1", "items": [{"productId": "A", "quantity": 2}]});
    let first = stack.request("inventory.reserve", &reserve).await;
    let second = stack.request("inventory.reserve", &reserve).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(second.body, first.body);
    assert_eq!(product(&stack, "A").await, (8, 2), "reserved once");
    let other = stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "o-1", "items": [{"productId": "A", "quantity": 3}]}),
        )
        .await;
    assert_eq!(other.status, 409);
    assert_eq!(product(&stack, "A").await, (8, 2));

    let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}], "idempotencyKey": "k-1"});
    let a = stack.request("orders.create", &body).await;
    let b = stack.request("orders.create", &body).await;
    assert_eq!(a.status, 200);
    assert_eq!(b.body, a.body, "same key, same order");
    assert_eq!(product(&stack, "A").await, (7, 3));
    let changed = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 2}], "idempotencyKey": "k-1"});
    let c = stack.request("orders.create", &changed).await;
    assert_eq!(c.status, 422, "{:?}", c.body);
    assert_eq!(product(&stack, "A").await, (7, 3));
    let id = a.body["id"].as_str().unwrap();
    let events = stack.quiet_events().await;
    assert_eq!(events.iter().filter(|e| e.2["orderId"] == id).count(), 1);
}

#[tokio::test]
async fn the_status_machine_moves_stock() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 1.0).await;
    let new_order = || async {
        order(&stack, json!([{"productId": "A", "quantity": 2}]))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // PENDING -> CONFIRMED -> COMPLETED: reserved drops (sold).
    let sold = new_order().await;
    assert_eq!(set_status(&stack, &sold, "CONFIRMED").await.status, 200);
    let same = set_status(&stack, &sold, "CONFIRMED").await;
    assert_eq!(same.status, 200, "same status is a no-op");
    assert_eq!(same.body["status"], "CONFIRMED");
    for illegal in ["PENDING"] {
        assert_eq!(set_status(&stack, &sold, illegal).await.status, 409);
    }
    let done = set_status(&stack, &sold, "COMPLETED").await;
    assert_eq!(done.body["status"], "COMPLETED");
    assert_eq!(done.body["previousStatus"], "CONFIRMED");
    for illegal in ["PENDING", "CONFIRMED", "CANCELLED"] {
        assert_eq!(
            set_status(&stack, &sold, illegal).await.status,
            409,
            "COMPLETED -> {illegal}"
        );
    }
    assert_eq!(product(&stack, "A").await, (8, 0), "sold with the reply");

    // PENDING -> CANCELLED: stock back to quantity.
    let cancelled = new_order().await;
    assert_eq!(product(&stack, "A").await, (6, 2));
    assert_eq!(
        set_status(&stack, &cancelled, "COMPLETED").await.status,
        409,
        "PENDING -> COMPLETED"
    );
    assert_eq!(
        set_status(&stack, &cancelled, "CANCELLED").await.status,
        200
    );
    for illegal in ["PENDING", "CONFIRMED", "COMPLETED"] {
        assert_eq!(
            set_status(&stack, &cancelled, illegal).await.status,
            409,
            "CANCELLED -> {illegal}"
        );
    }
    assert_eq!(
        product(&stack, "A").await,
        (8, 0),
        "released with the reply"
    );

    // CONFIRMED -> CANCELLED also releases.
    let late = new_order().await;
    assert_eq!(set_status(&stack, &late, "CONFIRMED").await.status, 200);
    assert_eq!(set_status(&stack, &late, "CANCELLED").await.status, 200);
    assert_eq!(product(&stack, "A").await, (8, 0), "released after confirm");
    assert_eq!(
        set_status(&stack, "no-such-order", "CONFIRMED")
            .await
            .status,
        404
    );

    // Events: one per change, none for the repeated CONFIRMED.
    let all = stack.quiet_events().await;
    assert_eq!(all.len(), 3 + 2 + 3);
    // Every event matches its published schema.
    let schema = oms_runtime::schema::Schema::compile(oms_runtime::contract::schemas::schema(
        "order-event.json",
    ));
    for event in &all {
        assert_eq!(schema.check(&event.2), Ok(()), "{}", event.2);
    }
    let of = |id: &str| -> Vec<String> {
        all.iter()
            .filter(|e| e.2["orderId"] == id)
            .map(|e| format!("{} {}", e.0, e.2["status"]))
            .collect()
    };
    assert_eq!(
        of(&sold),
        vec![
            "events.orders.created \"PENDING\"",
            "events.orders.status-updated \"CONFIRMED\"",
            "events.orders.status-updated \"COMPLETED\"",
        ]
    );
    assert_eq!(of(&cancelled).len(), 2);
    let mut ids: Vec<_> = all.iter().map(|e| e.1.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "Nats-Msg-Id is unique");
    assert!(all
        .iter()
        .all(|e| e.1.starts_with(e.2["orderId"].as_str().unwrap())));
}

#[tokio::test]
async fn concurrent_final_updates_have_one_winner() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 1.0).await;
    let created = order(&stack, json!([{"productId": "A", "quantity": 1}])).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(set_status(&stack, &id, "CONFIRMED").await.status, 200);
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let client = stack.client.clone();
            let id = id.clone();
            let status = if i % 2 == 0 { "COMPLETED" } else { "CANCELLED" };
            tokio::spawn(async move {
                let reply = request(
                    &client,
                    "orders.update-status",
                    &json!({"id": id, "status": status}),
                )
                .await;
                (
                    reply.status,
                    reply.body["status"].as_str().map(String::from),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for racer in racers {
        results.push(racer.await.unwrap());
    }
    let final_status = stack.request("orders.get", &json!({"id": id})).await.body["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(final_status == "COMPLETED" || final_status == "CANCELLED");
    for (status, body_status) in &results {
        match status {
            // The winner, or a later no-op of the same status.
            200 => assert_eq!(body_status.as_deref(), Some(final_status.as_str())),
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(results.iter().any(|r| r.0 == 409), "losers get 409");
    let updates = stack
        .quiet_events()
        .await
        .into_iter()
        .filter(|e| e.2["orderId"] == id.as_str() && e.0 == "events.orders.status-updated")
        .count();
    assert_eq!(updates, 2, "CONFIRMED and the one final status");
    let want = if final_status == "COMPLETED" {
        (9, 0)
    } else {
        (10, 0)
    };
    assert_eq!(product(&stack, "A").await, want, "stock settled once");
}

#[tokio::test]
async fn a_hold_without_an_order_is_released() {
    let stack = start(&[("OMS_HOLD_TTL", "1")]).await;
    stack.add_stock("A", 10, 1.0).await;
    // A reservation whose order is never stored (the creator "died").
    let held = stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "orphan", "items": [{"productId": "A", "quantity": 4}]}),
        )
        .await;
    assert_eq!(held.body["state"], "HELD");
    // An order holds its own stock: no timer applies to it.
    let kept = order(&stack, json!([{"productId": "A", "quantity": 1}])).await;
    assert_eq!(kept.status, 200);
    assert_eq!(product(&stack, "A").await, (5, 5));
    let kept_id = kept.body["id"].as_str().unwrap();
    let kv = async_nats::jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await
        .unwrap();
    assert!(kv
        .get(format!("reservation.{kept_id}"))
        .await
        .unwrap()
        .is_none());
    eventually(15, "orphan released", || async {
        product(&stack, "A").await == (9, 1)
    })
    .await;
    let replay = stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "orphan", "items": [{"productId": "A", "quantity": 4}]}),
        )
        .await;
    assert_eq!(
        replay.body["state"], "RELEASED",
        "a replay does not reserve again"
    );
    assert_eq!(product(&stack, "A").await, (9, 1));
}

#[tokio::test]
async fn operators_release_holds_and_settle_orders_by_moving_them() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 1.0).await;
    // A hold made without an order: released, again and again the same.
    stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "op-1", "items": [{"productId": "A", "quantity": 3}]}),
        )
        .await;
    assert_eq!(product(&stack, "A").await, (7, 3));
    for _ in 0..2 {
        let released = stack
            .request("inventory.release", &json!({"orderId": "op-1"}))
            .await;
        assert_eq!(released.status, 200, "{:?}", released.body);
        assert_eq!(released.body["state"], "RELEASED");
        assert_eq!(product(&stack, "A").await, (10, 0));
    }
    let none = json!({"orderId": "none"});
    assert_eq!(stack.request("inventory.release", &none).await.status, 404);
    assert_eq!(stack.request("inventory.commit", &none).await.status, 404);

    // An order holds its own stock: committing it means completing it,
    // which a PENDING order cannot be; releasing it means cancelling it.
    let open = order(&stack, json!([{"productId": "A", "quantity": 2}])).await;
    let id = open.body["id"].as_str().unwrap();
    let by_id = json!({"orderId": id});
    let refused = stack.request("inventory.commit", &by_id).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(product(&stack, "A").await, (8, 2));
    let released = stack.request("inventory.release", &by_id).await;
    assert_eq!(released.status, 200, "{:?}", released.body);
    assert_eq!(released.body["state"], "RELEASED");
    assert_eq!(released.body["order"]["status"], "CANCELLED");
    assert_eq!(product(&stack, "A").await, (10, 0), "with the reply");
    let stored = stack.request("orders.get", &json!({"id": id})).await;
    assert_eq!(stored.body["status"], "CANCELLED");

    let sold = order(&stack, json!([{"productId": "A", "quantity": 4}])).await;
    let id = sold.body["id"].as_str().unwrap();
    set_status(&stack, id, "CONFIRMED").await;
    for _ in 0..2 {
        let committed = stack
            .request("inventory.commit", &json!({"orderId": id}))
            .await;
        assert_eq!(committed.status, 200, "{:?}", committed.body);
        assert_eq!(committed.body["state"], "COMMITTED");
        assert_eq!(committed.body["order"]["status"], "COMPLETED");
        assert_eq!(product(&stack, "A").await, (6, 0), "sold once");
    }
    // A stale revision changes nothing.
    let stale = json!({"orderId": id, "expectedRevision": 1});
    let cancelled = stack.request("inventory.release", &stale).await;
    assert_eq!(cancelled.status, 409, "{:?}", cancelled.body);
    assert_eq!(product(&stack, "A").await, (6, 0));
}

#[tokio::test]
async fn lists_filter_and_page_newest_first() {
    let stack = start(&[]).await;
    stack.add_stock("A", 100, 1.0).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let customer = if i % 3 == 0 { "alice" } else { "bob" };
        let reply = stack
            .request(
                "orders.create",
                &json!({"customerId": customer, "items": [{"productId": "A", "quantity": 1}]}),
            )
            .await;
        ids.push(reply.body["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for id in &ids[..3] {
        set_status(&stack, id, "CONFIRMED").await;
    }
    eventually(10, "index caught up", || async {
        let page = stack
            .request("orders.list", &json!({"status": "CONFIRMED"}))
            .await;
        page.body["items"].as_array().unwrap().len() == 3
    })
    .await;
    // Every order once, newest first, 5 at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({"limit": 5});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = stack.request("orders.list", &body).await;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string()),
        );
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.into()),
            None => break,
        }
    }
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let alice = stack
        .request("orders.list", &json!({"customerId": "alice"}))
        .await;
    assert_eq!(alice.body["items"].as_array().unwrap().len(), 4);
    let alice_confirmed = stack
        .request(
            "orders.list",
            &json!({"customerId": "alice", "status": "CONFIRMED"}),
        )
        .await;
    assert_eq!(alice_confirmed.body["items"].as_array().unwrap().len(), 1);
    let pending = stack
        .request("orders.list", &json!({"status": "PENDING", "limit": 1000}))
        .await;
    assert_eq!(pending.body["items"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn bad_order_requests_change_nothing() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 1.0).await;
    let id = order(&stack, json!([{"productId": "A", "quantity": 1}]))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = stack.snapshot().await;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("orders.create", "{".into(), 400, ""),
        ("orders.create", r#"{"items":[{"productId":"A","quantity":1}]}"#.into(), 400, "/customerId"),
        ("orders.create", r#"{"customerId":"","items":[{"productId":"A","quantity":1}]}"#.into(), 400, "/customerId"),
        ("orders.create", format!(r#"{{"customerId":"{}","items":[{{"productId":"A","quantity":1}}]}}"#, "x".repeat(129)), 400, "/customerId"),
        ("orders.create", r#"{"customerId":"c","items":[]}"#.into(), 400, "/items"),
        ("orders.create", r#"{"customerId":"c","items":[{"productId":"A","quantity":0}]}"#.into(), 400, "/items/0/quantity"),
        ("orders.create", r#"{"customerId":"c","items":[{"productId":"A","quantity":1,"price":1}]}"#.into(), 400, "/items/0/price"),
        ("orders.create", r#"{"customerId":"c","items":[{"productId":"A","quantity":1},{"productId":"A","quantity":1}]}"#.into(), 400, "/items/1/productId"),
        ("orders.create", r#"{"customerId":"c","items":[{"productId":"A","quantity":1}],"status":"PAID"}"#.into(), 400, "/status"),
        ("orders.create", r#"{"customerId":"c","items":[{"productId":"ghost","quantity":1}]}"#.into(), 422, "/items/0/productId"),
        ("orders.create", r#"{"customerId":"c","items":[{"productId":"A","quantity":11}]}"#.into(), 409, ""),
        ("orders.update-status", format!(r#"{{"id":"{id}","status":"SHIPPED"}}"#), 400, "/status"),
        ("orders.update-status", format!(r#"{{"id":"{id}"}}"#), 400, "/status"),
        ("orders.update-status", format!(r#"{{"id":"{id}","status":"COMPLETED"}}"#), 409, ""),
        ("orders.update-status", r#"{"id":"missing","status":"CONFIRMED"}"#.into(), 404, ""),
        ("inventory.reserve", r#"{"orderId":"x","items":[{"productId":"A","quantity":-1}]}"#.into(), 400, "/items/0/quantity"),
        ("inventory.reserve", r#"{"orderId":"has space","items":[{"productId":"A","quantity":1}]}"#.into(), 400, "/orderId"),
        ("orders.get", r#"{"id":"a.b"}"#.into(), 400, "/id"),
        ("orders.list", r#"{"status":"LOST"}"#.into(), 400, "/status"),
    ];
    for (subject, payload, status, pointer) in &cases {
        let reply = request_raw(&stack.client, subject, payload.clone()).await;
        assert_eq!(
            reply.status, *status,
            "{subject} {payload}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["status"], *status);
        if !pointer.is_empty() {
            assert!(
                reply.pointers().iter().any(|p| p == pointer),
                "{payload}: {:?}",
                reply.pointers()
            );
        }
    }
    assert_eq!(stack.snapshot().await, before, "bad requests changed KV");
}

#[tokio::test]
async fn concurrent_duplicates_of_one_reservation_reserve_once() {
    let stack = start(&[]).await;
    stack.add_stock("A", 100, 1.0).await;
    stack.add_stock("B", 100, 1.0).await;
    // Ten identical requests at once (one group or several) and one that
    // reuses the order id with other items.
    let same = json!({"orderId": "dup", "items": [{"productId": "A", "quantity": 3}, {"productId": "B", "quantity": 1}]});
    let mut tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = stack.client.clone();
            let body = same.clone();
            tokio::spawn(async move { request(&client, "inventory.reserve", &body).await })
        })
        .collect();
    let client = stack.client.clone();
    tasks.push(tokio::spawn(async move {
        let other = json!({"orderId": "dup", "items": [{"productId": "A", "quantity": 7}]});
        request(&client, "inventory.reserve", &other).await
    }));
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    let first = &winners[0].body;
    assert!(
        winners.iter().all(|r| &r.body == first),
        "every success is the same reservation"
    );
    let (a, _) = product(&stack, "A").await;
    if first["items"].as_array().unwrap().len() == 2 {
        assert_eq!(winners.len(), 10);
        assert_eq!(a, 97, "reserved once");
        assert_eq!(product(&stack, "B").await, (99, 1));
    } else {
        assert_eq!(winners.len(), 1);
        assert_eq!(a, 93);
        assert_eq!(product(&stack, "B").await, (100, 0));
    }
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 409));
}

#[tokio::test]
async fn a_burst_of_expiring_holds_on_one_product_all_release() {
    let stack = start(&[("OMS_HOLD_TTL", "1")]).await;
    stack.add_stock("A", 1000, 1.0).await;
    // 150 reservations whose orders never come, all expiring together: far
    // more settles at once than a stream takes open batches.
    let holds: Vec<_> = (0..150)
        .map(|i| {
            let client = stack.client.clone();
            tokio::spawn(async move {
                let body = json!({"orderId": format!("orphan-{i}"), "items": [{"productId": "A", "quantity": 2}]});
                request(&client, "inventory.reserve", &body).await.status
            })
        })
        .collect();
    for hold in holds {
        assert_eq!(hold.await.unwrap(), 200);
    }
    assert_eq!(product(&stack, "A").await, (700, 300));
    eventually(30, "every orphan released", || async {
        product(&stack, "A").await == (1000, 0)
    })
    .await;
    // Meanwhile and after, orders still go through.
    let placed = order(&stack, json!([{"productId": "A", "quantity": 1}])).await;
    assert_eq!(placed.status, 200, "{:?}", placed.body);
}

#[tokio::test]
async fn the_money_edge_is_exact_or_a_clean_422() {
    let stack = start(&[]).await;
    // The largest price the schema takes, and one cent below it.
    stack.add_stock("MAX", 5, 1_000_000_000_000.0).await;
    stack.add_stock("NEAR", 8, 999_999_999_999.99).await;
    let one = order(&stack, json!([{"productId": "MAX", "quantity": 1}])).await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.body["totalAmount"], 1_000_000_000_000.0);
    let read = stack
        .request("orders.get", &json!({"id": one.body["id"]}))
        .await;
    assert_eq!(read.body, one.body, "the largest total reads back exactly");
    let before = stack.snapshot().await;
    for items in [
        json!([{"productId": "NEAR", "quantity": 2}]),
        json!([{"productId": "MAX", "quantity": 1}, {"productId": "NEAR", "quantity": 1}]),
    ] {
        let refused = order(&stack, items).await;
        assert_eq!(refused.status, 422, "{:?}", refused.body);
        assert_eq!(refused.body["type"], "/problems/amount-too-large");
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused order holds nothing"
    );
    assert_eq!(product(&stack, "NEAR").await, (8, 0));
}

#[tokio::test]
async fn concurrent_creates_with_one_key_make_one_order_and_a_refused_key_leaves_nothing() {
    let stack = start(&[]).await;
    stack.add_stock("A", 10, 1.0).await;
    let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 3}], "idempotencyKey": "same"});
    let racers: Vec<_> = (0..12)
        .map(|_| {
            let client = stack.client.clone();
            let body = body.clone();
            tokio::spawn(async move { request(&client, "orders.create", &body).await })
        })
        .collect();
    let mut ids = Vec::new();
    for racer in racers {
        let reply = racer.await.unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key");
    assert_eq!(product(&stack, "A").await, (7, 3), "stock taken once");

    // A keyed request that is refused (not enough stock) leaves no trace,
    // and the same key works once the stock is there.
    let before = stack.snapshot().await;
    let big = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 9}], "idempotencyKey": "later"});
    assert_eq!(stack.request("orders.create", &big).await.status, 409);
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused key leaves nothing"
    );
    stack.add_stock("A", 2, 1.0).await;
    let placed = stack.request("orders.create", &big).await;
    assert_eq!(placed.status, 200, "{:?}", placed.body);
}
