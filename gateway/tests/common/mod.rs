//! What the gateway tests share: the real `gateway` binary started against a
//! test nats-server, a tiny HTTP/1.1 client over a TCP stream or TLS (it can
//! also send malformed requests byte for byte), bearer tokens signed here with
//! ring (not with the gateway's own code), and what every gateway test shares.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use testkit::{free_port, NatsServer, Proc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The HS256 secret every test gateway checks tokens with, unless a test
/// gives it other keys.
pub const SECRET: &str = "gateway-tests-only-hs256-secret-0123456789";

/// base64url without padding (RFC 7515).
pub fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A JWT with this header and claims, signed by `sign` over `header.claims`.
pub fn jwt(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(message.as_bytes());
    format!("{message}.{}", b64(&signature))
}

/// An HS256 token for any claims, signed with `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    jwt(&json!({"alg": "HS256", "typ": "JWT"}), claims, |m| {
        ring::hmac::sign(&key, m).as_ref().to_vec()
    })
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A valid token for `sub` with these roles (audience `oms`, an hour left).
pub fn token(sub: &str, roles: &[&str]) -> String {
    hs256(
        SECRET,
        &json!({"sub": sub, "roles": roles, "aud": "oms", "exp": now() + 3600}),
    )
}

pub fn staff_token() -> String {
    token("staff-1", &["staff"])
}

/// A running gateway process.
pub struct Gateway {
    pub proc: Proc,
    pub addr: String,
    /// Sent by [`Gateway::request`] unless the request has its own
    /// `Authorization`: a staff token.
    pub token: String,
    /// Set when it serves HTTPS: how its clients trust it.
    pub tls: Option<Arc<ClientConfig>>,
}

