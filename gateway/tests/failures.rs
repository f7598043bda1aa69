//! What goes wrong, and how the gateway says so: unknown routes, wrong
//! methods, no handler running (503 at once), a handler that never answers
//! (504, while every other route keeps working), limits on what a client
//! sends; and the trace headers that reach the handler.

mod common;

use common::{Conn, Gateway};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let stack = Stack::start(&[]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    for path in [
        "/",
        "/nope",
        "/inventory/",
        "/inventory/a/b",
        "/orders/x/status/y",
        "/INVENTORY",
    ] {
        let response = gw.get(path).await;
        let problem = response.problem(404);
        assert!(
            problem["detail"].as_str().unwrap().contains(path),
            "{problem}"
        );
    }
    for (method, path, allow) in [
        ("DELETE", "/inventory", "GET, POST"),
        ("PATCH", "/orders/o-1/status", "PUT"),
        ("GET", "/inventory/check", ""), // a product called "check": not a 405
        ("POST", "/inventory/p-1", "GET"),
        ("POST", "/healthz", "GET"),
        ("PUT", "/inventory/check", "GET, POST"),
    ] {
        let response = gw
            .request(
                method,
                path,
                &[("Content-Type", "application/json")],
                Some(b"{}"),
            )
            .await;
        if allow.is_empty() {
            assert_ne!(response.status, 405, "{method} {path}");
            continue;
        }
        response.problem(405);
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
    }
}

#[tokio::test]
async fn no_handler_running_is_503_at_once() {
    let stack = Stack::start(&["inventory-get"]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    for (method, path, body) in [
        (
            "POST",
            "/orders",
            Some(json!({"customerId": "c", "items": [{"productId": "p", "quantity": 1}]})),
        ),
        ("GET", "/orders/o-1", None),
        (
            "POST",
            "/inventory/check",
            Some(json!({"items": [{"productId": "p", "quantity": 1}]})),
        ),
    ] {
        let started = Instant::now();
        let text = body.map(|b| b.to_string());
        let response = gw
            .request(
                method,
                path,
                &[("Content-Type", "application/json")],
                text.as_deref().map(str::as_bytes),
            )
            .await;
        let problem = response.problem(503);
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{path} took {:?}",
            started.elapsed()
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("no instance"),
            "{problem}"
        );
    }
    // The running one still answers.
    gw.get("/inventory/p-1").await.problem(404);
}

#[tokio::test]
async fn a_handler_that_does_not_answer_is_504_and_other_routes_keep_working() {
    let stack = Stack::start(&["inventory-add-stock"]).await;
    // Something is subscribed to inventory.get, but never replies.
    let mut silent = stack.client.subscribe("inventory.get").await.unwrap();
    let swallow = tokio::spawn(async move { while silent.next().await.is_some() {} });
    stack.client.flush().await.unwrap();
    let gw = Gateway::start(&stack.server, &[("OMS_REQUEST_TIMEOUT", "1")]).await;

    let slow: Vec<_> = (0..4)
        .map(|i| {
            let addr = gw.addr.clone();
            let bearer = gw.bearer();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut conn = Conn::open(&addr).await.unwrap();
                let auth = [("Authorization", bearer.as_str())];
                let response = conn
                    .send("GET", &format!("/inventory/p-{i}"), &auth, None)
                    .await
                    .unwrap();
                (response, started.elapsed())
            })
        })
        .collect();
    // Meanwhile, everything else is served at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert_eq!(gw.get("/healthz").await.status, 200);
    let added = gw
        .post(
            "/inventory",
            &json!({"productId": "p-1", "quantity": 1, "price": 1}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text());
    assert_eq!(gw.get("/openapi.json").await.status, 200);
    assert!(
        slow.iter().all(|task| !task.is_finished()),
        "other routes were answered only after the slow ones gave up ({:?})",
        started.elapsed()
    );

    for task in slow {
        let (response, elapsed) = task.await.unwrap();
        let problem = response.problem(504);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("inventory-get"),
            "{problem}"
        );
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
            "{elapsed:?}"
        );
    }
    swallow.abort();
}

