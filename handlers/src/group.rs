//! Group commit: the one way stock moves (reserve, release, commit).
//!
//! An atomic batch on a single-node file stream costs ~3 ms whatever its
//! size, and the server applies a stream's batches one at a time. So the
//! requests that arrive while a batch is in flight wait, and are then
//! decided together: one task per process reads every key they name once,
//! decides each request in arrival order against the running state (the
//! operation's pure `decide` function), and writes every changed key as one
//! atomic batch, compare-and-set on the revision each was read at.
//!
//! Why that is safe:
//! - No lost update: a key another writer moved since it was read fails the
//!   whole batch; the group is read and decided again from scratch.
//! - All or nothing per request: `decide` returns a request's whole change
//!   or a refusal; a refusal changes nothing, and the batch applies every
//!   accepted change or none.
//! - One state change, one write: an order and the stock it moves are keys
//!   of the same batch, so they never disagree, not even for a moment.
//! - No work for a caller that stopped waiting: a request whose deadline
//!   (`Oms-Deadline`) has passed is refused with 504 when it is decided,
//!   and checked again right before the batch is written; if it passed
//!   meanwhile, the group is decided again without it. So a caller told 504
//!   by its deadline finds nothing written for it afterwards (but for a
//!   batch already on its way at that moment).

use crate::model::{order_key, product_key, reservation_key};
use futures::future::try_join_all;
use oms_contract::{Order, Product, Reservation};
use oms_runtime::{fault, time, Deadline, Problem, Store, StoreError, Write};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A batch may hold 1000 messages; a group reads and writes fewer keys.
const MAX_GROUP_KEYS: usize = 900;
/// Most keys one batch writes (the server takes up to 1000).
const MAX_BATCH: usize = 950;
/// How long a group keeps retrying lost races before giving up (callers
/// wait 5 s).
const RETRY_FOR: Duration = Duration::from_secs(4);
/// Rounds of reads a request may ask for (an order, then its products).
const MAX_READ_ROUNDS: usize = 4;

/// A key of the bucket that a decision reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Product(String),
    Order(String),
    /// `reservation.<id>`: a hold made without an order.
    Hold(String),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Product(id) => product_key(id),
            Key::Order(id) => order_key(id),
            Key::Hold(id) => reservation_key(id),
        }
    }
}

/// How a key is read on a group's first attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub key: Key,
    /// Assumed absent without reading (a new id): the common case costs no
    /// read, and a replay fails the batch and is read on the next attempt.
    pub fresh: bool,
}

impl Read {
    pub fn key(key: Key) -> Read {
        Read { key, fresh: false }
    }
    pub fn fresh(key: Key) -> Read {
        Read { key, fresh: true }
    }
}

/// A stored value a decision writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Product(Product),
    Order(Order),
    Hold(Reservation),
}

impl Record {
    fn key(&self) -> Key {
        match self {
            Record::Product(p) => Key::Product(p.product_id.clone()),
            Record::Order(o) => Key::Order(o.id.clone()),
            Record::Hold(h) => Key::Hold(h.order_id.clone()),
        }
    }

    /// The stored JSON: never with a reply's `revision` (a stored value
    /// cannot know its own).
    fn json(&self) -> Vec<u8> {
        match self {
            Record::Product(p) if p.revision.is_some() => serde_json::to_vec(&Product {
                revision: None,
                ..p.clone()
            }),
            Record::Product(p) => serde_json::to_vec(p),
            Record::Order(o) if o.revision.is_some() => serde_json::to_vec(&Order {
                revision: None,
                ..o.clone()
            }),
            Record::Order(o) => serde_json::to_vec(o),
            Record::Hold(h) => serde_json::to_vec(h),
        }
        .expect("records serialize")
    }
}

/// A reply that names the revisions of the records it shows (its ETag):
/// they are known only once the group's batch is written.
pub trait Revised {
    /// Sets the revision of every record the reply holds; `revision` gives
    /// a key's revision after the group (written, or as read).
    fn stamp(&mut self, revision: &dyn Fn(&Key) -> Option<u64>);
}

impl Revised for Reservation {
    fn stamp(&mut self, revision: &dyn Fn(&Key) -> Option<u64>) {
        if let Some(order) = &mut self.order {
            order.revision = revision(&Key::Order(order.id.clone()));
        }
    }
}

impl Revised for Product {
    fn stamp(&mut self, revision: &dyn Fn(&Key) -> Option<u64>) {
        self.revision = revision(&Key::Product(self.product_id.clone()));
    }
}

