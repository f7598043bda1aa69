//! The gateway over HTTPS (`GATEWAY_TLS_CERT`,
//! `GATEWAY_TLS_KEY`), with certificates made by `scripts/tls.sh` as
//! `just up --tls` makes them: requests are answered over HTTP/1.1 and
//! HTTP/2 (ALPN), plain HTTP to the HTTPS port gets nothing, and the
//! connection limits hold with the TLS handshake inside the head
//! deadline.

mod common;

use common::{tls_client, tls_connect, Conn, Gateway};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::{NatsServer, Stack, Tls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The gateway's certificate and key (the server certificate of `tls`:
/// SAN 127.0.0.1).
fn https_env(tls: &Tls) -> [(&'static str, String); 2] {
    [
        (
            "GATEWAY_TLS_CERT",
            tls.file("server.pem").display().to_string(),
        ),
        (
            "GATEWAY_TLS_KEY",
            tls.file("server-key.pem").display().to_string(),
        ),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Reads until the gateway closes the stream (an error is a close too:
/// TLS without close_notify); how long that took since `since`.
async fn until_closed(stream: &mut (impl AsyncRead + Unpin), since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => {}
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
async fn https_answers_over_http1_and_http2_and_plain_http_gets_nothing() {
    // All of it encrypted: mutual TLS to NATS, HTTPS to the client.
    let server = NatsServer::start_tls(Tls::new(true)).await;
    let stack = Stack::start_on(server, &["inventory-add-stock", "inventory-get"], &[]).await;
    let tls = stack.server.tls().unwrap();
    let ca: PathBuf = tls.file("ca.pem");
    let env = https_env(tls);
    let gw = Gateway::start_https(&stack.server, &env_refs(&env), &ca).await;

    let created = gw
        .post(
            "/inventory",
            &json!({"productId": "https-1", "quantity": 4, "price": 3.5}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let got = gw.get("/inventory/https-1").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["quantity"], 4);

    // A client offering h2 gets it by ALPN, and an HTTP/2 answer.
    let mut h2 = tls_connect(&gw.addr, tls_client(&ca, &[b"h2", b"http/1.1"]))
        .await
        .expect("TLS handshake");
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Preface, empty SETTINGS, HEADERS (END_STREAM | END_HEADERS) of
    // GET https /healthz: HPACK static entries and one literal path.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    let block = [&[0x82u8, 0x87, 0x44, 0x08][..], b"/healthz"].concat();
    hello.extend_from_slice(&[0, 0, block.len() as u8, 0x1, 0x5, 0, 0, 0, 1]);
    hello.extend_from_slice(&block);
    h2.write_all(&hello).await.unwrap();
    let status = loop {
        let mut header = [0u8; 9];
        h2.read_exact(&mut header).await.expect("an HTTP/2 frame");
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        h2.read_exact(&mut payload).await.unwrap();
        if header[3] == 0x1 && header[8] == 1 {
            break payload[0]; // the first field of the answer's HEADERS
        }
    };
    assert_eq!(status, 0x88, "HPACK :status 200");
    // One offering only HTTP/1.1 gets that.
    let http1 = tls_connect(&gw.addr, tls_client(&ca, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(http1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    // Plain HTTP to the HTTPS port: no HTTP answer.
    let mut plain = Conn::open(&gw.addr).await.unwrap();
    let answer = plain.send("GET", "/healthz", &[], None).await;
    assert!(answer.is_err(), "plain HTTP was answered: {answer:?}");
    // A client that does not trust the CA does not get through either.
    let untrusting = tls_connect(&gw.addr, tls_client(&tls.file("server.pem"), &[])).await;
    assert!(
        untrusting.is_err(),
        "a certificate not signed by a trusted CA was accepted"
    );
}

#[tokio::test]
async fn the_head_deadline_covers_the_tls_handshake() {
    let stack = Stack::start(&[]).await;
    let tls = Tls::new(false);
    let ca = tls.file("ca.pem");
    let mut env = https_env(&tls).to_vec();
    env.push(("GATEWAY_HEADER_TIMEOUT", "1".into()));
    env.push(("GATEWAY_IDLE_TIMEOUT", "3".into()));
    let gw = Gateway::start_https(&stack.server, &env_refs(&env), &ca).await;
    let config = tls_client(&ca, &[b"http/1.1"]);

    // Before the handshake: nothing sent, half a ClientHello.
    let openers: [&'static [u8]; 2] = [b"", b"\x16\x03\x01\x02\x00"];
    for opener in openers {
        let mut stream = TcpStream::connect(&gw.addr).await.unwrap();
        let since = Instant::now();
        stream.write_all(opener).await.unwrap();
        around(
            until_closed(&mut stream, since).await,
            1.0,
            &format!("TLS opener {opener:?}"),
        );
    }
    // After it: nothing, or one byte of a head. The deadline ran from the
    // TCP accept, not from the end of the handshake.
    for opener in [&b""[..], b"P"] {
        let since = Instant::now();
        let mut stream = tls_connect(&gw.addr, config.clone()).await.unwrap();
        stream.write_all(opener).await.unwrap();
        stream.flush().await.unwrap();
        around(
            until_closed(&mut stream, since).await,
            1.0,
            &format!("{opener:?} after the handshake"),
        );
    }
    // Keep-alive over TLS: an idle connection outlives the header timeout.
    let bearer = gw.bearer();
    let auth = [("Authorization", bearer.as_str())];
    let mut conn = gw.connect().await.unwrap();
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
}

#[tokio::test]
async fn the_connection_cap_holds_over_tls() {
    let stack = Stack::start(&[]).await;
    let tls = Tls::new(false);
    let ca = tls.file("ca.pem");
    let mut env = https_env(&tls).to_vec();
    env.push(("GATEWAY_HEADER_TIMEOUT", "2".into()));
    env.push(("GATEWAY_MAX_CONNECTIONS", "1".into()));
    let gw = Gateway::start_https(&stack.server, &env_refs(&env), &ca).await;

    // A silent socket holds the one slot until its head deadline closes it;
    // a TLS client meanwhile waits in the backlog, its handshake unanswered.
    let silent = TcpStream::connect(&gw.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let since = Instant::now();
    let answered = gw.get("/healthz").await;
    assert_eq!(answered.status, 200);
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "served after {waited:?}, while the only slot was taken"
    );
    drop(silent);
}

#[tokio::test]
async fn unusable_tls_settings_stop_the_gateway_naming_the_variable() {
    let server = NatsServer::start().await;
    let tls = Tls::new(false);
    let cert = tls.file("server.pem").display().to_string();
    let client_key = tls.file("client-key.pem").display().to_string();
    // The variables set, and those the error must name.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        (&[("NATS_TLS_CA", "/no/such/ca.pem")], &["NATS_TLS_CA"]),
        (&[("GATEWAY_TLS_CERT", &cert)], &["GATEWAY_TLS_KEY"]),
        (
            &[
                ("GATEWAY_TLS_CERT", &cert),
                ("GATEWAY_TLS_KEY", "/no/key.pem"),
            ],
            &["GATEWAY_TLS_KEY"],
        ),
        (
            &[
                ("GATEWAY_TLS_CERT", &cert),
                ("GATEWAY_TLS_KEY", &client_key),
            ],
            &["GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY"],
        ),
    ];
    for (env, named) in cases {
        let addr = format!("127.0.0.1:{}", testkit::free_port());
        let mut gateway =
            testkit::Proc::start("gateway", &common::gateway_env(&server, &addr, env));
        gateway.may_exit();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = gateway.exit_status() {
                break status;
            }
            assert!(Instant::now() < deadline, "{env:?}: the gateway still runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!status.success(), "{env:?}");
        let line = gateway
            .wait_for_line("cannot start", Duration::from_secs(5))
            .await;
        for var in named {
            assert!(line.contains(var), "{env:?}: {line}");
        }
        assert!(
            TcpStream::connect(&addr).await.is_err(),
            "{env:?}: it listened"
        );
    }
}