#[tokio::test]
async fn request_id_traceparent_and_payload_reach_the_handler() {
    let stack = Stack::start(&[]).await;
    // A stand-in for inventory.check that echoes what it received.
    let mut sub = stack.client.subscribe("inventory.check").await.unwrap();
    let client = stack.client.clone();
    let echo = tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            let headers = message.headers.clone().unwrap_or_default();
            let header = |name: &str| headers.get(name).map(|v| v.to_string());
            let body = json!({
                "requestId": header("X-Request-Id"),
                "traceparent": header("traceparent"),
                "payload": serde_json::from_slice::<serde_json::Value>(&message.payload).ok(),
            });
            client
                .publish(message.reply.unwrap(), body.to_string().into())
                .await
                .unwrap();
        }
    });
    stack.client.flush().await.unwrap();
    let gw = Gateway::start(&stack.server, &[]).await;

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = br#"{"items":[{"productId":"p","quantity":2}]}"#;
    let response = gw
        .request(
            "POST",
            "/inventory/check",
            &[
                ("Content-Type", "application/json"),
                ("X-Request-Id", "trace-me-1"),
                ("traceparent", traceparent),
            ],
            Some(body),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-request-id"), Some("trace-me-1"));
    let seen = response.json();
    assert_eq!(seen["requestId"], "trace-me-1");
    assert_eq!(seen["traceparent"], traceparent);
    assert_eq!(
        seen["payload"],
        json!({"items": [{"productId": "p", "quantity": 2}]})
    );

    // Without ids: one is generated and is the same on both sides; a
    // malformed traceparent is dropped.
    let response = gw
        .request(
            "POST",
            "/inventory/check",
            &[
                ("Content-Type", "application/json"),
                ("traceparent", "garbage"),
            ],
            Some(body),
        )
        .await;
    let seen = response.json();
    let generated = response.header("x-request-id").unwrap();
    assert_eq!(seen["requestId"], generated);
    assert!(seen["traceparent"].is_null(), "{seen}");
    echo.abort();
}

#[tokio::test]
async fn keep_alive_limits_and_http2() {
    let stack = Stack::start(&["inventory-get"]).await;
    let gw = Gateway::start(&stack.server, &[]).await;

    // Many requests over one connection.
    let bearer = gw.bearer();
    let auth = [("Authorization", bearer.as_str())];
    let mut conn = Conn::open(&gw.addr).await.unwrap();
    for i in 0..20 {
        let response = conn
            .send("GET", &format!("/inventory/k-{i}"), &auth, None)
            .await
            .unwrap();
        response.problem(404);
    }
    assert_eq!(
        conn.send("GET", "/healthz", &[], None)
            .await
            .unwrap()
            .status,
        200
    );

    // A head over the limit is refused with 431.
    let big = "x".repeat(20 * 1024);
    let mut conn = Conn::open(&gw.addr).await.unwrap();
    let response = conn
        .send("GET", "/healthz", &[("X-Big", &big)], None)
        .await
        .unwrap();
    assert_eq!(response.status, 431);
    let many: Vec<(String, String)> = (0..100)
        .map(|i| (format!("X-H{i}"), "v".to_string()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut conn = Conn::open(&gw.addr).await.unwrap();
    let response = conn.send("GET", "/healthz", &many, None).await.unwrap();
    assert_eq!(response.status, 431);

    // A declared body far over the limit is refused before it is sent.
    let mut conn = Conn::open(&gw.addr).await.unwrap();
    let head = format!("POST /inventory HTTP/1.1\r\nHost: g\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n");
    let response = conn.send_raw(head.as_bytes()).await.unwrap();
    assert_eq!(response.status, 413);

    // HTTP/2 with prior knowledge: the server's first frame is SETTINGS.
    let mut stream = tokio::net::TcpStream::connect(&gw.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut frame))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame[3], 0x4, "SETTINGS frame");
}
