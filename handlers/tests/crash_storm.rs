//! Crash safety on one nats-server: handler instances SIGKILLed every two
//! seconds, nats-server itself restarted once (the storm is in `storm/`).

mod storm;

use std::time::Duration;
use testkit::Stack;

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
