//! Test support: a real `nats-server` (JetStream, the project's own
//! `nats-server.conf`) on ephemeral ports with a temp store, the real OMS
//! binaries started against it, and a client that speaks to both the way
//! the `nats` CLI does.
//!
//! Every wait here has a deadline and fails with a message: a test that
//! hangs explains nothing. Every child's output is kept in
//! `target/test-logs/<test binary>-<test>/` (see [`Proc`]).

mod logs;
mod process;
mod rng;
mod server;

pub use logs::test_dir;
pub use process::{binary, free_port, repo_root, Proc, TempDir, TERMINATE_LIMIT};
pub use rng::Rng;
pub use server::{password, NatsServer, Tls};

use async_nats::{Client, HeaderMap};
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// A reply as a caller sees it: the error code header (200 when absent),
/// the JSON body and the headers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Reply {
    /// JSON Pointers named by a problem body's `errors`.
    pub fn pointers(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["pointer"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sends raw bytes to `subject` and waits (10 s) for the reply.
pub async fn request_raw(
    client: &Client,
    subject: &str,
    payload: impl Into<bytes::Bytes>,
) -> Reply {
    try_request(client, subject, payload, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`request_raw`], but a timeout or transport error is returned, not
/// a panic: for tests that expect them (crashes, restarts).
pub async fn try_request(
    client: &Client,
    subject: &str,
    payload: impl Into<bytes::Bytes>,
    timeout: Duration,
) -> Result<Reply, String> {
    let message =
        tokio::time::timeout(timeout, client.request(subject.to_string(), payload.into()))
            .await
            .map_err(|_| format!("no reply from {subject} in {timeout:?}"))?
            .map_err(|e| format!("request to {subject} failed: {e}"))?;
    let headers = message.headers.clone().unwrap_or_default();
    let status = headers
        .get("Nats-Service-Error-Code")
        .map(|v| v.as_str().parse().expect("numeric error code"))
        .unwrap_or(200);
    let body = if message.payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&message.payload).expect("reply body is JSON")
    };
    Ok(Reply {
        status,
        body,
        headers,
    })
}

/// Sends a JSON request to `subject`.
pub async fn request(client: &Client, subject: &str, body: &Value) -> Reply {
    request_raw(client, subject, body.to_string()).await
}

/// Publishes a discovery request (`$SRV.PING`, `$SRV.INFO.name`, ...) with
/// an inbox and collects every reply until 300 ms pass without one, as the
/// `nats micro` commands do (10 s at most).
pub async fn discover(client: &Client, subject: &str) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply(subject.to_string(), inbox, bytes::Bytes::new())
        .await
        .expect("publish");
    let mut found = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(message)) = tokio::time::timeout(
        Duration::from_millis(300)
            .min(until.saturating_duration_since(tokio::time::Instant::now())),
        replies.next(),
    )
    .await
    {
        // A "no responders" status arrives when nothing is subscribed yet.
        if message.status.is_some() || message.payload.is_empty() {
            continue;
        }
        found.push(serde_json::from_slice(&message.payload).expect("discovery reply is JSON"));
    }
    found
}

