//! A real nats-server per test, with the project's configuration.

use crate::process::{free_port, repo_root, Proc, TempDir};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct NatsServer {
    pub port: u16,
    pub monitor_port: u16,
    store: TempDir,
    process: Option<Proc>,
    /// Whether it ever listened: a restart keeps its port.
    started: bool,
    /// Set for a node of a cluster.
    node: Option<Node>,
    /// Set for a server that requires TLS.
    tls: Option<Tls>,
}

/// TLS for a test server, as `just up --tls` makes it: a CA
/// and certificates made by `scripts/tls.sh` (openssl) in a temp dir, and
/// a copy of the project's configuration with a `tls` block added.
pub struct Tls {
    dir: TempDir,
    /// The server verifies client certificates (mutual TLS).
    pub verify: bool,
}

impl Tls {
    /// Makes the CA and certificates; `verify`: mutual TLS.
    pub fn new(verify: bool) -> Tls {
        let dir = TempDir::new("tls");
        let made = Command::new("bash")
            .arg(repo_root().join("scripts/tls.sh"))
            .arg(dir.path())
            .output()
            .expect("run scripts/tls.sh (needs bash and openssl)");
        assert!(
            made.status.success(),
            "scripts/tls.sh failed: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        for file in ["nats-server.conf", "nats-users.conf"] {
            std::fs::copy(repo_root().join(file), dir.path().join(file)).expect("copy the config");
        }
        let file = |name: &str| dir.path().join(name).display().to_string();
        let conf = format!(
            "include \"nats-server.conf\"\ntls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: {verify}, timeout: 5 }}\n",
            file("server.pem"),
            file("server-key.pem"),
            file("ca.pem"),
        );
        std::fs::write(dir.path().join("nats-tls.conf"), conf).expect("write nats-tls.conf");
        Tls { dir, verify }
    }

    /// A file it made: `ca.pem`, `client.pem`, `client-key.pem`,
    /// `server.pem`, `server-key.pem`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `NATS_TLS_*` for a binary: the CA and the client certificate.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("NATS_TLS_CA", "ca.pem"),
            ("NATS_TLS_CERT", "client.pem"),
            ("NATS_TLS_KEY", "client-key.pem"),
        ]
        .into_iter()
        .map(|(var, name)| (var.into(), self.file(name).display().to_string()))
        .collect()
    }

    /// `options` with TLS required, the CA, and the client certificate.
    pub fn options(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        options
            .require_tls(true)
            .add_root_certificates(self.file("ca.pem"))
            .add_client_certificate(self.file("client.pem"), self.file("client-key.pem"))
    }
}

/// What makes a server one node of a cluster.
struct Node {
    /// Its `server_name` (the leader names in stream info).
    name: String,
    route_port: u16,
    /// Every node's route URL, comma-separated.
    routes: String,
}

impl NatsServer {
    /// Starts nats-server on free ports with a fresh JetStream store.
    pub async fn start() -> NatsServer {
        let mut server = NatsServer::unstarted(None);
        server.launch().await;
        server
    }

    /// Like [`NatsServer::start`], with TLS required of every client.
    pub async fn start_tls(tls: Tls) -> NatsServer {
        let mut server = NatsServer::unstarted(None);
        server.tls = Some(tls);
        server.launch().await;
        server
    }

