//! Local, disposable list indexes (DESIGN §4a).
//!
//! A list handler cannot scan a million KV keys per request, so each instance
//! keeps a `sled` index of the keys it lists, filled by replaying the bucket
//! (last value per key) and then following it. It lives in a temporary
//! directory: deleting it loses nothing, the next start rebuilds it. Lists may
//! lag writes by milliseconds; get-by-id reads KV and is always current.

use async_nats::jetstream::kv;
use oms_runtime::{Problem, Store};
use std::sync::Arc;

/// A sled tree mirroring the values of one key prefix, ordered by key.
#[derive(Clone)]
pub struct Mirror {
    tree: sled::Tree,
    _db: Arc<sled::Db>,
}

impl Mirror {
    /// Opens a fresh index and starts following `prefix.>` in the background.
    pub fn follow(store: Store, prefix: &'static str) -> Mirror {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("a temporary sled index opens");
        let tree = db.open_tree(prefix).expect("sled tree");
        let mirror = Mirror {
            tree: tree.clone(),
            _db: Arc::new(db),
        };
        let key_prefix = format!("{prefix}.");
        tokio::spawn(async move {
            store
                .follow(&format!("{prefix}.>"), |entry| {
                    let Some(id) = entry.key.strip_prefix(&key_prefix) else { return };
                    let result = match entry.operation {
                        kv::Operation::Put => tree.insert(id, entry.value.as_ref()).map(drop),
                        kv::Operation::Delete | kv::Operation::Purge => tree.remove(id).map(drop),
                    };
                    if let Err(err) = result {
                        tracing::error!(error = %err, "index write failed");
                    }
                })
                .await
        });
        mirror
    }

    /// Up to `limit` values with keys after `cursor`, and the cursor of the
    /// next page when there is one.
    pub fn page<T: serde::de::DeserializeOwned>(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), Problem> {
        let range = match cursor {
            Some(after) => self.tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.iter(),
        };
        let mut values = Vec::with_capacity(limit.min(1000));
        let mut last_key = None;
        for row in range {
            let (key, value) = row.map_err(Problem::internal)?;
            if values.len() == limit {
                return Ok((values, last_key));
            }
            values.push(serde_json::from_slice(&value).map_err(Problem::internal)?);
            last_key = Some(String::from_utf8_lossy(&key).into_owned());
        }
        Ok((values, None))
    }
}
