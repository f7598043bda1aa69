//! Crash safety on one nats-server: handler instances SIGKILLed every two
//! seconds, nats-server itself restarted once (the storm is in `storm/`);
//! once more, shorter, with every connection over mutual TLS.

mod storm;

use std::time::Duration;
use testkit::{NatsServer, Stack, Tls};

#[tokio::test]
async fn no_order_stock_or_event_is_lost_in_a_crash_storm() {
    let stack = Stack::start_with_env(&storm::SERVICES, &storm::ENV).await;
    storm::run(
        stack,
        Duration::from_secs(20),
        storm::Disruption::RestartServer,
    )
    .await;
}

#[tokio::test]
async fn the_crash_storm_passes_over_mutual_tls() {
    let server = NatsServer::start_tls(Tls::new(true)).await;
    let stack = Stack::start_on(server, &storm::SERVICES, &storm::ENV).await;
    storm::run(
        stack,
        Duration::from_secs(8),
        storm::Disruption::RestartServer,
    )
    .await;
}
