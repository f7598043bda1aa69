//! The gateway's limits through the real gateway: a connection that sends no whole
//! request head is closed after the header timeout (also before the first
//! byte, before HTTP/1-or-2 detection, and for HTTP/2), an idle keep-alive
//! connection after the idle timeout (HTTP/1 and HTTP/2), the connection
//! cap, the per-caller rate limit, and 415 for a body that is not JSON.

mod common;

use common::{token, Conn, Gateway};
use std::time::{Duration, Instant};
use testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEAD: &str = "1";
const IDLE: &str = "3";
const H2_PREFACE_LEN: usize = 24;

/// Reads until the gateway closes the stream; how long that took, and what
/// came before.
async fn until_closed(stream: &mut TcpStream, since: Instant) -> (Duration, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (since.elapsed(), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after 15 s"),
        }
    }
}

fn around(elapsed: Duration, secs: f64, what: &str) {
    let want = Duration::from_secs_f64(secs);
    assert!(
        elapsed >= want - Duration::from_millis(150)
            && elapsed < want + Duration::from_millis(1500),
        "{what}: closed after {elapsed:?}, want about {want:?}"
    );
}

#[tokio::test]
async fn sockets_without_a_whole_head_are_closed_after_the_header_timeout() {
    let stack = Stack::start(&[]).await;
    let env = [
        ("GATEWAY_HEADER_TIMEOUT", HEAD),
        ("GATEWAY_IDLE_TIMEOUT", IDLE),
    ];
    let gw = Gateway::start(&stack.server, &env).await;
    let openers: [&'static [u8]; 5] = [
        b"",
        b"P",
        b"PRI * HTTP/2.0\r\n",
        b"GET /healthz HTTP/1.1\r\n",
        // HTTP/2 with prior knowledge, SETTINGS, and never a request.
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0",
    ];
    let tasks: Vec<_> = openers
        .into_iter()
        .map(|bytes| {
            let addr = gw.addr.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.unwrap();
                let since = Instant::now();
                stream.write_all(bytes).await.unwrap();
                if bytes.len() > H2_PREFACE_LEN {
                    let mut settings = [0u8; 9];
                    stream.read_exact(&mut settings).await.unwrap();
                    assert_eq!(settings[3], 0x4, "HTTP/2: the server's SETTINGS first");
                }
                until_closed(&mut stream, since).await
            })
        })
        .collect();
    for (task, opener) in tasks.into_iter().zip(openers) {
        let (elapsed, got) = task.await.unwrap();
        let what = String::from_utf8_lossy(opener);
        around(elapsed, 1.0, &what);
        if opener.len() <= H2_PREFACE_LEN {
            assert!(got.is_empty(), "{what}: {}", String::from_utf8_lossy(&got));
        }
    }

    // Keep-alive: an idle connection outlives the header timeout ...
    let bearer = gw.bearer();
    let mut conn = Conn::open(&gw.addr).await.unwrap();
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(
        conn.send("GET", "/metrics", &auth, None)
            .await
            .unwrap()
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        conn.send("GET", "/metrics", &auth, None)
            .await
            .unwrap()
            .status,
        200
    );
    // ... but the next head, once begun, has the header timeout again.
    let mut stream = TcpStream::connect(&gw.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let since = Instant::now();
    stream.write_all(b"GET /hea").await.unwrap();
    let (elapsed, _) = until_closed(&mut stream, since).await;
    around(elapsed, 1.0, "a second head begun and left");
}

/// One HTTP/2 frame: type, flags, stream, payload.
async fn frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8, u8, Vec<u8>)> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], header[4], header[8], payload))
}

/// An HTTP/2 client with prior knowledge: `GET /healthz` on stream 1,
/// returned once its answer is complete.
async fn http2_get(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Preface, empty SETTINGS, then HEADERS (END_STREAM | END_HEADERS):
    // GET http /healthz, from HPACK's static table and one literal.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    let block = [&[0x82u8, 0x86, 0x44, 0x08][..], b"/healthz"].concat();
    hello.extend_from_slice(&[0, 0, block.len() as u8, 0x1, 0x5, 0, 0, 0, 1]);
    hello.extend_from_slice(&block);
    stream.write_all(&hello).await.unwrap();
    loop {
        let (kind, flags, id, _) = frame(&mut stream).await.unwrap();
        if kind == 0x4 && flags & 0x1 == 0 {
            stream
                .write_all(&[0, 0, 0, 0x4, 0x1, 0, 0, 0, 0])
                .await
                .unwrap(); // SETTINGS ACK
        }
        if id == 1 && kind <= 0x1 && flags & 0x1 != 0 {
            return stream; // the answer's END_STREAM
        }
    }
}

