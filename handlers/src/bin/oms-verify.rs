//! `oms-verify` (`just verify`): audits the books. It reads
//! the bucket at one moment (every product, order and hold, up to the end
//! of its stream: atomic batches are all in or all out) and replays the
//! ledger up to each product's revision, then reports every product
//!
//! - whose counts differ from the sum of its ledger entries,
//! - whose entries do not follow from each other (an entry's counts before
//!   are not the previous entry's after), or whose change numbers repeat
//!   or skip (a write that did not record itself, a lost entry),
//! - whose ledger does not reach its revision (the deriver is behind or
//!   not running; waited for while entries keep coming, up to 30 s),
//! - whose `reserved` differs from what its open orders (PENDING,
//!   CONFIRMED) and held holds (`reservation.<id>`) hold,
//!
//! one line each on stdout, and exits 1 if there is any (0 if none, 2 if
//! it could not read). Configured like every binary (NATS_URL, NATS_USER,
//! ...); it runs as its own NATS user, which may read and nothing else.

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, kv};
use futures::StreamExt;
use oms_handlers::contract::{Order, Product, Reservation, ReservationState};
use oms_handlers::ledger::{self, Entry};
use oms_runtime::{connect_app, Start, Store};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long the ledger may take to reach the products' revisions, at most,
/// and without a new entry.
const WAIT_FOR_LEDGER: Duration = Duration::from_secs(30);
const LEDGER_IDLE: Duration = Duration::from_secs(3);
const CONNECT_FOR: Duration = Duration::from_secs(15);

fn main() {
    let (_logs, config) = oms_runtime::init("oms-verify");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        // A one-shot audit does not wait for ever for NATS or the bucket.
        let Ok(app) = tokio::time::timeout(CONNECT_FOR, connect_app("oms-verify", config)).await
        else {
            eprintln!("oms-verify: no NATS or no bucket within {CONNECT_FOR:?}");
            return 2;
        };
        match verify(&app.store).await {
            Ok(report) => {
                for line in &report.problems {
                    println!("{line}");
                }
                println!("{}", report.summary());
                i32::from(!report.problems.is_empty())
            }
            Err(err) => {
                eprintln!("oms-verify: could not read the books: {err}");
                2
            }
        }
    });
    std::process::exit(code)
}

struct Report {
    products: usize,
    entries: u64,
    orders: usize,
    holds: usize,
    problems: Vec<String>,
    disagreeing: usize,
}

impl Report {
    fn summary(&self) -> String {
        let what = format!(
            "oms-verify: {} products, {} ledger entries, {} orders, {} holds",
            self.products, self.entries, self.orders, self.holds
        );
        match self.disagreeing {
            0 => format!("{what}: the books balance"),
            n => format!("{what}: {n} products disagree"),
        }
    }
}

async fn verify(store: &Store) -> Result<Report, String> {
    let books = snapshot(store).await?;
    let mut accounts: HashMap<String, Account> = books
        .products
        .iter()
        .map(|(id, (_, revision))| (id.clone(), Account::up_to(*revision)))
        .collect();
    let entries = replay(store.jetstream(), &mut accounts).await?;
    let mut problems = Vec::new();
    let mut disagreeing = 0;
    for (id, (product, _)) in &books.products {
        let open = books.open.get(id).copied().unwrap_or(0);
        let found = accounts[id].problems(id, product, open);
        disagreeing += usize::from(!found.is_empty());
        problems.extend(found);
    }
    Ok(Report {
        products: books.products.len(),
        entries,
        orders: books.orders,
        holds: books.holds,
        problems,
        disagreeing,
    })
}

/// The bucket at one moment.
struct Books {
    /// Product id -> the product and its revision.
    products: BTreeMap<String, (Product, u64)>,
    /// Product id -> units its open orders and held holds hold.
    open: HashMap<String, u64>,
    orders: usize,
    holds: usize,
}

