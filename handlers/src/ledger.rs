//! The inventory ledger: one entry per product revision in
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

use async_nats::jetstream::{kv, stream};
use oms_contract::Product;

pub const STREAM: &str = "OMS_LEDGER";

pub fn subject(product_id: &str) -> String {
    format!("ledger.{product_id}")
}

pub fn message_id(product_id: &str, revision: u64) -> String {
    format!("{product_id}:{revision}")
}

/// One product revision's change of counts (the contract's).
pub use oms_contract::LedgerEntry as Entry;

/// The entry a bucket revision of `product.<id>` stands for; deletes stand
/// for none (products are never deleted).
pub fn entry_of(entry: &kv::Entry) -> Result<Option<Entry>, String> {
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    serde_json::from_slice::<Product>(&entry.value)
        .map(|product| Some(Entry::of(product, entry.revision)))
        .map_err(|err| format!("not a product: {err}"))
}

/// `OMS_LEDGER` as `oms-init` creates it; `oms-init` then sets its byte
/// limit, refusing new entries at it (a ledger that dropped old entries
/// could not be replayed).
pub fn stream_config(replicas: usize, max_bytes: i64) -> stream::Config {
    stream::Config {
        // History pages read entries by subject and sequence (direct gets).
        allow_direct: true,
        ..crate::derive::stream_config(STREAM, "ledger.>", replicas, max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_contract::{Cents, Part, Reason};

    fn product(last_change: Option<oms_contract::Change>) -> Product {
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
        let entry = Entry::of(product(Some(oms_contract::Change::new(4, part))), 99);
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
