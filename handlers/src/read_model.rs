//! Local, disposable list indexes.
//!
//! A list handler cannot scan a million KV keys per request, so each instance
//! keeps a `sled` index of the keys it lists, filled by replaying the bucket
//! (last value per key) and then following it. It lives in a temporary
//! directory: deleting it loses nothing, the next start rebuilds it. Lists may
//! lag writes by milliseconds; get-by-id reads KV and is always current.

use async_nats::jetstream::kv;
use oms_runtime::{Problem, Store};
use std::collections::HashMap;
use std::sync::Arc;

/// A stored value handed out as it is: a page is the stored JSON values
/// side by side, never parsed into structs and printed again.
pub type Raw = Box<serde_json::value::RawValue>;

fn raw(json: &[u8]) -> Result<Raw, Problem> {
    let text = std::str::from_utf8(json).map_err(Problem::internal)?;
    serde_json::value::RawValue::from_string(text.to_owned()).map_err(Problem::internal)
}

/// What a list operation answers: up to `limit` values, and where the next
/// page starts when there is one.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawPage {
    pub items: Vec<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

// A page of stored products or orders is their list reply, copied.
impl oms_contract::Answer<oms_contract::Page<oms_contract::Product>> for RawPage {}
impl oms_contract::Answer<oms_contract::Page<oms_contract::Order>> for RawPage {}
impl oms_contract::Answer<oms_contract::Page<oms_contract::LedgerEntry>> for RawPage {}

impl RawPage {
    fn new(items: Vec<Raw>, next_cursor: Option<String>) -> RawPage {
        RawPage { items, next_cursor }
    }
}

/// Room kept in a reply for what is not items: the headers, the braces,
/// `nextCursor`.
const REPLY_HEADROOM: usize = 4096;

/// The bytes of items a page may hold so that its reply stays within the
/// server's `max_payload`: a page ends before it would pass
/// them, whatever `limit` says, and its cursor goes on from there.
pub fn page_bytes(client: &async_nats::Client) -> usize {
    client
        .server_info()
        .max_payload
        .saturating_sub(REPLY_HEADROOM)
        .max(1)
}

/// Counts what a page holds against both of its bounds.
struct Fill {
    items: usize,
    bytes: usize,
    limit: usize,
    max_bytes: usize,
}

impl Fill {
    fn new(limit: usize, max_bytes: usize) -> Fill {
        Fill {
            items: 0,
            bytes: 0,
            limit,
            max_bytes,
        }
    }

    /// Takes one more item of `len` bytes if it fits; the first one always
    /// does (a page is never empty while there is more).
    fn take(&mut self, len: usize) -> bool {
        let bytes = self.bytes + len + 1; // and a comma
        if self.items == self.limit || (self.items > 0 && bytes > self.max_bytes) {
            return false;
        }
        self.items += 1;
        self.bytes = bytes;
        true
    }
}

/// The fields an order is indexed by, borrowed from its stored JSON: an
/// index rebuild parses every order, and needs nothing else of it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Indexed<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    customer_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    created_at: std::borrow::Cow<'a, str>,
}

/// The one field a filtered page must check.
#[derive(serde::Deserialize)]
struct StatusOnly<'a> {
    #[serde(borrow)]
    status: &'a str,
}

/// sled's page cache per index (its default is 1 GiB). The index is
/// rebuilt from the stream anyway; a small cache keeps a list handler small.
const CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// Index directories are named `oms-index-<pid>-...` in the temp directory.
const INDEX_DIR: &str = "oms-index-";

/// A fresh, empty index in a directory of its own under the temp directory,
/// deleted when this process ends cleanly. On disk, not sled's default
/// `/dev/shm`: an index of a million orders must not live in memory. Indexes
/// of processes that were killed are removed here, at the next start.
fn open_index(name: &str) -> sled::Db {
    let dir = std::env::temp_dir();
    remove_stale_indexes(&dir);
    let own = format!("{INDEX_DIR}{}-{name}-{}", std::process::id(), nuid::next());
    sled::Config::new()
        .path(dir.join(own))
        .temporary(true)
        .cache_capacity(CACHE_BYTES)
        .mode(sled::Mode::HighThroughput)
        .open()
        .expect("a temporary sled index opens")
}