async fn snapshot(store: &Store) -> Result<Books, String> {
    let patterns = ["product.>", "order.>", "reservation.>"];
    let (mut chunks, pending) = store.changes(&patterns, Start::LastPerKey).await?;
    let mut last: BTreeMap<String, kv::Entry> = BTreeMap::new();
    let mut done = pending == 0;
    while !done {
        let chunk = tokio::time::timeout(Duration::from_secs(30), chunks.next())
            .await
            .map_err(|_| "reading the bucket timed out".to_string())?
            .ok_or("the bucket's consumer ended")??;
        for entry in chunk {
            // Read up to the end of the stream at some moment: a batch is
            // all in or all out.
            done = entry.delta == 0;
            last.insert(entry.key.clone(), entry);
        }
    }
    let mut books = Books {
        products: BTreeMap::new(),
        open: HashMap::new(),
        orders: 0,
        holds: 0,
    };
    let hold = |books: &mut Books, items: &[oms_handlers::contract::PricedItem]| {
        for item in items {
            *books.open.entry(item.product_id.clone()).or_default() += item.quantity;
        }
    };
    for (key, entry) in last {
        if entry.operation != kv::Operation::Put {
            continue;
        }
        let parsed = |e: serde_json::Error| format!("{key} is not valid: {e}");
        if let Some(id) = key.strip_prefix("product.") {
            let product: Product = serde_json::from_slice(&entry.value).map_err(parsed)?;
            books
                .products
                .insert(id.to_string(), (product, entry.revision));
        } else if key.starts_with("order.") {
            let order: Order = serde_json::from_slice(&entry.value).map_err(parsed)?;
            books.orders += 1;
            if order.status.is_open() {
                hold(&mut books, &order.items);
            }
        } else if key.starts_with("reservation.") {
            let reservation: Reservation = serde_json::from_slice(&entry.value).map_err(parsed)?;
            books.holds += 1;
            if reservation.state == ReservationState::Held {
                hold(&mut books, &reservation.items);
            }
        }
    }
    Ok(books)
}

/// Reads the ledger from its start into the products' accounts, and on
/// until each reaches its product's revision (or [`WAIT_FOR_LEDGER`]).
async fn replay(
    js: &jetstream::Context,
    accounts: &mut HashMap<String, Account>,
) -> Result<u64, String> {
    let stream = js
        .get_stream(ledger::STREAM)
        .await
        .map_err(|e| format!("{}: {e}", ledger::STREAM))?;
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut pending = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let give_up = tokio::time::Instant::now() + WAIT_FOR_LEDGER;
    let mut entries = 0;
    loop {
        let behind = accounts.values().filter(|a| !a.reached()).count();
        if pending == 0 && behind == 0 {
            return Ok(entries);
        }
        // Caught up with the stream but not with every product: wait for
        // the deriver a little, then stop (the accounts say who is behind).
        let wait = if pending == 0 {
            give_up
                .saturating_duration_since(tokio::time::Instant::now())
                .min(LEDGER_IDLE)
        } else {
            Duration::from_secs(30)
        };
        let message = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) if pending == 0 => return Ok(entries),
            Err(_) => return Err("reading the ledger timed out".into()),
            Ok(None) => return Err("the ledger's consumer ended".into()),
            Ok(Some(message)) => message.map_err(|e| e.to_string())?,
        };
        pending = message.info().map_err(|e| e.to_string())?.pending;
        entries += 1;
        let entry: Entry = serde_json::from_slice(&message.payload)
            .map_err(|e| format!("ledger entry {}: {e}", message.subject))?;
        if let Some(account) = accounts.get_mut(&entry.product_id) {
            account.add(entry);
        }
    }
}

/// One product's ledger, replayed up to the product's revision.
#[derive(Debug)]
struct Account {
    /// The product's revision in the snapshot: later entries are ignored.
    revision: u64,
    entries: u64,
    quantity: i64,
    reserved: i64,
    last: Option<Entry>,
    /// What the entries themselves show wrong, in order.
    breaks: Vec<String>,
}

impl Account {
    fn up_to(revision: u64) -> Account {
        Account {
            revision,
            entries: 0,
            quantity: 0,
            reserved: 0,
            last: None,
            breaks: Vec::new(),
        }
    }

