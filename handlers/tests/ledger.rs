//! The ledger: every write that changes a product records why
//! (`lastChange`, in the same write), and `inventory-ledger` derives one
//! entry per product revision from that, exactly once.

use serde_json::{json, Value};
use testkit::{eventually, Reply, Stack};

const SERVICES: [&str; 10] = [
    "inventory-adjust",
    "inventory-add-stock",
    "inventory-get",
    "inventory-reserve",
    "inventory-release",
    "inventory-commit",
    "orders-create",
    "orders-get",
    "orders-update-status",
    "inventory-check",
];

/// A request as the gateway sends it for `principal` (a staff member).
async fn as_principal(stack: &Stack, principal: &str, subject: &str, body: &Value) -> Reply {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Oms-Principal", principal);
    headers.insert("Oms-Roles", "staff");
    let message = stack
        .client
        .request_with_headers(subject.to_string(), headers, body.to_string().into())
        .await
        .expect("a reply");
    let headers = message.headers.clone().unwrap_or_default();
    let status = headers
        .get("Nats-Service-Error-Code")
        .map_or(200, |v| v.as_str().parse().unwrap());
    Reply {
        status,
        body: serde_json::from_slice(&message.payload).unwrap(),
        headers,
    }
}

async fn last_change(stack: &Stack, product: &str) -> Value {
    let got = stack
        .request("inventory.get", &json!({"productId": product}))
        .await;
    got.body["lastChange"].clone()
}

#[tokio::test]
async fn every_write_records_why_and_who() {
    let mut stack = Stack::start_with_env(&SERVICES, &[("OMS_HOLD_TTL", "1")]).await;
    stack.spawn("inventory-holds");

    // add-stock: by the principal, ref the requestId.
    let added = as_principal(
        &stack,
        "alice",
        "inventory.add-stock",
        &json!({"productId": "A", "quantity": 10, "price": 1.0, "requestId": "restock-1"}),
    )
    .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(
        added.body["lastChange"],
        json!({"seq": 1, "reason": "add-stock", "ref": "restock-1", "actor": "alice", "quantityDelta": 10, "reservedDelta": 0})
    );
    // Without a principal: the handler's NATS user.
    stack.add_stock("A", 5, 1.0).await;
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 2, "reason": "add-stock", "actor": "inventory-add-stock", "quantityDelta": 5, "reservedDelta": 0})
    );

    // An order: reserve names the order and the principal that created it
    // (orders-create passes it on as Oms-Actor).
    let created = as_principal(
        &stack,
        "bob",
        "orders.create",
        &json!({"customerId": "c-1", "items": [{"productId": "A", "quantity": 3}]}),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 3, "reason": "reserve", "ref": id, "actor": "bob", "quantityDelta": -3, "reservedDelta": 3})
    );
    // Confirmed (no stock moves, the product keeps its change), then sold.
    for status in ["CONFIRMED", "COMPLETED"] {
        let moved = as_principal(
            &stack,
            "carol",
            "orders.update-status",
            &json!({"id": id, "status": status}),
        )
        .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);
    }
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 4, "reason": "sell", "ref": id, "actor": "carol", "quantityDelta": 0, "reservedDelta": -3})
    );

    // Cancelled: released.
    let second = stack
        .request(
            "orders.create",
            &json!({"customerId": "c-1", "items": [{"productId": "A", "quantity": 2}]}),
        )
        .await;
    let second = second.body["id"].as_str().unwrap().to_string();
    stack
        .request(
            "orders.update-status",
            &json!({"id": second, "status": "CANCELLED"}),
        )
        .await;
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 6, "reason": "release", "ref": second, "actor": "orders-update-status", "quantityDelta": 2, "reservedDelta": -2})
    );

    // A hold without an order runs out: expire, by the holds worker.
    stack
        .request(
            "inventory.reserve",
            &json!({"orderId": "hold-1", "items": [{"productId": "A", "quantity": 4}]}),
        )
        .await;
    eventually(10, "the hold expired", || async {
        last_change(&stack, "A").await["reason"] == "expire"
    })
    .await;
    assert_eq!(
        last_change(&stack, "A").await,
        json!({"seq": 8, "reason": "expire", "ref": "hold-1", "actor": "inventory-holds", "quantityDelta": 4, "reservedDelta": -4})
    );
    assert_eq!(stack.counts("A").await, (12, 0));

    // `expire` is for releases only.
    let refused = stack
        .request(
            "inventory.commit",
            &json!({"orderId": second, "expire": true}),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.pointers(), ["/expire"]);
}

