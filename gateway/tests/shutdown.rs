//! SIGTERM under load: the gateway stops accepting, finishes what it
//! accepted, and exits cleanly. "Every accepted request gets its answer" is
//! checked two ways: slow requests in flight at the signal all get their
//! 200, and the stock added equals the number of 201s the clients received
//! (a request applied but left unanswered would make it larger).

mod common;

use common::{Conn, Gateway};
use futures::StreamExt;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{request, Stack};

#[tokio::test]
async fn sigterm_under_load_answers_every_accepted_request() {
    let stack = Stack::start(&["inventory-add-stock", "inventory-get"]).await;
    // A slow stand-in for inventory.check: answers after 700 ms.
    let mut sub = stack.client.subscribe("inventory.check").await.unwrap();
    let client = stack.client.clone();
    let slow_handler = tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            let client = client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let body = json!({"available": true, "items": []}).to_string();
                client
                    .publish(message.reply.unwrap(), body.into())
                    .await
                    .unwrap();
            });
        }
    });
    stack.client.flush().await.unwrap();
    let gw = Gateway::start(&stack.server, &[]).await;
    // The product exists before the load starts, so the count below is
    // about the gateway alone (not about concurrent first creation).
    let seeded = gw
        .post(
            "/inventory",
            &json!({"productId": "load", "quantity": 1, "price": 1}),
        )
        .await;
    assert_eq!(seeded.status, 201);
    let Gateway {
        proc: mut gateway,
        addr,
    } = gw;

    // Load: keep-alive clients adding one unit at a time until their
    // connection is closed on them.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..12)
        .map(|_| {
            let addr = addr.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut created = 0u64;
                let mut conn = Conn::open(&addr).await.unwrap();
                let body = br#"{"productId":"load","quantity":1,"price":1}"#;
                while !stop.load(Ordering::Relaxed) {
                    match conn
                        .send(
                            "POST",
                            "/inventory",
                            &[("Content-Type", "application/json")],
                            Some(body),
                        )
                        .await
                    {
                        Ok(response) => {
                            assert_eq!(response.status, 201, "{}", response.text());
                            created += 1;
                        }
                        // Closed before this request was read: it was not
                        // accepted, and must not have been applied.
                        Err(_) => break,
                    }
                }
                created
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Slow requests, in flight when the signal arrives.
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut conn = Conn::open(&addr).await.unwrap();
                let body = br#"{"items":[{"productId":"load","quantity":1}]}"#;
                let response = conn
                    .send(
                        "POST",
                        "/inventory/check",
                        &[("Content-Type", "application/json")],
                        Some(body),
                    )
                    .await;
                (response, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    let exited = tokio::spawn(async move {
        let status = gateway.terminate().await;
        (status, Instant::now())
    });

    let mut last_answer = signalled;
    for task in slow {
        let (response, at) = task.await.unwrap();
        let response = response.expect("an in-flight request was cut off");
        assert_eq!(response.status, 200, "{}", response.text());
        last_answer = last_answer.max(at);
    }
    assert!(
        last_answer > signalled,
        "the slow requests were still in flight at the signal"
    );

    let (status, exit_at) = exited.await.unwrap();
    assert!(status.success(), "gateway exit: {status}");
    assert!(exit_at >= last_answer, "exited before answering");
    assert!(
        exit_at - signalled < Duration::from_secs(10),
        "shutdown took {:?}",
        exit_at - signalled
    );
    stop.store(true, Ordering::Relaxed);

    let mut answered = 1;
    for task in load {
        answered += task.await.unwrap();
    }
    assert!(answered > 0, "the load ran");
    let product = request(
        &stack.client,
        "inventory.get",
        &json!({"productId": "load"}),
    )
    .await;
    assert_eq!(
        product.body["quantity"], answered,
        "every applied request was answered"
    );

    // Gone: new connections are refused.
    assert!(Conn::open(&addr).await.is_err());
    slow_handler.abort();
}
