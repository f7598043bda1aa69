//! The store's compare-and-set against a real server: no lost update.

use oms_runtime::{Config, Store, Versioned};
use testkit::NatsServer;

async fn open(server: &NatsServer) -> Store {
    let mut config = Config::from_env().unwrap();
    config.nats_url = server.url();
    let client = server.client().await;
    let js = async_nats::jetstream::new(client.clone());
    Store::bootstrap(&js, &config).await.unwrap();
    Store::open(client, &config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_modify_loses_no_update() {
    let server = NatsServer::start().await;
    let stores = [open(&server).await, open(&server).await];
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let store = stores[t % 2].clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let _: Versioned<u64> = store
                        .modify("counter", |current: Option<u64>| {
                            Ok(current.unwrap_or(0) + 1)
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = stores[0].get::<u64>("counter").await.unwrap().unwrap();
    assert_eq!(total.value, 64 * 20);
}