/// The ledger's entries of one product, without `at` (a time) and
/// `revision` (checked against the bucket separately).
fn of_product(entries: &[Value], product: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e["productId"] == product)
        .map(|e| {
            let mut e = e.clone();
            let object = e.as_object_mut().unwrap();
            object.remove("at");
            object.remove("revision");
            object.remove("productId");
            e
        })
        .collect()
}

/// Every revision of the bucket's product keys, in order: what the ledger
/// must hold, one entry each.
async fn product_revisions(stack: &Stack) -> Vec<(String, u64)> {
    use futures::StreamExt;
    let kv = async_nats::jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut history = kv.watch_from_revision("product.>", 1).await.unwrap();
    while let Some(entry) = history.next().await {
        let entry = entry.unwrap();
        out.push((entry.key["product.".len()..].to_string(), entry.revision));
        if entry.delta == 0 {
            break;
        }
    }
    out
}

/// Each entry's (productId, revision) and its `Nats-Msg-Id`, in stream order.
async fn ledger_ids(stack: &Stack) -> Vec<((String, u64), String)> {
    stack
        .stream_messages("OMS_LEDGER")
        .await
        .into_iter()
        .map(|(subject, id, body)| {
            let product = body["productId"].as_str().unwrap().to_string();
            assert_eq!(subject, format!("ledger.{product}"));
            ((product, body["revision"].as_u64().unwrap()), id)
        })
        .collect()
}

#[tokio::test]
async fn a_known_sequence_gives_exactly_its_entries_and_they_sum_to_the_counts() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-ledger");
    stack.add_stock("A", 10, 1.0).await;
    stack.add_stock("B", 1, 2.0).await;
    let counted = stack
        .request(
            "inventory.adjust",
            &json!({"productId": "A", "delta": -1, "reason": "count", "note": "one missing"}),
        )
        .await;
    assert_eq!(counted.status, 200, "{:?}", counted.body);
    let create = |quantity: u64| json!({"customerId": "c", "items": [{"productId": "A", "quantity": quantity}]});
    let o1 = stack.request("orders.create", &create(3)).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = |id: &str, status: &str| json!({"id": id, "status": status});
    stack
        .request("orders.update-status", &status(&o1, "CANCELLED"))
        .await;
    let o2 = stack.request("orders.create", &create(4)).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    for step in ["CONFIRMED", "COMPLETED"] {
        let moved = stack
            .request("orders.update-status", &status(&o2, step))
            .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);
    }

    let entries = stack.quiet_ledger().await;
    let schema =
        oms_runtime::schema::Schema::compile(include_str!("../../schemas/ledger-entry.json"));
    for entry in &entries {
        assert_eq!(schema.check(entry), Ok(()), "{entry}");
    }
    let actor = |a: &str| Value::from(a);
    let want = [
        json!({"seq": 1, "reason": "add-stock", "actor": actor("inventory-add-stock"), "quantityDelta": 10, "reservedDelta": 0, "quantityAfter": 10, "reservedAfter": 0}),
        json!({"seq": 2, "reason": "count", "note": "one missing", "actor": actor("inventory-adjust"), "quantityDelta": -1, "reservedDelta": 0, "quantityAfter": 9, "reservedAfter": 0}),
        json!({"seq": 3, "reason": "reserve", "ref": o1, "actor": actor("orders-create"), "quantityDelta": -3, "reservedDelta": 3, "quantityAfter": 6, "reservedAfter": 3}),
        json!({"seq": 4, "reason": "release", "ref": o1, "actor": actor("orders-update-status"), "quantityDelta": 3, "reservedDelta": -3, "quantityAfter": 9, "reservedAfter": 0}),
        json!({"seq": 5, "reason": "reserve", "ref": o2, "actor": actor("orders-create"), "quantityDelta": -4, "reservedDelta": 4, "quantityAfter": 5, "reservedAfter": 4}),
        json!({"seq": 6, "reason": "sell", "ref": o2, "actor": actor("orders-update-status"), "quantityDelta": 0, "reservedDelta": -4, "quantityAfter": 5, "reservedAfter": 0}),
    ];
    assert_eq!(of_product(&entries, "A"), want);
    assert_eq!(of_product(&entries, "B").len(), 1);

    // Summed, the entries give today's counts.
    for product in ["A", "B"] {
        let (quantity, reserved) = stack.counts(product).await;
        let sum = |field: &str| -> i64 {
            of_product(&entries, product)
                .iter()
                .map(|e| e[field].as_i64().unwrap())
                .sum()
        };
        assert_eq!(
            (sum("quantityDelta"), sum("reservedDelta")),
            (quantity as i64, reserved as i64),
            "{product}"
        );
    }

    // One entry per product revision, named by it.
    let ids = ledger_ids(&stack).await;
    let revisions: Vec<_> = ids.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(revisions, product_revisions(&stack).await);
    for ((product, revision), id) in &ids {
        assert_eq!(id, &format!("{product}:{revision}"));
    }
}

