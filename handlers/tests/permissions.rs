//! Least privilege: each NATS user reaches only the subjects its job needs.
//! (Every other test runs each binary as its own user too, so "each binary
//! still works with exactly its own permissions" is proven by the suite.)

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use testkit::Stack;

async fn answered(client: &async_nats::Client, subject: &str, body: &serde_json::Value) -> bool {
    let request = client.request(subject.to_string(), body.to_string().into());
    matches!(
        tokio::time::timeout(Duration::from_secs(1), request).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn the_gateway_user_reaches_routes_and_nothing_else() {
    let stack = Stack::start(&["inventory-add-stock", "inventory-reserve", "inventory-get"]).await;
    stack.add_stock("A", 10, 1.0).await;
    let gateway = stack.server.client_as("gateway").await;
    let get = json!({"productId": "A"});
    assert!(answered(&gateway, "inventory.get", &get).await, "a route");
    let hold = json!({"orderId": "g1", "items": [{"productId": "A", "quantity": 1}]});
    assert!(
        !answered(&gateway, "inventory.reserve", &hold).await,
        "internal"
    );
    assert!(
        answered(&stack.client, "inventory.reserve", &hold).await,
        "control: it runs"
    );

    // No write around the handlers.
    gateway
        .publish("$KV.oms.product.A", "{}".into())
        .await
        .unwrap();
    gateway.flush().await.unwrap();
    let product = stack.request("inventory.get", &get).await;
    assert_eq!(product.body["quantity"], 9, "unchanged but for the hold");

    // No reading another identity's replies.
    let mut spy = gateway.subscribe("_INBOX_admin.>").await.unwrap();
    let mut own = stack.client.subscribe("_INBOX_admin.>").await.unwrap();
    stack.client.flush().await.unwrap();
    stack
        .client
        .publish("_INBOX_admin.x", "secret".into())
        .await
        .unwrap();
    stack.client.flush().await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(2), own.next()).await;
    assert!(matches!(seen, Ok(Some(_))), "control: the owner gets it");
    let leaked = tokio::time::timeout(Duration::from_millis(500), spy.next()).await;
    assert!(
        !matches!(leaked, Ok(Some(_))),
        "the gateway read another's inbox"
    );
}

#[tokio::test]
async fn a_handler_user_cannot_purge_or_delete_what_it_uses() {
    let stack = Stack::start(&["inventory-add-stock"]).await;
    stack.add_stock("A", 10, 1.0).await;
    for user in ["orders-events", "inventory-reserve"] {
        let js = jetstream::new(stack.server.client_as(user).await);
        let purge = tokio::time::timeout(Duration::from_secs(2), async {
            js.get_stream("KV_oms").await?.purge().await?;
            Ok::<_, async_nats::Error>(())
        })
        .await;
        assert!(!matches!(purge, Ok(Ok(()))), "{user} purged the bucket");
        let delete = tokio::time::timeout(Duration::from_secs(2), js.delete_key_value("oms")).await;
        assert!(!matches!(delete, Ok(Ok(_))), "{user} deleted the bucket");
        let update = tokio::time::timeout(
            Duration::from_secs(2),
            js.update_stream(jetstream::stream::Config {
                name: "OMS_EVENTS".into(),
                subjects: vec!["events.>".into()],
                max_messages: 1,
                ..Default::default()
            }),
        )
        .await;
        assert!(
            !matches!(update, Ok(Ok(_))),
            "{user} reconfigured OMS_EVENTS"
        );
    }
    let kv = jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await;
    let entry = kv.unwrap().get("product.A").await.unwrap();
    assert!(entry.is_some(), "the bucket and its data are still there");
}
