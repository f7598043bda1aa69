//! SIGTERM under load: the gateway stops accepting, finishes what it
//! accepted, and exits cleanly.
//!
//! Every request sent ends in exactly one known way, counted per request:
//! answered 2xx, or refused at the connection level before the gateway
//! read it (its keep-alive connection closed with no byte of an answer, or
//! a new connection refused). "Accepted" is checked three ways: every
//! request the gateway's log says it handled is one its client got an
//! answer for; the stock added equals the 201s received (a refused request
//! that was applied would make it larger); slow requests in flight at the
//! signal all get their 200.

mod common;

use common::{Conn, Gateway};
use futures::StreamExt;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use testkit::{request, within, Stack};

const CLIENTS: usize = 12;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Answered,
    /// Its keep-alive connection closed before any byte of an answer.
    ClosedUnread,
    /// A new connection was refused: the listener is closed.
    ConnectRefused,
}

struct Sent {
    id: String,
    end: End,
    at: Instant,
}

/// Adds one unit at a time over one keep-alive connection until the
/// gateway closes it, then tries a new connection once.
async fn load_client(addr: String, bearer: String, client: usize) -> Vec<Sent> {
    let body = br#"{"productId":"load","quantity":1,"price":1}"#;
    let mut sent = Vec::new();
    let mut conn = Conn::open(&addr).await.expect("connects before the signal");
    loop {
        let id = format!("load-{client}-{}", sent.len());
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Request-Id", &id),
            ("Authorization", &bearer),
        ];
        let end = match conn.send("POST", "/inventory", &headers, Some(body)).await {
            Ok(response) => {
                assert_eq!(response.status, 201, "{id}: {}", response.text());
                End::Answered
            }
            Err(e) if conn.received() == 0 && closed(e.kind()) => End::ClosedUnread,
            Err(e) => panic!(
                "{id} ended in no known way: {e} after {} bytes of an answer",
                conn.received()
            ),
        };
        sent.push(Sent {
            id,
            end,
            at: Instant::now(),
        });
        if end != End::Answered {
            break;
        }
    }
    let id = format!("load-{client}-{}", sent.len());
    match Conn::open(&addr).await {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => sent.push(Sent {
            id,
            end: End::ConnectRefused,
            at: Instant::now(),
        }),
        Err(e) => panic!("{id}: connecting failed in no known way: {e}"),
        Ok(_) => panic!("{id}: a new connection was accepted after the gateway closed one"),
    }
    sent
}

fn closed(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}

/// Request ids with `prefix` that the gateway's log says it answered.
fn handled(log: &str, prefix: &str) -> BTreeSet<String> {
    let needle = format!("request_id={prefix}");
    log.lines()
        .filter(|line| line.contains(": answered "))
        .filter_map(|line| {
            let at = line.find(&needle)? + "request_id=".len();
            let id = line[at..].split([' ', '}']).next()?;
            Some(id.to_string())
        })
        .collect()
}

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
    let bearer = gw.bearer();
    let Gateway {
        proc: mut gateway,
        addr,
        ..
    } = gw;

    let load: Vec<_> = (0..CLIENTS)
        .map(|client| tokio::spawn(load_client(addr.clone(), bearer.clone(), client)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Slow requests, in flight when the signal arrives.
    let slow: Vec<_> = (0..8)
        .map(|n| {
            let addr = addr.clone();
            let bearer = bearer.clone();
            tokio::spawn(async move {
                let mut conn = Conn::open(&addr).await.unwrap();
                let id = format!("slow-{n}");
                let headers = [
                    ("Content-Type", "application/json"),
                    ("X-Request-Id", &id),
                    ("Authorization", &bearer),
                ];
                let body = br#"{"items":[{"productId":"load","quantity":1}]}"#;
                let response = conn
                    .send("POST", "/inventory/check", &headers, Some(body))
                    .await;
                (id, response, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    let exited = tokio::spawn(async move {
        let status = gateway.terminate().await;
        (status, Instant::now(), gateway)
    });

    let mut last_answer = signalled;
    for task in slow {
        let (id, response, at) = task.await.unwrap();
        let response = response.unwrap_or_else(|e| panic!("{id}, in flight, was cut off: {e}"));
        assert_eq!(response.status, 200, "{id}: {}", response.text());
        last_answer = last_answer.max(at);
    }
    assert!(
        last_answer > signalled,
        "the slow requests were still in flight at the signal"
    );

    let (status, exit_at, gateway) = exited.await.unwrap();
    assert!(status.success(), "gateway exit: {status}");
    assert!(exit_at >= last_answer, "exited before answering");
    assert!(
        exit_at - signalled < Duration::from_secs(10),
        "shutdown took {:?}",
        exit_at - signalled
    );

    let mut sent = Vec::new();
    for task in load {
        sent.extend(
            within(Duration::from_secs(10), "a load client ends", task)
                .await
                .unwrap(),
        );
    }
    let count = |end: End| sent.iter().filter(|s| s.end == end).count();
    let (answered, unread, refused) = (
        count(End::Answered),
        count(End::ClosedUnread),
        count(End::ConnectRefused),
    );
    eprintln!(
        "{} requests: {answered} answered, {unread} closed unread, {refused} connections refused",
        sent.len()
    );
    assert_eq!(answered + unread + refused, sent.len());
    assert_eq!(
        refused, CLIENTS,
        "each client ends with one refused connection"
    );
    assert!(
        unread <= CLIENTS,
        "at most one unread request per connection"
    );
    assert!(
        answered >= CLIENTS,
        "every client was answered before the signal"
    );
    for s in sent.iter().filter(|s| s.end != End::Answered) {
        assert!(s.at > signalled, "{} was refused before the signal", s.id);
    }

    // Accepted means answered: the gateway handled exactly the requests
    // whose clients got an answer, and no others.
    let log = gateway.log();
    let answered_ids: BTreeSet<String> = sent
        .iter()
        .filter(|s| s.end == End::Answered)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(handled(&log, "load-"), answered_ids, "accepted vs answered");
    assert_eq!(handled(&log, "slow-").len(), 8);
    assert!(!log.contains("after the grace period"), "{log}");
    let product = request(
        &stack.client,
        "inventory.get",
        &json!({"productId": "load"}),
    )
    .await;
    assert_eq!(
        product.body["quantity"],
        1 + answered,
        "every applied request was answered (1 is the seed)"
    );

    // Gone: new connections are refused.
    assert!(Conn::open(&addr).await.is_err());
    slow_handler.abort();
}