    /// Its TLS, when it requires TLS.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// A server not started yet, on ports free a moment ago.
    fn unstarted(node: Option<Node>) -> NatsServer {
        NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            store: TempDir::new("nats"),
            process: None,
            started: false,
            node,
            tls: None,
        }
    }

    /// Starts `size` nats-servers that form one JetStream cluster (named
    /// `oms-0`, `oms-1`, ...).
    pub async fn start_cluster(size: usize) -> Vec<NatsServer> {
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::with_capacity(size);
        for (i, route_port) in route_ports.into_iter().enumerate() {
            let mut server = NatsServer::unstarted(Some(Node {
                name: format!("oms-{i}"),
                route_port,
                routes: routes.clone(),
            }));
            server.launch().await;
            nodes.push(server);
        }
        nodes
    }

    /// The server's name in a cluster (`oms-<i>`), or `oms`.
    pub fn name(&self) -> &str {
        self.node.as_ref().map_or("oms", |n| n.name.as_str())
    }

    /// The running server's process id (None while stopped): for reading
    /// its CPU time from `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Proc::pid)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Environment for a binary: where NATS is, as its own user (each
    /// binary has one, with only the permissions its job needs), and the
    /// TLS files when the server requires TLS.
    pub fn env_for(&self, binary: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("NATS_URL".into(), self.url()),
            ("NATS_USER".into(), binary.into()),
            ("NATS_PASSWORD".into(), password(binary)),
        ];
        env.extend(self.tls.iter().flat_map(Tls::env));
        env
    }

    /// An admin client, as the `nats` CLI of an operator would connect.
    pub async fn client(&self) -> async_nats::Client {
        self.client_as("admin").await
    }

    /// A client with the given user's permissions (and its inbox prefix).
    pub async fn client_as(&self, user: &str) -> async_nats::Client {
        let options =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
                .custom_inbox_prefix(format!("_INBOX_{user}"));
        let options = match &self.tls {
            Some(tls) => tls.options(options),
            None => options,
        };
        options
            .connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    /// Its process while it runs.
    pub fn process_mut(&mut self) -> Option<&mut Proc> {
        self.process.as_mut()
    }

    /// Stops the server (SIGKILL) and starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    /// SIGSTOP: the server keeps its connections but does nothing, so as
    /// a cluster node it falls behind; [`NatsServer::resume`] wakes it.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`NatsServer::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.process.as_ref().expect("server running").pid();
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }

    /// Stops the server (SIGKILL) until [`NatsServer::restart`]: for tests of
    /// what clients do while NATS is away.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts nats-server and waits until it listens. Ports come from
    /// `free_port`, which another process may grab between our pick and the
    /// server's bind (tests run in parallel): when the server exits at once,
    /// a first start picks new ports, a restart tries the same port again.
    async fn launch(&mut self) {
        let first_start = !self.started;
        for _ in 0..10 {
            let mut command = Command::new(nats_server_binary());
            command.envs(password_env());
            let conf = match &self.tls {
                Some(tls) => tls.file("nats-tls.conf"),
                None => repo_root().join("nats-server.conf"),
            };
            command
                .arg("-c")
                .arg(conf)
                .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-m", &self.monitor_port.to_string()])
                .arg("-sd")
                .arg(self.store.path());
            if let Some(node) = &self.node {
                let route = format!("nats://127.0.0.1:{}", node.route_port);
                command
                    .args(["-n", &node.name, "--cluster_name", "oms"])
                    .args(["--cluster", &route, "--routes", &node.routes]);
            }
            let mut process = Proc::spawn("nats-server", command);
            let address = format!("127.0.0.1:{}", self.port);
            for _ in 0..200 {
                // Something listening is not enough: it may be another test's
                // process on a port ours failed to bind. Ours must still run.
                let connect = tokio::net::TcpStream::connect(&address);
                let listening = tokio::time::timeout(Duration::from_secs(1), connect).await;
                if matches!(listening, Ok(Ok(_))) && {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    !process.has_exited()
                } {
                    self.process = Some(process);
                    self.started = true;
                    return;
                }
                if process.has_exited() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            process.kill();
            if first_start {
                self.port = free_port();
                self.monitor_port = free_port();
                if let Some(node) = &mut self.node {
                    node.route_port = free_port(); // the others still find it: routes gossip
                }
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!("nats-server did not start on 127.0.0.1:{}", self.port);
    }
}

/// `.tools/bin/nats-server` (installed by scripts/install-tools.sh), else PATH.
fn nats_server_binary() -> PathBuf {
    let local = repo_root().join(".tools/bin/nats-server");
    if local.exists() {
        local
    } else {
        PathBuf::from("nats-server")
    }
}

/// A user's password on the test servers of this test process: made up at
/// run time, never stored.
pub fn password(user: &str) -> String {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{:x}{:x}", nanos, std::process::id())
    });
    format!("{user}-{nonce}")
}

/// `OMS_NATS_PASSWORD_<USER>` for every user `nats-users.conf` names, as
/// `nats-server.conf` reads them.
fn password_env() -> Vec<(String, String)> {
    let users =
        std::fs::read_to_string(repo_root().join("nats-users.conf")).expect("nats-users.conf");
    users
        .lines()
        .filter_map(|line| line.trim().strip_prefix("{ user: \"")?.split('"').next())
        .map(|user| {
            let variable = format!(
                "OMS_NATS_PASSWORD_{}",
                user.to_ascii_uppercase().replace('-', "_")
            );
            (variable, password(user))
        })
        .collect()
}