fn remove_stale_indexes(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(INDEX_DIR)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        let alive = std::path::Path::new("/proc").join(pid).exists();
        if !pid.is_empty() && !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Follows `pattern` into an index in the background (`apply` takes each
/// value), and returns once the index holds every current value: a list
/// instance must not answer from a half-built index (a restart at a million
/// orders takes tens of seconds), so it joins its service only then.
async fn fill(store: Store, pattern: String, apply: impl FnMut(Vec<kv::Entry>) + Send + 'static) {
    let started = std::time::Instant::now();
    let (ready, caught_up) = tokio::sync::oneshot::channel();
    let followed = pattern.clone();
    tokio::spawn(async move {
        let ready = move || {
            let _ = ready.send(());
        };
        store.follow(&followed, apply, ready).await
    });
    let _ = caught_up.await;
    let millis = started.elapsed().as_millis() as u64;
    tracing::info!(%pattern, millis, "index caught up");
}

/// A sled tree mirroring the values of one key prefix, ordered by key.
#[derive(Clone)]
pub struct Mirror {
    tree: sled::Tree,
    _db: Arc<sled::Db>,
}

impl Mirror {
    /// Opens a fresh index, follows the keys of `pattern` (`product.>`) in
    /// the background, and returns once the index holds every current value.
    pub async fn follow(store: Store, pattern: &'static str) -> Mirror {
        let prefix = pattern.trim_end_matches(".>");
        let db = open_index(prefix);
        let tree = db.open_tree(prefix).expect("sled tree");
        let mirror = Mirror {
            tree: tree.clone(),
            _db: Arc::new(db),
        };
        let key_prefix = format!("{prefix}.");
        fill(store, pattern.into(), move |entries| {
            // One sled batch per chunk: a busy bucket costs one index write
            // per chunk, not one per change.
            let mut batch = sled::Batch::default();
            for entry in entries {
                let Some(id) = entry.key.strip_prefix(&key_prefix) else {
                    continue;
                };
                match entry.operation {
                    kv::Operation::Put => batch.insert(id, entry.value.as_ref()),
                    kv::Operation::Delete | kv::Operation::Purge => batch.remove(id),
                }
            }
            if let Err(err) = tree.apply_batch(batch) {
                tracing::error!(error = %err, "index write failed");
            }
        })
        .await;
        mirror
    }

    /// Up to `limit` values (and `max_bytes` of them) with keys after
    /// `cursor`, and the cursor of the next page when there is one.
    pub fn page(
        &self,
        cursor: Option<&str>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<RawPage, Problem> {
        let range = match cursor {
            Some(after) => self.tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.iter(),
        };
        let mut values = Vec::with_capacity(limit.min(1000));
        let mut last_key = None;
        let mut fill = Fill::new(limit, max_bytes);
        for row in range {
            let (key, value) = row.map_err(Problem::internal)?;
            if !fill.take(value.len()) {
                return Ok(RawPage::new(values, last_key));
            }
            values.push(raw(&value)?);
            last_key = Some(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(RawPage::new(values, None))
    }
}

/// Orders, newest first, with indexes by status and by customer so a
/// filtered page reads only what it returns, at any number of orders.
///
/// Index keys end in `<createdAt>|<id>` (RFC 3339 with milliseconds sorts as
/// time); that suffix is the page cursor.
#[derive(Clone)]
pub struct OrderIndex {
    orders: sled::Tree,
    by_time: sled::Tree,
    by_status: sled::Tree,
    by_customer: sled::Tree,
    _db: Arc<sled::Db>,
}

/// Which orders a page lists.
#[derive(Debug, Default)]
pub struct OrderFilter<'a> {
    pub status: Option<&'a str>,
    pub customer_id: Option<&'a str>,
}

impl OrderIndex {
    /// Opens a fresh index, follows `order.>` in the background, and
    /// returns once the index holds every current order.
    pub async fn follow(store: Store) -> OrderIndex {
        let db = open_index("order");
        let tree = |name: &str| db.open_tree(name).expect("sled tree");
        let index = OrderIndex {
            orders: tree("orders"),
            by_time: tree("by_time"),
            by_status: tree("by_status"),
            by_customer: tree("by_customer"),
            _db: Arc::new(db),
        };
        let follower = index.clone();
        fill(store, crate::model::ORDERS.into(), move |entries| {
            if let Err(err) = follower.apply(&entries) {
                tracing::error!(error = %err, "index write failed");
            }
        })
        .await;
        index
    }

    /// Indexes a chunk of order revisions as one sled batch per tree. An
    /// order's id, customer and creation time never change, so only its
    /// first revision adds it to the time and customer indexes; a later one
    /// moves it between statuses.
    fn apply(&self, entries: &[kv::Entry]) -> sled::Result<()> {
        let mut status_of: HashMap<String, String> = HashMap::new();
        let mut orders = sled::Batch::default();
        let mut by_time = sled::Batch::default();
        let mut by_status = sled::Batch::default();
        let mut by_customer = sled::Batch::default();
        for entry in entries {
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let order = match serde_json::from_slice::<Indexed>(&entry.value) {
                Ok(order) => order,
                Err(err) => {
                    tracing::warn!(key = %entry.key, error = %err, "not an order");
                    continue;
                }
            };
            let suffix = format!("{}|{}", order.created_at, order.id);
            let before = match status_of.get(order.id.as_ref()) {
                Some(status) => Some(status.clone()),
                None => self.orders.get(order.id.as_bytes())?.and_then(|old| {
                    let old = serde_json::from_slice::<StatusOnly>(&old).ok()?;
                    Some(old.status.to_string())
                }),
            };
            match &before {
                Some(old) if old != order.status.as_ref() => {
                    by_status.remove(format!("{old}|{suffix}").as_bytes());
                }
                Some(_) => {}
                None => {
                    by_time.insert(suffix.as_bytes(), order.id.as_bytes());
                    let key = format!("{}\0{suffix}", order.customer_id);
                    by_customer.insert(key.as_bytes(), order.id.as_bytes());
                }
            }
            let status_key = format!("{}|{suffix}", order.status);
            by_status.insert(status_key.as_bytes(), order.id.as_bytes());
            orders.insert(order.id.as_bytes(), entry.value.as_ref());
            status_of.insert(order.id.to_string(), order.status.to_string());
        }
        self.orders.apply_batch(orders)?;
        self.by_time.apply_batch(by_time)?;
        self.by_status.apply_batch(by_status)?;
        self.by_customer.apply_batch(by_customer)
    }

    /// Up to `limit` orders (and `max_bytes` of them) older than `cursor`,
    /// newest first, and the cursor of the next page when there is one.
    pub fn page(
        &self,
        filter: &OrderFilter,
        cursor: Option<&str>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<RawPage, Problem> {
        let (tree, prefix) = match (filter.customer_id, filter.status) {
            (Some(customer), _) => (&self.by_customer, format!("{customer}\0")),
            (None, Some(status)) => (&self.by_status, format!("{status}|")),
            (None, None) => (&self.by_time, String::new()),
        };
        let rows: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match cursor {
            Some(cursor) => {
                let start = prefix.as_bytes().to_vec();
                let end = format!("{prefix}{cursor}").into_bytes();
                Box::new(tree.range(start..end).rev())
            }
            None => Box::new(tree.scan_prefix(prefix.as_bytes()).rev()),
        };
        let mut orders = Vec::with_capacity(limit.min(1000));
        let mut last = None;
        let mut fill = Fill::new(limit, max_bytes);
        for row in rows {
            let (key, id) = row.map_err(Problem::internal)?;
            let Some(json) = self.orders.get(&id).map_err(Problem::internal)? else {
                continue;
            };
            let order: StatusOnly = serde_json::from_slice(&json).map_err(Problem::internal)?;
            if filter.status.is_some_and(|s| s != order.status) {
                continue; // a stale status entry, or a customer page filtered by status
            }
            if !fill.take(json.len()) {
                return Ok(RawPage::new(orders, last));
            }
            orders.push(raw(&json)?);
            last = Some(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        }
        Ok(RawPage::new(orders, None))
    }
}

#[cfg(test)]
mod tests {
    use super::Fill;

    #[test]
    fn a_page_ends_at_its_limit_or_before_its_bytes() {
        let mut by_count = Fill::new(2, 1000);
        assert!(by_count.take(10) && by_count.take(10) && !by_count.take(10));
        let mut by_bytes = Fill::new(100, 25);
        assert!(by_bytes.take(10) && by_bytes.take(10)); // 22 bytes with commas
        assert!(!by_bytes.take(10), "33 bytes would pass 25");
        let mut huge = Fill::new(100, 25);
        assert!(huge.take(500), "a first item is always taken");
        assert!(!huge.take(1));
    }
}