#[derive(Debug, Clone)]
struct Slot {
    record: Option<Record>,
    /// The revision read (0: never existed), which the write expects.
    revision: u64,
    changed: bool,
}

/// The keys a group has read, as the group's decisions so far left them.
#[derive(Debug, Default, Clone)]
pub struct Books {
    slots: BTreeMap<Key, Slot>,
}

impl Books {
    /// Books as they would be read: for tests of a `decide` function.
    pub fn with(records: impl IntoIterator<Item = (Record, u64)>) -> Books {
        let mut books = Books::default();
        for (record, revision) in records {
            books.slots.insert(
                record.key(),
                Slot {
                    record: Some(record),
                    revision,
                    changed: false,
                },
            );
        }
        books
    }

    /// Whether `key` was read (absent keys are read too, as absent).
    pub fn has(&self, key: &Key) -> bool {
        self.slots.contains_key(key)
    }

    fn record(&self, key: Key) -> Option<&Record> {
        self.slots.get(&key).and_then(|s| s.record.as_ref())
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        match self.record(Key::Product(id.into())) {
            Some(Record::Product(p)) => Some(p),
            _ => None,
        }
    }

    pub fn order(&self, id: &str) -> Option<&Order> {
        match self.record(Key::Order(id.into())) {
            Some(Record::Order(o)) => Some(o),
            _ => None,
        }
    }

    pub fn hold(&self, id: &str) -> Option<&Reservation> {
        match self.record(Key::Hold(id.into())) {
            Some(Record::Hold(h)) => Some(h),
            _ => None,
        }
    }

    /// The revision `key` was read at, unless a decision of this group has
    /// changed it since (its next revision is not known before the write).
    pub fn revision(&self, key: &Key) -> Option<u64> {
        self.slots
            .get(key)
            .filter(|s| !s.changed)
            .map(|s| s.revision)
    }

    /// Whether `key` is as read: no decision of this group changed it yet.
    /// A product changed twice in one group is written once, as one
    /// revision that records both changes (`Product::record`).
    pub fn unchanged(&self, key: &Key) -> bool {
        self.slots.get(key).is_some_and(|s| !s.changed)
    }

    /// Records `part` as the change of product `product` in this group.
    pub fn record_change(&self, product: &mut Product, part: oms_contract::Part) {
        let fresh = self.unchanged(&Key::Product(product.product_id.clone()));
        product.record(part, fresh);
    }

    /// How many keys the batch would write with `changes` applied too.
    fn would_write(&self, changes: &[Record]) -> usize {
        let changed = self.slots.values().filter(|s| s.changed).count();
        let new = changes
            .iter()
            .filter(|c| !self.slots.get(&c.key()).is_some_and(|s| s.changed))
            .count();
        changed + new
    }

    /// Applies one request's accepted change.
    pub fn apply(&mut self, changes: Vec<Record>) {
        for record in changes {
            let slot = self.slots.entry(record.key()).or_insert(Slot {
                record: None,
                revision: 0,
                changed: false,
            });
            slot.record = Some(record);
            slot.changed = true;
        }
    }

    fn writes(&self) -> Vec<(Key, Write)> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.changed)
            .filter_map(|(key, slot)| {
                let record = slot.record.as_ref()?;
                let write = Write {
                    key: key.name(),
                    value: record.json().into(),
                    expected: slot.revision,
                    ttl: None,
                };
                Some((key.clone(), write))
            })
            .collect()
    }
}

/// What `decide` makes of one request.
pub enum Decision<R> {
    /// Accepted: the reply, and every record it changes.
    Accept(R, Vec<Record>),
    /// Refused: nothing changes.
    Refuse(Problem),
    /// The keys were read at different moments and disagree (an order's
    /// stock already moved by a write that landed between two reads): the
    /// group is read again, as after a lost race.
    Stale,
}

/// Which keys a request needs, given what is read so far: called again
/// until it names no key that is not read (an order first, then its
/// products).
pub type Reads<Req> = fn(&Books, &Req) -> Vec<Read>;
/// One request against the running books; `now` is the group's time.
pub type Decide<Req, Rep> = fn(&Books, &Req, &str) -> Decision<Rep>;

type Outcome<Rep> = Result<Rep, Problem>;

struct Waiting<Req, Rep> {
    request: Req,
    deadline: Option<Deadline>,
    reply: oneshot::Sender<Outcome<Rep>>,
}

/// A request of a group with its deadline.
type Asked<'a, Req> = (&'a Req, Option<Deadline>);

fn passed(deadline: Option<Deadline>) -> bool {
    deadline.is_some_and(Deadline::passed)
}

