//! The stack under test: a fresh nats-server (file storage, the project's
//! `nats-server.conf`, ephemeral ports) and the release binaries beside
//! this executable, one instance each.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testkit::{free_port, NatsServer, Proc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every handler binary with its subject, from the operation table.
pub fn handlers() -> impl Iterator<Item = (&'static str, String)> {
    oms_runtime::contract::OPERATIONS
        .iter()
        .map(|op| (op.service, op.subject()))
}

/// The processes that answer no requests. `BENCH_LEDGER=off` leaves
/// `inventory-ledger` out: what the ledger costs is the difference between
/// a run with it and one without.
pub fn workers() -> impl Iterator<Item = &'static str> {
    let off = std::env::var("BENCH_LEDGER").is_ok_and(|v| v == "off");
    oms_runtime::permissions::workers().filter(move |w| !(off && *w == "inventory-ledger"))
}

pub const GATEWAY: &str = "gateway";

/// A staff token for the bench's gateway (minted by its own `gateway token`
/// once the stack runs): every HTTP request of the bench carries it.
pub static TOKEN: OnceLock<String> = OnceLock::new();

pub struct Stack {
    pub server: NatsServer,
    pub gateway_addr: String,
    procs: BTreeMap<String, Proc>,
    bin_dir: PathBuf,
    /// The gateway's HS256 secret: made per run, never stored.
    jwt_secret: String,
}

impl Stack {
    /// Starts the server, every handler, the workers when asked, and the
    /// gateway; returns once every service answers `$SRV.PING` and the
    /// gateway's `/readyz` is 200.
    pub async fn start(with_workers: bool) -> Stack {
        let exe = std::env::current_exe().expect("path of oms-bench");
        let bin_dir = exe.parent().expect("target/<profile>").to_path_buf();
        let mut stack = Stack {
            server: NatsServer::start().await,
            gateway_addr: format!("127.0.0.1:{}", free_port()),
            procs: BTreeMap::new(),
            bin_dir,
            jwt_secret: format!("bench-{}-{}", nuid::next(), nuid::next()),
        };
        let init = Command::new(stack.bin_dir.join("oms-init"))
            .envs(stack.server.env_for("oms-init"))
            .status()
            .expect("run oms-init");
        assert!(init.success(), "oms-init failed: {init}");
        let minted = Command::new(stack.bin_dir.join(GATEWAY))
            .args(["token", "staff", "bench"])
            .env("OMS_JWT_SECRET", &stack.jwt_secret)
            .output()
            .expect("gateway token");
        assert!(minted.status.success(), "gateway token: {minted:?}");
        let token = String::from_utf8_lossy(&minted.stdout).trim().to_string();
        TOKEN.get_or_init(|| token);
        for (name, _) in handlers() {
            stack.spawn(name);
        }
        if with_workers {
            for name in workers() {
                stack.spawn(name);
            }
        }
        stack.spawn(GATEWAY);
        let control = stack.server.client().await;
        futures::future::join_all(
            handlers().map(|(name, _)| testkit::wait_for_service(&control, name, 1)),
        )
        .await;
        stack.wait_http_ok("/readyz", Duration::from_secs(30)).await;
        stack
    }

    /// Starts one instance of a binary (replacing the handle of an earlier
    /// one, which must have been stopped).
    pub fn spawn(&mut self, name: &str) {
        let path = self.bin_dir.join(name);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --release --workspace --bins`",
            path.display()
        );
        let mut command = Command::new(path);
        // `BENCH_LOG` (e.g. `info`) shows each request's handling time per
        // binary, in target/test-logs/bench-main/ (live with `OMS_TEST_LOGS=1`).
        command.env(
            "RUST_LOG",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        );
        if name == GATEWAY {
            command
                .env("NATS_URL", self.server.url())
                .env("NATS_USER", "gateway")
                .env("NATS_PASSWORD", testkit::password("gateway"))
                .env("GATEWAY_ADDR", &self.gateway_addr)
                .env("OMS_JWT_SECRET", &self.jwt_secret)
                // One principal, far past the default 10k/s: the bench
                // measures throughput, not the limit.
                .env("GATEWAY_RATE_LIMIT", "0");
        } else {
            command.envs(self.server.env_for(name));
        }
        self.procs
            .insert(name.to_string(), Proc::spawn(name, command));
    }

    /// SIGTERM (a handler drains), and waits for the exit.
    pub async fn stop(&mut self, name: &str) {
        if let Some(mut proc) = self.procs.remove(name) {
            proc.terminate().await;
        }
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs.get(name).map(Proc::pid)
    }

    /// Every running process of the stack, in report order: nats-server,
    /// the gateway, the handlers, the workers.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pids: Vec<(String, u32)> = self
            .server
            .pid()
            .map(|pid| ("nats-server".to_string(), pid))
            .into_iter()
            .collect();
        let names = [GATEWAY]
            .into_iter()
            .chain(handlers().map(|(name, _)| name))
            .chain(workers());
        for name in names {
            if let Some(pid) = self.pid(name) {
                pids.push((name.to_string(), pid));
            }
        }
        pids
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// Polls `GET path` on the gateway until it answers 200; returns how long
    /// that took.
    pub async fn wait_http_ok(&self, path: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if http_get(&self.gateway_addr, path).await.map(|(s, _)| s) == Some(200) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "gateway: GET {path} not 200 after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A one-shot HTTP/1.1 GET: status and body, or None when nothing answered.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let token = TOKEN.get().map_or("", String::as_str);
        let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// Resident set size of a process, in MiB, from `/proc/<pid>/status`.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
