//! TLS to NATS, against real nats-servers that require it,
//! with a CA and certificates made by `scripts/tls.sh` (openssl), as
//! `just up --tls` makes them: a plain client is refused; the binaries and
//! clients given the CA (and, for mutual TLS, a client certificate) work;
//! unusable TLS files stop a binary at start, naming the variable.

use std::time::Duration;
use testkit::{within, NatsServer, Proc, Stack, Tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVICES: [&str; 2] = ["inventory-add-stock", "inventory-get"];

/// A client that does not speak TLS: the server's INFO says TLS is
/// required, and a CONNECT + PING in the clear gets no PONG, only the end
/// of the connection.
async fn plain_client_is_refused(server: &NatsServer) {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("the port is open");
    let mut info = vec![0u8; 4096];
    let n = within(Duration::from_secs(5), "INFO", socket.read(&mut info))
        .await
        .unwrap();
    let info = String::from_utf8_lossy(&info[..n]).into_owned();
    assert!(info.contains(r#""tls_required":true"#), "{info}");
    let connect = format!(
        "CONNECT {{\"user\":\"admin\",\"pass\":\"{}\",\"verbose\":false}}\r\nPING\r\n",
        testkit::password("admin")
    );
    // The server may already have closed by the time this is written.
    let _ = socket.write_all(connect.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = within(
        Duration::from_secs(10),
        "the server closes a plain connection",
        socket.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.contains("PONG"),
        "a plain client was served: {answer}"
    );
}

/// Adds stock and reads it back through two binaries that reach NATS over
/// TLS (the server accepts nothing else), from a test client that does too.
async fn round_trip(stack: &Stack, product: &str) {
    stack.add_stock(product, 7, 2.5).await;
    assert_eq!(stack.counts(product).await, (7, 0));
}

#[tokio::test]
async fn a_tls_server_refuses_plain_clients_and_serves_those_with_its_ca() {
    let server = NatsServer::start_tls(Tls::new(false)).await;
    let tls_files = server.tls().unwrap().file("ca.pem");
    plain_client_is_refused(&server).await;

    // async-nats upgrades to TLS when the server asks, but without the CA
    // the server's certificate is not trusted.
    let untrusting = async_nats::ConnectOptions::with_user_and_password(
        "admin".into(),
        testkit::password("admin"),
    )
    .connect(server.url());
    let untrusting = within(Duration::from_secs(20), "connect", untrusting).await;
    assert!(
        untrusting.is_err(),
        "a client without the CA trusted the server"
    );

    // The CA alone is enough here: the server does not ask for a client certificate.
    let with_ca = async_nats::ConnectOptions::with_user_and_password(
        "admin".into(),
        testkit::password("admin"),
    )
    .require_tls(true)
    .add_root_certificates(tls_files)
    .connect(server.url());
    let with_ca = within(Duration::from_secs(20), "connect", with_ca)
        .await
        .expect("a client with the CA connects");
    with_ca.flush().await.unwrap();

    let stack = Stack::start_on(server, &SERVICES, &[]).await;
    round_trip(&stack, "tls-1").await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let server = NatsServer::start_tls(Tls::new(true)).await;
    let tls = server.tls().unwrap();
    let options = || {
        async_nats::ConnectOptions::with_user_and_password(
            "admin".into(),
            testkit::password("admin"),
        )
        .require_tls(true)
        .add_root_certificates(tls.file("ca.pem"))
    };
    let without = within(
        Duration::from_secs(20),
        "connect",
        options().connect(server.url()),
    )
    .await;
    assert!(
        without.is_err(),
        "a client without a certificate was let in"
    );
    let with = options()
        .add_client_certificate(tls.file("client.pem"), tls.file("client-key.pem"))
        .connect(server.url());
    let with = within(Duration::from_secs(20), "connect", with)
        .await
        .expect("a client with its certificate connects");
    with.flush().await.unwrap();
    plain_client_is_refused(&server).await;

    let stack = Stack::start_on(server, &SERVICES, &[]).await;
    round_trip(&stack, "mtls-1").await;
}

#[tokio::test]
async fn unusable_tls_files_stop_a_binary_at_start() {
    let tls = Tls::new(true);
    let file = |name: &str| tls.file(name).display().to_string();
    let garbage = tls.file("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    // The variables set, and those the error must name.
    type Case<'a> = (Vec<(&'a str, String)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            vec![("NATS_TLS_CA", "/no/such/ca.pem".into())],
            &["NATS_TLS_CA"],
        ),
        (vec![("NATS_TLS_CA", garbage.clone())], &["NATS_TLS_CA"]),
        (
            vec![("NATS_TLS_CERT", file("client.pem"))],
            &["NATS_TLS_KEY"],
        ),
        (
            vec![
                ("NATS_TLS_CERT", file("client.pem")),
                ("NATS_TLS_KEY", file("ca.pem")),
            ],
            &["NATS_TLS_KEY"],
        ),
        (
            vec![
                ("NATS_TLS_CERT", file("client.pem")),
                ("NATS_TLS_KEY", file("server-key.pem")),
            ],
            &["NATS_TLS_CERT", "NATS_TLS_KEY"],
        ),
    ];
    for (env, named) in cases {
        // Nothing listens there: the binary must stop before it tries.
        let mut all: Vec<(String, String)> = vec![(
            "NATS_URL".into(),
            format!("nats://127.0.0.1:{}", testkit::free_port()),
        )];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut proc = Proc::start("inventory-get", &all);
        proc.may_exit();
        let status = within(Duration::from_secs(20), "the binary exits", async {
            loop {
                if let Some(status) = proc.exit_status() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(status.code(), Some(2), "{env:?}");
        let line = proc
            .wait_for_line("cannot start", Duration::from_secs(5))
            .await;
        for var in named {
            assert!(line.contains(var), "{env:?}: {line}");
        }
    }
}
