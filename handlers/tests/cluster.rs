//! Crash safety on a three-node JetStream cluster with a three-replica
//! bucket: the same storm as `crash_storm.rs`, but the node that leads the
//! bucket's stream is killed halfway and comes back later.

mod storm;

use std::time::Duration;
use testkit::Stack;

#[tokio::test]
async fn no_order_stock_or_event_is_lost_when_the_bucket_leader_dies() {
    let stack = Stack::start_cluster_with_env(&storm::SERVICES, &storm::ENV).await;
    storm::run(
        stack,
        Duration::from_secs(16),
        storm::Disruption::KillBucketLeader,
    )
    .await;
}