    fn reached(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|e| e.revision >= self.revision)
    }

    fn add(&mut self, entry: Entry) {
        if entry.revision > self.revision {
            return;
        }
        let (quantity, reserved) = entry.before();
        let (was_quantity, was_reserved, was_seq) = match &self.last {
            Some(last) => (
                last.quantity_after as i64,
                last.reserved_after as i64,
                last.seq,
            ),
            None => (0, 0, 0),
        };
        if (quantity, reserved) != (was_quantity, was_reserved) {
            self.breaks.push(format!(
                "the entry of revision {} ({}) starts from quantity {quantity}, reserved {reserved}, \
                 not {was_quantity}, {was_reserved}",
                entry.revision,
                serde_json::to_value(entry.change.reason).unwrap_or_default()
            ));
        }
        if entry.seq != was_seq + 1 {
            self.breaks.push(format!(
                "the entry of revision {} is change {}, after change {was_seq}",
                entry.revision, entry.seq
            ));
        }
        self.entries += 1;
        self.quantity += entry.change.quantity_delta;
        self.reserved += entry.change.reserved_delta;
        self.last = Some(entry);
    }

    /// What is wrong with `product` by this account, one line each.
    fn problems(&self, id: &str, product: &Product, open: u64) -> Vec<String> {
        let mut out = Vec::new();
        let line = |what: String| format!("product {id}: {what}");
        if !self.reached() {
            let at = self.last.as_ref().map_or(0, |e| e.revision);
            out.push(line(format!(
                "the ledger reaches revision {at}, the product is at {} (is inventory-ledger running?)",
                self.revision
            )));
        }
        if (self.quantity, self.reserved) != (product.quantity as i64, product.reserved as i64) {
            out.push(line(format!(
                "quantity {}, reserved {}, but its {} ledger entries sum to {}, {}",
                product.quantity, product.reserved, self.entries, self.quantity, self.reserved
            )));
        }
        out.extend(self.breaks.iter().take(3).map(|b| line(b.clone())));
        if product.reserved != open {
            out.push(line(format!(
                "reserved {}, but its open orders and holds hold {open}",
                product.reserved
            )));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_handlers::contract::Cents;
    use oms_handlers::contract::{Change, Part, Reason};

    fn product(quantity: u64, reserved: u64, change: Option<Change>) -> Product {
        Product {
            product_id: "A".into(),
            quantity,
            reserved,
            price: Cents(1),
            created_at: String::new(),
            updated_at: String::new(),
            low_stock_threshold: None,
            last_change: change,
            revision: None,
        }
    }

    fn entry(seq: u64, revision: u64, dq: i64, dr: i64, after: (u64, u64)) -> Entry {
        let part = Part::new(Reason::Reserve, None, None).moved(dq, dr);
        Entry::of(
            product(after.0, after.1, Some(Change::new(seq, part))),
            revision,
        )
    }

    #[test]
    fn a_balanced_ledger_has_no_problems() {
        let mut account = Account::up_to(3);
        account.add(entry(1, 1, 10, 0, (10, 0)));
        account.add(entry(2, 3, -2, 2, (8, 2)));
        account.add(entry(3, 9, -1, 1, (7, 3))); // after the snapshot: ignored
        assert!(account.problems("A", &product(8, 2, None), 2).is_empty());
    }

    #[test]
    fn a_hand_edit_and_a_lost_hold_are_named() {
        let mut account = Account::up_to(4);
        account.add(entry(1, 1, 10, 0, (10, 0)));
        // A hand edit: the counts changed, the change copied from before.
        account.add(entry(1, 4, 10, 0, (7, 0)));
        let found = account.problems("A", &product(7, 0, None), 1);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found.iter().all(|l| l.starts_with("product A: ")));
        assert!(found[0].contains("sum to 20, 0"));
        assert!(found.iter().any(|l| l.contains("change 1, after change 1")));
        assert!(found
            .iter()
            .any(|l| l.contains("open orders and holds hold 1")));
    }

    #[test]
    fn a_ledger_behind_its_product_is_reported() {
        let mut account = Account::up_to(7);
        account.add(entry(1, 1, 10, 0, (10, 0)));
        let found = account.problems("A", &product(10, 0, None), 0);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("reaches revision 1, the product is at 7"));
    }
}
