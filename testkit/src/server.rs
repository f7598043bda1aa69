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
}

impl NatsServer {
    /// Starts nats-server on free ports with a fresh JetStream store.
    pub async fn start() -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            store: TempDir::new("nats"),
            process: None,
        };
        server.launch().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Environment for a handler process: where NATS is, as which user.
    pub fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("NATS_URL".into(), self.url()),
            ("NATS_USER".into(), "oms-service".into()),
            ("NATS_PASSWORD".into(), "oms-service".into()),
        ]
    }

    /// An admin client, as the `nats` CLI of an operator would connect.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin".into())
            .connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    /// A client with the given user's permissions.
    pub async fn client_as(&self, user: &str) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
            .connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    /// Stops the server (SIGKILL) and starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    /// Stops the server (SIGKILL) until [`NatsServer::restart`]: for tests of
    /// what clients do while NATS is away.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    async fn launch(&mut self) {
        let mut command = Command::new(nats_server_binary());
        command
            .arg("-c")
            .arg(repo_root().join("nats-server.conf"))
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(self.store.path());
        self.process = Some(Proc::spawn("nats-server", command));
        let address = format!("127.0.0.1:{}", self.port);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&address).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not listen on {address}");
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
