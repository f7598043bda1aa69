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

/// A follower answers direct reads as soon as it has a write, which can be
/// after the write was acknowledged. With the third node paused, every
/// write needs this follower's vote, and it learns that the write is
/// committed only afterwards: read right after a create, it is behind.
/// Handlers connected only to it must still find the order and update it,
/// because every read of a replicated bucket asks the stream's leader. The
/// follower's own answer, asked just before, shows the lag was real.
#[tokio::test]
async fn right_after_a_create_a_lagging_follower_gives_no_404() {
    use async_nats::jetstream;
    use serde_json::json;
    let mut stack = Stack::start_cluster_with_env(&[], &[]).await;
    let urls: Vec<String> = stack.nodes_mut().map(|n| n.url()).collect();
    let names: Vec<String> = stack.nodes_mut().map(|n| n.name().to_string()).collect();
    let writer = [("NATS_URL", urls[0].as_str())];
    for binary in ["inventory-add-stock", "inventory-reserve", "orders-create"] {
        stack.spawn_with(binary, &writer);
        stack.wait_for(binary, 1).await;
    }
    stack.add_stock("A", 1000, 1.0).await;
    let js = jetstream::new(stack.client.clone());
    let info = js
        .get_stream("KV_oms")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap();
    let followers: Vec<usize> = (0..3).filter(|&i| names[i] != leader).collect();
    let (behind, paused) = (followers[0], followers[1]);
    let on_behind = [("NATS_URL", urls[behind].as_str())];
    for binary in ["orders-get", "orders-update-status"] {
        stack.spawn_with(binary, &on_behind);
        stack.wait_for(binary, 1).await;
    }
    let connect = |url: String| async move {
        async_nats::ConnectOptions::with_user_and_password(
            "admin".into(),
            testkit::password("admin"),
        )
        .connect(url)
        .await
        .unwrap()
    };
    let writer_client = connect(urls[leader_index(&names, &leader)].clone()).await;
    let replica = jetstream::new(connect(urls[behind].clone()).await)
        .get_stream("KV_oms")
        .await
        .unwrap();
    stack.nodes_mut().nth(paused).unwrap().pause();

    let mut stale_seen = 0;
    for attempt in 0..50 {
        let body = json!({"customerId": "c", "items": [{"productId": "A", "quantity": 1}]});
        let created = testkit::request(&writer_client, "orders.create", &body).await;
        assert_eq!(created.status, 200, "{:?}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        let subject = format!("$KV.oms.order.{id}");
        let stale = replica.direct_get_last_for_subject(&subject).await.is_err();
        let got = testkit::request(&writer_client, "orders.get", &json!({"id": id})).await;
        assert_eq!(got.status, 200, "attempt {attempt}: {:?}", got.body);
        let update = json!({"id": id, "status": "CONFIRMED"});
        let confirmed = testkit::request(&writer_client, "orders.update-status", &update).await;
        assert_eq!(
            confirmed.status, 200,
            "attempt {attempt}: {:?}",
            confirmed.body
        );
        stale_seen += usize::from(stale);
    }
    stack.nodes_mut().nth(paused).unwrap().resume();
    eprintln!("the follower answered stale in {stale_seen} of 50 attempts");
    assert!(
        stale_seen > 0,
        "the follower never lagged: nothing was proven"
    );
}

fn leader_index(names: &[String], leader: &str) -> usize {
    names.iter().position(|n| n == leader).unwrap()
}