/// Reads HTTP/2 frames until the close, answering PINGs when `polite`;
/// how long it took and whether a GOAWAY came.
async fn http2_until_closed(
    mut stream: TcpStream,
    polite: bool,
    since: Instant,
) -> (Duration, bool) {
    let mut goaway = false;
    loop {
        let read = tokio::time::timeout(Duration::from_secs(15), frame(&mut stream)).await;
        match read.expect("still open after 15 s") {
            Err(_) => return (since.elapsed(), goaway),
            Ok((0x7, _, _, _)) => goaway = true,
            Ok((0x6, 0, _, payload)) if polite => {
                let mut ack = vec![0, 0, 8, 0x6, 0x1, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                stream.write_all(&ack).await.unwrap();
            }
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_http1_and_http2() {
    let stack = Stack::start(&[]).await;
    let env = [
        ("GATEWAY_HEADER_TIMEOUT", HEAD),
        ("GATEWAY_IDLE_TIMEOUT", IDLE),
    ];
    let gw = Gateway::start(&stack.server, &env).await;

    let mut http1 = TcpStream::connect(&gw.addr).await.unwrap();
    http1
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    http1.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let since = Instant::now();
    let polite = http2_get(&gw.addr).await;
    let rude = http2_get(&gw.addr).await;
    let polite = tokio::spawn(http2_until_closed(polite, true, since));
    let rude = tokio::spawn(http2_until_closed(rude, false, since));

    let (elapsed, _) = until_closed(&mut http1, since).await;
    around(elapsed, 3.0, "HTTP/1 idle");
    let (elapsed, goaway) = polite.await.unwrap();
    around(elapsed, 3.0, "HTTP/2 idle");
    assert!(goaway, "HTTP/2 says GOAWAY before it closes");
    // One that does not answer the shutdown's PING: a header timeout more.
    let (elapsed, goaway) = rude.await.unwrap();
    around(elapsed, 4.0, "HTTP/2 idle, PING unanswered");
    assert!(goaway);
}

#[tokio::test]
async fn at_the_connection_cap_a_new_connection_waits_for_a_free_one() {
    let stack = Stack::start(&[]).await;
    let env = [
        ("GATEWAY_MAX_CONNECTIONS", "2"),
        ("GATEWAY_HEADER_TIMEOUT", HEAD),
    ];
    let gw = Gateway::start(&stack.server, &env).await;
    let _silent = [
        TcpStream::connect(&gw.addr).await.unwrap(),
        TcpStream::connect(&gw.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let since = Instant::now();
    let health = gw.request_as(None, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200);
    assert!(
        since.elapsed() >= Duration::from_millis(700),
        "served at once ({:?}) beside two open connections",
        since.elapsed()
    );
    gw.proc
        .wait_for_line("GATEWAY_MAX_CONNECTIONS reached", Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn a_caller_past_its_rate_gets_429_while_others_are_served() {
    let stack = Stack::start(&[]).await;
    let gw = Gateway::start(&stack.server, &[("GATEWAY_RATE_LIMIT", "5")]).await;
    // The start-up polls came from this address: let its bucket fill again.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let hasty = format!("Bearer {}", token("hasty", &["staff"]));
    let mut conn = Conn::open(&gw.addr).await.unwrap();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..15 {
        let response = conn
            .send("GET", "/metrics", &[("Authorization", &hasty)], None)
            .await
            .unwrap();
        statuses.push(response.status);
        if response.status == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(
        statuses[..10],
        [200; 10],
        "the burst is twice the rate: {statuses:?}"
    );
    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    limited.problem(429);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    // Another principal, and an anonymous caller, are served meanwhile.
    let other = gw
        .request_as(
            Some(&token("patient", &["staff"])),
            "GET",
            "/metrics",
            &[],
            None,
        )
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(
        gw.request_as(None, "GET", "/healthz", &[], None)
            .await
            .status,
        200
    );

    // Without a valid token the bucket is the client's address.
    let mut refused = Vec::new();
    for _ in 0..14 {
        let response = gw
            .request_as(Some("forged"), "GET", "/metrics", &[], None)
            .await;
        refused.push(response.status);
    }
    assert!(
        refused[..9].iter().all(|s| *s == 401) && refused.contains(&429),
        "{refused:?}"
    );
    // Anonymous from the same address: limited too. (Two tries: the last
    // refusal may have left the bucket a hair short of a token, which the
    // next moments can fill; they cannot fill two.)
    let mut anonymous = Vec::new();
    for _ in 0..2 {
        let response = gw.request_as(None, "GET", "/healthz", &[], None).await;
        anonymous.push(response.status);
    }
    assert!(anonymous.contains(&429), "{anonymous:?}");
    let still = gw
        .request_as(
            Some(&token("patient", &["staff"])),
            "GET",
            "/metrics",
            &[],
            None,
        )
        .await;
    assert_eq!(still.status, 200, "a principal is not its address");

    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = conn
        .send("GET", "/metrics", &[("Authorization", &hasty)], None)
        .await
        .unwrap();
    assert_eq!(again.status, 200, "served again after Retry-After");
}

#[tokio::test]
async fn a_body_that_does_not_say_json_is_415_and_changes_nothing() {
    let stack = Stack::start(&["inventory-add-stock", "inventory-check"]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let before = stack.snapshot().await;
    let add = br#"{"productId":"p","quantity":1,"price":1}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some(""),
    ] {
        let headers: Vec<(&str, &str)> =
            content_type.iter().map(|t| ("Content-Type", *t)).collect();
        for path in ["/inventory", "/inventory/check"] {
            let response = gw.request("POST", path, &headers, Some(add)).await;
            response.problem(415);
        }
    }
    assert_eq!(stack.snapshot().await, before);
    // No body needs no type: the handler reads `{}` and names what is missing.
    let empty = gw.request("POST", "/inventory/check", &[], None).await;
    assert_eq!(empty.problem(400)["errors"][0]["pointer"], "/items");
}
