//! Stock-level events: `events.inventory.low-stock |
//! out-of-stock | back-in-stock` in `OMS_EVENTS`, one per crossing and none
//! for a change that crosses nothing, derived from the product revisions.

use serde_json::{json, Value};
use testkit::{request, Stack};

const SERVICES: [&str; 6] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-adjust",
    "inventory-reserve",
    "orders-create",
    "orders-get",
];

fn buy(product: &str, quantity: u64) -> Value {
    json!({"customerId": "c", "items": [{"productId": product, "quantity": quantity}]})
}

#[tokio::test]
async fn each_crossing_is_one_event_even_with_32_buyers_racing() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("orders-events");
    stack.add_stock("A", 20, 1.0).await;
    stack.add_stock("marker", 100, 1.0).await;

    // 32 buyers of one unit each for 20 units: 20 win, and the product
    // runs out once.
    let buyers: Vec<_> = (0..32)
        .map(|_| {
            let client = stack.client.clone();
            tokio::spawn(
                async move { request(&client, "orders.create", &buy("A", 1)).await.status },
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for buyer in buyers {
        statuses.push(buyer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 12);
    assert_eq!(stack.counts("A").await, (0, 20));

    // Back from 0; a threshold set above the count is no fall: nothing.
    for body in [
        json!({"productId": "A", "delta": 5, "reason": "received"}),
        json!({"productId": "A", "delta": 0, "reason": "count", "lowStockThreshold": 3}),
        json!({"productId": "A", "delta": 2, "reason": "returned"}), // 7: nothing
    ] {
        let reply = stack.request("inventory.adjust", &body).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    // 7 -> 2: below 3, once; 2 -> 1: still low, nothing; 1 -> 0: out.
    for quantity in [5, 1, 1] {
        assert_eq!(
            stack
                .request("orders.create", &buy("A", quantity))
                .await
                .status,
            200
        );
    }
    // An order last: every product revision before it is derived.
    assert_eq!(
        stack
            .request("orders.create", &buy("marker", 1))
            .await
            .status,
        200
    );

    let events: Vec<_> = stack
        .events_to_last_order()
        .await
        .into_iter()
        .filter(|e| e.0.starts_with("events.inventory."))
        .collect();
    let schema =
        oms_runtime::schema::Schema::compile(include_str!("../../schemas/stock-event.json"));
    for event in &events {
        assert_eq!(schema.check(&event.2), Ok(()), "{}", event.2);
        assert_eq!(event.2["productId"], "A", "marker never crossed");
        let id = format!(
            "A:{}:{}",
            event.2["revision"],
            event.2["level"].as_str().unwrap()
        );
        assert_eq!(event.1, id);
        assert_eq!(
            event.0,
            format!("events.inventory.{}", event.2["level"].as_str().unwrap())
        );
    }
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.2["level"].as_str().unwrap().to_string(),
                e.2["previousQuantity"].as_u64().unwrap(),
                e.2["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("out-of-stock", None, 0),
        ("back-in-stock", Some(0), 5),
        ("low-stock", Some(7), 2),
        ("out-of-stock", Some(1), 0),
    ];
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    for ((level, before, after), (want_level, want_before, want_after)) in seen.iter().zip(want) {
        assert_eq!(level, want_level);
        assert_eq!(*after, want_after);
        if let Some(b) = want_before {
            assert_eq!(*before, b);
        }
    }
    assert_eq!(events[0].2["reason"], "reserve");
    assert_eq!(events[1].2["reason"], "received");
    assert_eq!(events[2].2["lowStockThreshold"], 3);
}