struct Queue<Req, Rep> {
    waiting: Vec<Waiting<Req, Rep>>,
    running: bool,
}

/// One operation's group commit in this process.
pub struct Group<Req, Rep> {
    store: Store,
    reads: Reads<Req>,
    decide: Decide<Req, Rep>,
    queue: Mutex<Queue<Req, Rep>>,
}

impl<Req, Rep> Group<Req, Rep>
where
    Req: Send + Sync + 'static,
    Rep: Revised + Clone + Send + 'static,
{
    pub fn new(store: Store, reads: Reads<Req>, decide: Decide<Req, Rep>) -> Arc<Self> {
        Arc::new(Group {
            store,
            reads,
            decide,
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                running: false,
            }),
        })
    }

    /// Queues `request` for the next group and waits for its outcome;
    /// nothing is written for it once `deadline` has passed.
    pub async fn submit(
        self: &Arc<Self>,
        request: Req,
        deadline: Option<Deadline>,
    ) -> Outcome<Rep> {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap();
            queue.waiting.push(Waiting {
                request,
                deadline,
                reply,
            });
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().run());
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(Problem::internal("the group ended")))
    }

    /// Commits groups until nobody waits.
    async fn run(self: Arc<Self>) {
        loop {
            let group: Vec<_> = {
                let mut queue = self.queue.lock().unwrap();
                if queue.waiting.is_empty() {
                    queue.running = false;
                    return;
                }
                let mut keys = 0;
                let take = queue
                    .waiting
                    .iter()
                    .take_while(|w| {
                        keys += (self.reads)(&Books::default(), &w.request).len() + 1;
                        keys <= MAX_GROUP_KEYS
                    })
                    .count()
                    .max(1);
                queue.waiting.drain(..take).collect()
            };
            let requests: Vec<_> = group.iter().map(|w| (&w.request, w.deadline)).collect();
            let started = Instant::now();
            let outcomes = self.commit(&requests).await;
            tracing::debug!(
                size = requests.len(),
                micros = started.elapsed().as_micros() as u64,
                "group committed"
            );
            let mut left = Vec::new();
            for (waiting, outcome) in group.into_iter().zip(outcomes) {
                match outcome {
                    Some(outcome) => drop(waiting.reply.send(outcome)),
                    None => left.push(waiting),
                }
            }
            // What did not fit into this batch goes first in the next.
            let mut queue = self.queue.lock().unwrap();
            queue.waiting.splice(..0, left);
        }
    }

    /// Decides and writes a group, again from fresh reads whenever another
    /// writer moved one of its keys first.
    /// `None`: the request did not fit into the batch and waits for the next.
    async fn commit(&self, requests: &[Asked<'_, Req>]) -> Vec<Option<Outcome<Rep>>> {
        let started = Instant::now();
        let mut first = true;
        for attempt in 0u32.. {
            match self.attempt(requests, std::mem::take(&mut first)).await {
                Ok(outcomes) => return outcomes,
                // Decided again at once: this time without whoever's
                // deadline passed.
                Err(Lost::Expired) => {}
                Err(Lost::Race) if started.elapsed() < RETRY_FOR => {
                    let jitter = u64::from(nuid::next().as_bytes()[0]) % 50;
                    let pause = 20 * u64::from(attempt.min(25)) + jitter;
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                }
                Err(lost) => {
                    let problem = match lost {
                        Lost::Race | Lost::Expired => Problem::from(StoreError::Conflict),
                        Lost::Failed(problem) => problem,
                    };
                    return requests
                        .iter()
                        .map(|_| Some(Err(problem.clone())))
                        .collect();
                }
            }
        }
        unreachable!("the loop returns")
    }

    async fn attempt(
        &self,
        requests: &[Asked<'_, Req>],
        first: bool,
    ) -> Result<Vec<Option<Outcome<Rep>>>, Lost> {
        let mut books = Books::default();
        for _ in 0..MAX_READ_ROUNDS {
            let mut missing: Vec<Read> = requests
                .iter()
                .filter(|(_, deadline)| !passed(*deadline))
                .flat_map(|(r, _)| (self.reads)(&books, r))
                .filter(|read| !books.has(&read.key))
                .collect();
            if missing.is_empty() {
                break;
            }
            missing.sort_by(|a, b| a.key.cmp(&b.key).then(a.fresh.cmp(&b.fresh)));
            missing.dedup_by(|later, earlier| later.key == earlier.key);
            read_into(&self.store, &mut books, missing, first).await?;
        }
        let now = time::now();
        let mut outcomes = Vec::with_capacity(requests.len());
        // The deadlines of the requests whose changes are in the batch.
        let mut writing = Vec::new();
        for (request, deadline) in requests {
            if passed(*deadline) {
                outcomes.push(Some(Err(Deadline::passed_problem("it was decided"))));
                continue;
            }
            match (self.decide)(&books, request, &now) {
                // The first request of a group always fits: one request
                // writes at most 100 products and its order.
                Decision::Accept(_, changes) if books.would_write(&changes) > MAX_BATCH => break,
                Decision::Accept(reply, changes) => {
                    if !changes.is_empty() {
                        writing.extend(*deadline);
                    }
                    books.apply(changes);
                    outcomes.push(Some(Ok(reply)));
                }
                Decision::Refuse(problem) => outcomes.push(Some(Err(problem))),
                Decision::Stale => return Err(Lost::Race),
            }
        }
        // What did not fit waits for the next batch.
        outcomes.resize_with(requests.len(), || None);
        let (keys, writes): (Vec<Key>, Vec<Write>) = books.writes().into_iter().unzip();
        let mut written = BTreeMap::new();
        if !writes.is_empty() {
            fault::point("group.before-write").await;
            if writing.into_iter().any(Deadline::passed) {
                return Err(Lost::Expired);
            }
            let last = match self.store.apply(&writes).await {
                Ok(last) => last,
                Err(StoreError::Conflict) => return Err(Lost::Race),
                Err(err) => return Err(Lost::Failed(err.into())),
            };
            fault::point("group.after-write").await;
            // A batch's messages are stored at consecutive sequences.
            let first = last + 1 - keys.len() as u64;
            written.extend(keys.into_iter().zip(first..));
        }
        let revision = |key: &Key| written.get(key).copied().or_else(|| books.revision(key));
        for reply in outcomes.iter_mut().flatten().flatten() {
            reply.stamp(&revision);
        }
        Ok(outcomes)
    }
}

/// Why an attempt did not commit.
enum Lost {
    /// Another writer moved a key first: read again, decide again.
    Race,
    /// A request's deadline passed before the write: decide again.
    Expired,
    Failed(Problem),
}

/// Reads `reads` into `books`; on a first attempt, fresh keys are taken as
/// absent unread.
async fn read_into(
    store: &Store,
    books: &mut Books,
    reads: Vec<Read>,
    first: bool,
) -> Result<(), Lost> {
    let (assumed, fetched): (Vec<_>, Vec<_>) = reads.into_iter().partition(|r| first && r.fresh);
    for read in assumed {
        books.slots.insert(
            read.key,
            Slot {
                record: None,
                revision: 0,
                changed: false,
            },
        );
    }
    let slots = try_join_all(fetched.iter().map(|r| read_slot(store, &r.key)))
        .await
        .map_err(Lost::Failed)?;
    for (read, slot) in fetched.into_iter().zip(slots) {
        books.slots.insert(read.key, slot);
    }
    Ok(())
}

async fn read_slot(store: &Store, key: &Key) -> Result<Slot, Problem> {
    async fn typed<T: DeserializeOwned>(
        store: &Store,
        key: &Key,
        wrap: fn(T) -> Record,
    ) -> Result<Slot, Problem> {
        let slot = store.read::<T>(&key.name()).await?;
        Ok(Slot {
            record: slot.value.map(wrap),
            revision: slot.revision,
            changed: false,
        })
    }
    match key {
        Key::Product(_) => typed(store, key, Record::Product).await,
        Key::Order(_) => typed(store, key, Record::Order).await,
        Key::Hold(_) => typed(store, key, Record::Hold).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_contract::Cents;

    fn product(id: &str) -> Record {
        Record::Product(Product {
            product_id: id.into(),
            quantity: 1,
            price: Cents(1),
            ..Default::default()
        })
    }

    #[test]
    fn a_key_changed_twice_is_written_once_expecting_its_read_revision() {
        let mut books = Books::with([(product("A"), 4)]);
        assert_eq!(books.would_write(&[product("A"), product("B")]), 2);
        books.apply(vec![product("A")]);
        assert_eq!(books.revision(&Key::Product("A".into())), None, "changed");
        assert_eq!(books.would_write(&[product("A")]), 1, "A is written once");
        books.apply(vec![product("A"), product("B")]);
        let writes = books.writes();
        let expected: Vec<_> = writes
            .iter()
            .map(|(_, w)| (w.key.as_str(), w.expected))
            .collect();
        assert_eq!(expected, [("product.A", 4), ("product.B", 0)]);
    }
}