#[tokio::test]
async fn a_group_that_moves_one_product_for_many_orders_is_one_entry_with_its_parts() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-ledger");
    stack.add_stock("A", 100, 1.0).await;
    let buyers: Vec<_> = (0..32)
        .map(|_| {
            let client = stack.client.clone();
            tokio::spawn(async move {
                let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}]});
                testkit::request(&client, "orders.create", &body).await
            })
        })
        .collect();
    for buyer in buyers {
        assert_eq!(buyer.await.unwrap().status, 200);
    }
    let all = stack.quiet_ledger().await;
    let schema =
        oms_runtime::schema::Schema::compile(include_str!("../../schemas/ledger-entry.json"));
    for entry in &all {
        assert_eq!(schema.check(entry), Ok(()), "{entry}");
    }
    let entries = of_product(&all, "A");
    // One entry per revision, numbered without a gap.
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    let mut orders = 0;
    for entry in &entries[1..] {
        let parts = entry["parts"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![entry.clone()]);
        let sum: i64 = parts
            .iter()
            .map(|p| p["reservedDelta"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, entry["reservedDelta"].as_i64().unwrap(), "{entry}");
        assert!(parts
            .iter()
            .all(|p| p["reason"] == "reserve" && p["ref"].is_string()));
        orders += parts.len();
    }
    assert_eq!(orders, 32, "each order's change once");
    let last = entries.last().unwrap();
    assert_eq!(
        (
            last["quantityAfter"].as_u64(),
            last["reservedAfter"].as_u64()
        ),
        (Some(68), Some(32))
    );
    eprintln!("32 orders in {} revisions", entries.len() - 1);
}

#[tokio::test]
async fn a_ledger_deriver_killed_mid_chunk_stores_each_entry_once() {
    let mut stack = Stack::start(&SERVICES).await;
    // Product revisions written while no deriver runs wait in the bucket.
    for round in 0..4 {
        stack.add_stock("A", 1 + round, 1.0).await;
        stack.add_stock("B", 1, 1.0).await;
    }
    let expected = product_revisions(&stack).await;
    assert_eq!(expected.len(), 8);
    let victim = stack.spawn_with(
        "inventory-ledger",
        &[("OMS_FAULTS", "derive.mid-chunk=kill")],
    );
    stack.wait_exit(victim, 10).await;
    let stored = ledger_ids(&stack).await.len();
    assert!(
        (1..expected.len()).contains(&stored),
        "died with part of a chunk stored ({stored})"
    );
    // Two derivers resume at once: they race for the same chain.
    stack.spawn("inventory-ledger");
    stack.spawn("inventory-ledger");
    stack.quiet_ledger().await;
    let ids = ledger_ids(&stack).await;
    let revisions: Vec<_> = ids.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(revisions, expected, "each revision's entry once, in order");
    let a = of_product(&stack.quiet_ledger().await, "A");
    let total: i64 = a.iter().map(|e| e["quantityDelta"].as_i64().unwrap()).sum();
    assert_eq!(total, 1 + 2 + 3 + 4);
}
