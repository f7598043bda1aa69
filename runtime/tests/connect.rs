//! Connecting as every binary does, against a real server.

use oms_runtime::{connect, Config};
use std::time::Duration;
use testkit::NatsServer;

#[tokio::test]
async fn nats_url_may_list_several_servers() {
    let server = NatsServer::start().await;
    let mut config = Config::from_env().unwrap();
    // A cluster's URLs, comma-separated as `just cluster` passes them.
    config.nats_url = format!("{}, {}", server.url(), server.url());
    config.nats_user = Some("admin".into());
    config.nats_password = Some(testkit::password("admin"));
    let client = tokio::time::timeout(Duration::from_secs(10), connect::connect(&config, "test"))
        .await
        .expect("connects to a listed server");
    client.flush().await.unwrap();
}
