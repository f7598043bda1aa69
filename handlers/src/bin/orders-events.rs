//! `orders-events`: change data capture from the order keys to `OMS_EVENTS`.
//!
//! A durable consumer reads every revision of `order.*` from the bucket's
//! stream and publishes the event it stands for, acknowledging only after
//! `OMS_EVENTS` stored it. Killed at any moment, the unacknowledged
//! revisions come again and their `Nats-Msg-Id` makes the stream drop the
//! copies: every order change is published exactly once.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::HeaderMap;
use oms_handlers::events::{self, OrderEvent};
use oms_handlers::model::Order;
use oms_runtime::consumer::{consume, Ack};
use std::time::Duration;

fn main() {
    oms_handlers::run_worker("orders-events", |app| async move {
        let js = app.store.jetstream().clone();
        while let Err(err) = events::ensure_stream(&js, app.config.replicas).await {
            tracing::warn!(error = %err, "OMS_EVENTS not ready");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let config = pull::Config {
            durable_name: Some("orders-events".into()),
            description: Some("order key revisions -> OMS_EVENTS".into()),
            filter_subject: format!("$KV.{}.order.>", app.store.bucket),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(10),
            max_ack_pending: 10_000,
            ..Default::default()
        };
        consume(&js, &app.store.stream_name(), config, 64, |message| {
            let js = js.clone();
            async move {
                let ack = publish(&js, &message).await;
                (message, ack)
            }
        })
        .await
    })
}

async fn publish(
    js: &async_nats::jetstream::Context,
    message: &async_nats::jetstream::Message,
) -> Ack {
    let Ok(info) = message.info() else {
        return Ack::Done;
    };
    let revision = info.stream_sequence;
    // Deletes and purges of order keys carry no order.
    let Ok(order) = serde_json::from_slice::<Order>(&message.payload) else {
        return Ack::Done;
    };
    let (subject, event) = OrderEvent::of(order);
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        events::message_id(&event.order_id, revision).as_str(),
    );
    let body = serde_json::to_vec(&event).expect("events serialize");
    match js.publish_with_headers(subject, headers, body.into()).await {
        Ok(ack) => match ack.await {
            Ok(_) => Ack::Done,
            Err(err) => {
                tracing::warn!(error = %err, "event not stored; will retry");
                Ack::Retry(Duration::from_secs(1))
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, "event not published; will retry");
            Ack::Retry(Duration::from_secs(1))
        }
    }
}
