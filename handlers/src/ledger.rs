//! The inventory ledger (DESIGN §11): one entry per product revision in
//! stream `OMS_LEDGER`, subject `ledger.<productId>`, `Nats-Msg-Id =
//! <productId>:<revision>`.
//!
//! An entry is derived from the revision alone (`inventory-ledger`, with
//! `derive.rs`, exactly once): the counts after it are the revision's, and
//! why and by how much they moved is what the writer recorded in the same
//! write (`lastChange`, see `model::Change`). So the deriver keeps no state
//! and needs no earlier revision, and the ledger says what each write
//! *meant*: summed, it must give today's counts, which is what `oms-verify`
//! checks — a revision written without its change (a hand edit in KV)
//! stands out as `unrecorded`, or as a repeated `seq`, instead of being
//! explained away as a difference.

use crate::model::{Part, Product, Reason};
use async_nats::jetstream::{self, kv, stream};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const STREAM: &str = "OMS_LEDGER";

pub fn subject(product_id: &str) -> String {
    format!("ledger.{product_id}")
}

pub fn message_id(product_id: &str, revision: u64) -> String {
    format!("{product_id}:{revision}")
}

/// One product revision's change of counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub product_id: String,
    /// The product's KV revision this entry stands for.
    pub revision: u64,
    /// The product's change number (`lastChange.seq`): 1, 2, ... per
    /// product; 0 for a revision that recorded no change.
    pub seq: u64,
    /// When the change was made (the product's `updatedAt`).
    pub at: String,
    /// `reason` (`unrecorded` for a revision that recorded none: a hand
    /// edit, or a write from before changes were recorded; its deltas are
    /// 0, the ledger does not guess), `ref`, `actor`, `note`, the deltas.
    #[serde(flatten)]
    pub change: Part,
    pub quantity_after: u64,
    pub reserved_after: u64,
    /// The requests' changes when a group wrote several at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

impl Entry {
    /// The entry a stored product revision stands for.
    pub fn of(product: Product, revision: u64) -> Entry {
        let (seq, change, parts) = match product.last_change {
            Some(change) => (change.seq, change.part, change.parts),
            None => (0, Part::new(Reason::Unrecorded, None, None), Vec::new()),
        };
        Entry {
            product_id: product.product_id,
            revision,
            seq,
            at: product.updated_at,
            change,
            quantity_after: product.quantity,
            reserved_after: product.reserved,
            parts,
        }
    }

    /// The counts before this entry, by its own account.
    pub fn before(&self) -> (i64, i64) {
        (
            self.quantity_after as i64 - self.change.quantity_delta,
            self.reserved_after as i64 - self.change.reserved_delta,
        )
    }
}

/// The entry a bucket revision of `product.<id>` stands for; deletes stand
/// for none (products are never deleted).
pub fn entry_of(entry: &kv::Entry) -> Option<Entry> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    match serde_json::from_slice::<Product>(&entry.value) {
        Ok(product) => Some(Entry::of(product, entry.revision)),
        Err(err) => {
            tracing::error!(key = %entry.key, error = %err, "not a product; no ledger entry");
            None
        }
    }
}

/// Creates `OMS_LEDGER` if missing (`oms-init`); safe from any number of
/// processes. `max_bytes` (-1: no limit) is where a size limit goes: the
/// oldest entries go first.
pub async fn ensure_stream(
    js: &jetstream::Context,
    replicas: usize,
    max_bytes: i64,
) -> Result<(), async_nats::Error> {
    js.get_or_create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["ledger.>".into()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: replicas,
        max_bytes,
        // History pages read entries by subject and sequence (direct gets).
        allow_direct: true,
        ..Default::default()
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Cents;

    fn product(last_change: Option<crate::model::Change>) -> Product {
        Product {
            product_id: "A".into(),
            quantity: 7,
            reserved: 3,
            price: Cents(1),
            created_at: "t0".into(),
            updated_at: "t1".into(),
            low_stock_threshold: None,
            last_change,
            revision: None,
        }
    }

    #[test]
    fn an_entry_says_what_the_revision_recorded() {
        let part = Part::new(Reason::Reserve, Some("o1"), Some("bob")).moved(-3, 3);
        let entry = Entry::of(product(Some(crate::model::Change::new(4, part))), 99);
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"productId": "A", "revision": 99, "seq": 4, "at": "t1",
                "reason": "reserve", "ref": "o1", "actor": "bob",
                "quantityDelta": -3, "reservedDelta": 3, "quantityAfter": 7, "reservedAfter": 3})
        );
        assert_eq!(entry.before(), (10, 0));
        let back: Entry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn a_revision_without_its_change_is_unrecorded() {
        let entry = Entry::of(product(None), 5);
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["reason"], "unrecorded");
        assert_eq!(
            (json["seq"].as_u64(), json["quantityDelta"].as_i64()),
            (Some(0), Some(0))
        );
        assert_eq!(serde_json::from_value::<Entry>(json).unwrap(), entry);
    }
}