/// A TLS client that trusts the CA in `ca` (PEM) and offers `alpn`.
pub fn tls_client(ca: &Path, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the CA file") {
        roots.add(cert.expect("a CA certificate")).expect("a CA");
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The environment of a test gateway: where NATS is, its address, the test
/// secret (unless `env` names other keys), then `env`.
pub fn gateway_env(server: &NatsServer, addr: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = vec![
        ("NATS_URL".into(), server.url()),
        ("NATS_USER".into(), "gateway".into()),
        ("NATS_PASSWORD".into(), testkit::password("gateway")),
        ("GATEWAY_ADDR".into(), addr.to_string()),
        ("GATEWAY_TLS_CERT".into(), String::new()),
        ("GATEWAY_TLS_KEY".into(), String::new()),
        // Whatever the developer's shell exports, the test decides.
        ("OMS_AUTH".into(), String::new()),
        ("OMS_JWT_PUBLIC_KEYS".into(), String::new()),
        ("OMS_JWT_ISSUER".into(), String::new()),
        ("OMS_JWT_AUDIENCE".into(), String::new()),
    ];
    if !env
        .iter()
        .any(|(k, _)| *k == "OMS_JWT_SECRET" || *k == "OMS_JWT_PUBLIC_KEYS")
    {
        vars.push(("OMS_JWT_SECRET".into(), SECRET.into()));
    }
    vars.extend(server.tls().iter().flat_map(|tls| tls.env()));
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

impl Gateway {
    /// Starts `gateway` as NATS user `gateway` on a free port, checking
    /// tokens signed with [`SECRET`] unless `env` says otherwise, and waits
    /// until it answers and has its NATS connection.
    pub async fn start(server: &NatsServer, env: &[(&str, &str)]) -> Gateway {
        Gateway::start_with(server, env, None).await
    }

    /// Like [`Gateway::start`] for a gateway that serves HTTPS (`env` names
    /// its certificate): every request of the test goes over TLS, trusting
    /// the CA in `ca`, HTTP/1.1 by ALPN.
    pub async fn start_https(server: &NatsServer, env: &[(&str, &str)], ca: &Path) -> Gateway {
        Gateway::start_with(server, env, Some(tls_client(ca, &[b"http/1.1"]))).await
    }

    async fn start_with(
        server: &NatsServer,
        env: &[(&str, &str)],
        tls: Option<Arc<ClientConfig>>,
    ) -> Gateway {
        let addr = format!("127.0.0.1:{}", free_port());
        let vars = gateway_env(server, &addr, env);
        let gateway = Gateway {
            proc: Proc::start("gateway", &vars),
            addr,
            token: staff_token(),
            tls,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(ready) = gateway.try_request("GET", "/readyz", &[], None).await {
                if ready.json()["nats"] == "connected" {
                    return gateway;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway did not come up on {}",
                gateway.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new connection to it: TLS when it serves HTTPS.
    pub async fn connect(&self) -> std::io::Result<Conn> {
        match &self.tls {
            Some(config) => Conn::open_tls(&self.addr, config.clone()).await,
            None => Conn::open(&self.addr).await,
        }
    }

    /// `Authorization: Bearer <staff token>`, for a raw [`Conn`].
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub async fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Response> {
        let bearer = self.bearer();
        let mut all = headers.to_vec();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            all.push(("Authorization", &bearer));
        }
        let mut conn = self.connect().await?;
        conn.send(method, path, &all, body).await
    }

    /// One request on a fresh connection with `token` (none: no
    /// `Authorization` at all).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut all = headers.to_vec();
        if let Some(bearer) = &bearer {
            all.push(("Authorization", bearer));
        }
        let mut conn = self
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        conn.send(method, path, &all, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// One request on a fresh connection, as staff unless `headers` has an
    /// `Authorization`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        self.try_request(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        let body = body.to_string();
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        let body = body.to_string();
        self.request(
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
        .await
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        for field in ["type", "title", "detail"] {
            assert!(body[field].is_string(), "problem lacks {field}: {body}");
        }
        body
    }

    pub fn pointers(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|e| e["pointer"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What a [`Conn`] speaks over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One HTTP/1.1 connection; several requests may go over it (keep-alive).
pub struct Conn {
    stream: Box<dyn Io>,
    buffer: Vec<u8>,
    /// Bytes read since the last request was written: 0 after an error
    /// means the server sent nothing of an answer.
    received: usize,
}

impl Conn {
    pub async fn open(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn::over(Box::new(stream)))
    }

    /// A TLS connection (to 127.0.0.1, checked against `config`'s roots).
    pub async fn open_tls(addr: &str, config: Arc<ClientConfig>) -> std::io::Result<Conn> {
        Ok(Conn::over(Box::new(tls_connect(addr, config).await?)))
    }

    pub fn over(stream: Box<dyn Io>) -> Conn {
        Conn {
            stream,
            buffer: Vec::new(),
            received: 0,
        }
    }

    /// Bytes of an answer read since the last request was written.
    pub fn received(&self) -> usize {
        self.received
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Response> {
        self.write(method, path, headers, body).await?;
        self.read_response().await
    }

    /// Writes a request without waiting for its answer.
    pub async fn write(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: gateway\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.received = 0;
        self.stream.write_all(&bytes).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<Response> {
        self.received = 0;
        self.stream.write_all(bytes).await?;
        self.read_response().await
    }

    pub async fn read_response(&mut self) -> std::io::Result<Response> {
        loop {
            let response = self.read_one().await?;
            if response.status >= 200 {
                return Ok(response);
            }
        }
    }

    async fn read_one(&mut self) -> std::io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buffer, b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let body = if status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(length) = get("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| invalid("bad content-length".into()))?;
            self.take(length).await?
        } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            self.chunked().await?
        } else {
            // Delimited by the end of the connection.
            while self.fill().await.is_ok() {}
            std::mem::take(&mut self.buffer)
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buffer, b"\r\n") {
                    break i;
                }
                self.fill().await?;
            };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            self.buffer.drain(..line_end + 2);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            let chunk = self.take(size + 2).await?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }

    async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buffer.len() < n {
            self.fill().await?;
        }
        Ok(self.buffer.drain(..n).collect())
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no response in 30 s")
            })??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        self.received += n;
        Ok(())
    }
}

/// A TLS client connection to `addr` (on 127.0.0.1).
pub async fn tls_connect(
    addr: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let name = ServerName::try_from("127.0.0.1").expect("an IP address");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
