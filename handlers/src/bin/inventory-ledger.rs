//! `inventory-ledger`: every revision of a product key becomes one entry in
//! `OMS_LEDGER` (`ledger.<productId>`, `Nats-Msg-Id = <productId>:<revision>`),
//! exactly once and in order, derived from the bucket's history by
//! `derive.rs` as `orders-events` derives order events — never written
//! beside the product, so a writer that dies after its write cannot lose
//! its entry. What an entry says is in `ledger.rs`.
//!
//! A worker of its own rather than a second derivation in `orders-events`:
//! it has its own stream and chain, its own NATS user (it may publish only
//! `ledger.>`), and it can be run, scaled and restarted without touching
//! the events. Two instances may run: the second one's chain breaks at its
//! first message and it resumes behind the first.

use async_nats::jetstream::kv;
use oms_handlers::derive::{self, Derivation, Derived};
use oms_handlers::ledger;
use std::time::Duration;

fn main() {
    oms_handlers::run_worker("inventory-ledger", |app| async move {
        let js = app.store.jetstream().clone();
        // oms-init creates it.
        while let Err(err) = js.get_stream(ledger::STREAM).await {
            tracing::warn!(error = %err, "OMS_LEDGER not there yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let products = Derivation {
            patterns: &[oms_handlers::model::PRODUCTS],
            stream: ledger::STREAM,
            derive: ledger_entry,
        };
        derive::run(&app.store, products).await
    })
}

/// The ledger entry of a product revision; deletes have none, and a value
/// that is not a product is dead-lettered.
fn ledger_entry(entry: &kv::Entry) -> Result<Option<Derived>, String> {
    let Some(entry) = ledger::entry_of(entry)? else {
        return Ok(None);
    };
    Ok(Some(Derived {
        subject: ledger::subject(&entry.product_id),
        msg_id: ledger::message_id(&entry.product_id, entry.revision),
        body: serde_json::to_vec(&entry).expect("entries serialize"),
    }))
}