/// Waits until `instances` instances of `service` answer `$SRV.PING.service`.
pub async fn wait_for_service(client: &Client, service: &str, instances: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = discover(client, &format!("$SRV.PING.{service}"))
            .await
            .len();
        if found >= instances {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service}: {found} of {instances} instances after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it returns true, or panics with `what` after `secs`
/// (also when one check is still running then).
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !tokio::time::timeout_at(deadline, check())
        .await
        .unwrap_or(false)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `work`, or panics with `what` after `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done in {limit:?}"))
}

/// A nats-server with OMS binaries running against it. Dropped after a
/// passing test, it fails the test if a process ended or panicked without
/// the test causing it (see [`Proc`]); after a failing one, it shows the
/// end of every process's log.
pub struct Stack {
    pub server: NatsServer,
    /// The other nodes when the stack runs on a cluster (`server` is node 0).
    pub peers: Vec<NatsServer>,
    pub client: Client,
    pub procs: Vec<Proc>,
    /// Extra environment for every binary started (e.g. `OMS_HOLD_TTL`).
    pub env: Vec<(String, String)>,
}

impl Stack {
    /// Starts a server and one instance of each service named, and waits
    /// until every one answers `$SRV.PING`.
    pub async fn start(services: &[&str]) -> Stack {
        Stack::start_with_env(services, &[]).await
    }

    pub async fn start_with_env(services: &[&str], env: &[(&str, &str)]) -> Stack {
        Stack::start_on(NatsServer::start().await, services, env).await
    }

    /// Like [`Stack::start_with_env`] on a server of the caller's (one that
    /// requires TLS, say: every binary and the test's client then use it).
    pub async fn start_on(server: NatsServer, services: &[&str], env: &[(&str, &str)]) -> Stack {
        let client = server.client().await;
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Stack::with_services(server, Vec::new(), client, env, services).await
    }

    /// Like [`Stack::start_with_env`] on a three-node JetStream cluster: every
    /// binary and the test's client know all three nodes, and the bucket
    /// and event stream have three replicas.
    pub async fn start_cluster_with_env(services: &[&str], env: &[(&str, &str)]) -> Stack {
        let mut nodes = NatsServer::start_cluster(3).await;
        let urls = nodes.iter().map(|n| n.url()).collect::<Vec<_>>().join(",");
        let client =
            async_nats::ConnectOptions::with_user_and_password("admin".into(), password("admin"))
                .retry_on_initial_connect()
                .connect(
                    nodes
                        .iter()
                        .map(|n| n.url().parse().expect("a server address"))
                        .collect::<Vec<async_nats::ServerAddr>>(),
                )
                .await
                .expect("connect to the test cluster");
        let mut all_env: Vec<(String, String)> = vec![
            ("NATS_URL".into(), urls),
            ("OMS_REPLICAS".into(), "3".into()),
        ];
        all_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let server = nodes.remove(0);
        Stack::with_services(server, nodes, client, all_env, services).await
    }

    /// Every node: `server`, then the peers.
    pub fn nodes_mut(&mut self) -> impl Iterator<Item = &mut NatsServer> {
        std::iter::once(&mut self.server).chain(self.peers.iter_mut())
    }

    async fn with_services(
        server: NatsServer,
        peers: Vec<NatsServer>,
        client: Client,
        env: Vec<(String, String)>,
        services: &[&str],
    ) -> Stack {
        let mut stack = Stack {
            server,
            peers,
            client,
            procs: Vec::new(),
            env,
        };
        stack.bootstrap().await;
        for service in services {
            stack.spawn(service);
        }
        for service in services {
            let count = services.iter().filter(|s| *s == service).count();
            stack.wait_for(service, count).await;
        }
        stack
    }

    /// Runs `oms-init` to its end: the bucket and the streams exist after.
    /// (Not kept in `procs`, which holds what the test started.)
    pub async fn bootstrap(&mut self) {
        let mut env = self.server.env_for("oms-init");
        env.extend(self.env.iter().cloned());
        let mut init = Proc::start("oms-init", &env);
        init.may_exit();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
        while init.exit_status().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "oms-init did not finish\n{}",
                init.report()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            init.exit_status().is_some_and(|s| s.success()),
            "oms-init failed\n{}",
            init.report()
        );
    }

    /// Runs `oms-verify` to its end (at most 90 s): its exit code and its
    /// output (the report's lines, and its log lines).
    pub async fn verify(&self) -> (i32, String) {
        let mut env = self.server.env_for("oms-verify");
        env.extend(self.env.iter().cloned());
        let mut verify = Proc::start("oms-verify", &env);
        verify.may_exit();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while verify.exit_status().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "oms-verify did not finish\n{}",
                verify.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let code = verify.exit_status().and_then(|s| s.code()).unwrap_or(-1);
        (code, verify.log())
    }

    /// Starts one more instance of a binary; returns its index in `procs`.
    /// `env` comes last, so it may override where NATS is.
    pub fn spawn(&mut self, binary: &str) -> usize {
        self.spawn_with(binary, &[])
    }

    /// Starts one instance with environment for it alone (e.g. `OMS_FAULTS`
    /// to make just this one crash at a fault point).
    pub fn spawn_with(&mut self, binary: &str, extra: &[(&str, &str)]) -> usize {
        let mut env = self.server.env_for(binary);
        env.extend(self.env.iter().cloned());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.procs.push(Proc::start(binary, &env));
        self.procs.len() - 1
    }

    /// Waits until `procs[index]` has exited (at a fault point, say), or
    /// panics after `secs`.
    pub async fn wait_exit(&mut self, index: usize, secs: u64) {
        let name = self.procs[index].name.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !self.procs[index].has_exited() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} did not exit within {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `instances` instances of `service` answer PING; fails at
    /// once, with its log, when one of its processes has ended.
    pub async fn wait_for(&self, service: &str, instances: usize) {
        let ended = async {
            loop {
                for proc in self.procs.iter().filter(|p| p.name == service) {
                    if let Some(status) = proc.exit_status() {
                        return format!("{service} ended ({status})\n{}", proc.report());
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = wait_for_service(&self.client, service, instances) => {}
            why = ended => panic!("{why}"),
        }
    }

    pub async fn request(&self, subject: &str, body: &Value) -> Reply {
        request(&self.client, subject, body).await
    }

    /// Adds stock through `inventory.add-stock`, which must succeed; returns
    /// the product.
    pub async fn add_stock(&self, product_id: &str, quantity: u64, price: f64) -> Value {
        let body =
            serde_json::json!({"productId": product_id, "quantity": quantity, "price": price});
        let reply = self.request("inventory.add-stock", &body).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    /// A product's `(quantity, reserved)`, read through `inventory.get`.
    pub async fn counts(&self, product_id: &str) -> (u64, u64) {
        let body = serde_json::json!({"productId": product_id});
        let reply = self.request("inventory.get", &body).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let count = |field: &str| reply.body[field].as_u64().expect("a count");
        (count("quantity"), count("reserved"))
    }

    /// Every key of the `oms` bucket with its revision: "nothing changed"
    /// means two snapshots are equal.
    pub async fn snapshot(&self) -> Vec<(String, u64)> {
        within(
            Duration::from_secs(60),
            "snapshot of the bucket",
            self.read_snapshot(),
        )
        .await
    }

    async fn read_snapshot(&self) -> Vec<(String, u64)> {
        let kv = async_nats::jetstream::new(self.client.clone())
            .get_key_value("oms")
            .await
            .expect("bucket oms");
        let mut keys: Vec<String> = kv
            .keys()
            .await
            .expect("list keys")
            .filter_map(|k| async move { k.ok() })
            .collect()
            .await;
        keys.sort();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(entry) = kv.entry(&key).await.expect("read key") {
                out.push((key, entry.revision));
            }
        }
        out
    }

    /// Every order event in `OMS_EVENTS` (`events.orders.*`), read once the
    /// event derivation has reached the last order revision in the bucket:
    /// no order write is left that could still add one, so a count is
    /// exact, not "at least".
    pub async fn quiet_events(&self) -> Vec<(String, String, Value)> {
        self.events_to_last_order()
            .await
            .into_iter()
            .filter(|e| e.0.starts_with("events.orders."))
            .collect()
    }

    /// Every event in `OMS_EVENTS` (stock-level events too), read once the
    /// derivation has reached the last order revision: product revisions
    /// stored before it have been derived (make an order the last write).
    pub async fn events_to_last_order(&self) -> Vec<(String, String, Value)> {
        let js = async_nats::jetstream::new(self.client.clone());
        let bucket = js.get_stream("KV_oms").await.expect("the bucket");
        let last_order = bucket
            .get_last_raw_message_by_subject("$KV.oms.order.>")
            .await
            .expect("an order revision")
            .sequence;
        eventually(20, "events caught up with the last order", || async {
            let Ok(events) = js.get_stream("OMS_EVENTS").await else {
                return false;
            };
            let Ok(last) = events.get_last_raw_message_by_subject("events.>").await else {
                return false;
            };
            // Revisions are derived in order; a stock event may come after.
            last.headers
                .get("Oms-Revision")
                .and_then(|v| v.as_str().parse::<u64>().ok())
                >= Some(last_order)
        })
        .await;
        self.stream_messages("OMS_EVENTS").await
    }

    /// Every entry of `OMS_LEDGER` (its JSON bodies, in order), read once the
    /// ledger derivation has reached the last product revision in the
    /// bucket: no product write is left that could still add one.
    pub async fn quiet_ledger(&self) -> Vec<Value> {
        let js = async_nats::jetstream::new(self.client.clone());
        let bucket = js.get_stream("KV_oms").await.expect("the bucket");
        let last_product = bucket
            .get_last_raw_message_by_subject("$KV.oms.product.>")
            .await
            .expect("a product revision")
            .sequence
            .to_string();
        eventually(20, "the ledger caught up with the last product", || async {
            let Ok(ledger) = js.get_stream("OMS_LEDGER").await else {
                return false;
            };
            let Ok(last) = ledger.get_last_raw_message_by_subject("ledger.>").await else {
                return false;
            };
            last.headers.get("Oms-Revision").map(|v| v.as_str()) == Some(last_product.as_str())
        })
        .await;
        self.stream_messages("OMS_LEDGER")
            .await
            .into_iter()
            .map(|(_, _, body)| body)
            .collect()
    }

    /// Every message stored in `stream` (none while it does not exist yet),
    /// as (subject, `Nats-Msg-Id`, JSON body).
    pub async fn stream_messages(&self, stream: &str) -> Vec<(String, String, Value)> {
        let what = format!("reading stream {stream}");
        within(Duration::from_secs(120), &what, self.read_stream(stream)).await
    }

    async fn read_stream(&self, stream: &str) -> Vec<(String, String, Value)> {
        let js = async_nats::jetstream::new(self.client.clone());
        let Ok(stream) = js.get_stream(stream).await else {
            return Vec::new();
        };
        let last = stream
            .get_info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Ok(message) = stream.get_raw_message(seq).await {
                let id = message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let body = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
                out.push((message.subject.to_string(), id, body));
            }
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // each process shows its log as it drops
        }
        // Checked before anything is stopped, so that nothing is blamed for
        // dying of the teardown itself.
        let servers = std::iter::once(&mut self.server).chain(self.peers.iter_mut());
        let found: Vec<String> = self
            .procs
            .iter_mut()
            .chain(servers.filter_map(NatsServer::process_mut))
            .filter_map(|proc| {
                let trouble = proc.check()?;
                Some(format!("{} (pid {}): {trouble}", proc.name, proc.pid()))
            })
            .collect();
        for proc in &mut self.procs {
            proc.kill();
        }
        if !found.is_empty() {
            panic!(
                "the test passed, but not every process did:\n{}",
                found.join("\n")
            );
        }
    }
}
