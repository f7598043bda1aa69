//! The crash storm shared by `crash_storm.rs` (one nats-server, restarted)
//! and `cluster.rs` (three nodes, the bucket's leader killed): orders keep
//! flowing while handler instances are SIGKILLed every two seconds; then no
//! stock, order, event or ledger entry is lost or doubled, and `oms-verify`
//! finds the books balanced.

use async_nats::jetstream;
use futures::StreamExt;
use oms_handlers::model::keyed_order_id;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::Rng;
use testkit::{eventually, try_request, Stack};

const PRODUCTS: usize = 5;
const STOCK: u64 = 400;
/// Every process that writes state or derives events.
const VICTIMS: [&str; 8] = [
    "inventory-ledger",
    "orders-create",
    "inventory-reserve",
    "inventory-release",
    "inventory-commit",
    "orders-update-status",
    "orders-events",
    "inventory-holds",
];
/// How long a client keeps retrying one request before the test fails.
const GIVE_UP: Duration = Duration::from_secs(90);

/// Every service and worker the storm runs, two of the ones it kills.
pub const SERVICES: [&str; 12] = [
    "inventory-add-stock",
    "inventory-get",
    "orders-create",
    "orders-create",
    "inventory-reserve",
    "inventory-reserve",
    "inventory-release",
    "inventory-release",
    "inventory-commit",
    "orders-update-status",
    "orders-update-status",
    "orders-get",
];

/// Holds made without an order run out after 2 s, within the test.
pub const ENV: [(&str, &str); 1] = [("OMS_HOLD_TTL", "2")];

/// What happens to NATS itself halfway through the storm.
#[allow(dead_code)] // each test binary compiles this module and uses one
pub enum Disruption {
    /// The one nats-server is SIGKILLed and started again.
    RestartServer,
    /// The node leading the bucket's stream is SIGKILLed, and started again
    /// a few seconds later.
    KillBucketLeader,
}

#[derive(Default)]
struct Outcome {
    /// Order id -> the status its client last set (PENDING if none).
    created: BTreeMap<String, String>,
    /// Idempotency keys that were refused, and how.
    refused: BTreeMap<String, u16>,
    statuses: BTreeMap<u16, usize>,
    /// Requests that had to be sent again (no answer, 503, 504).
    retries: usize,
    holds: usize,
}

/// Sends `body` until it gets an answer that decides it (anything but no
/// answer, 503 or 504), as a client holding an idempotency key would.
async fn until_decided(
    client: &async_nats::Client,
    subject: &str,
    body: &Value,
    outcome: &Mutex<Outcome>,
) -> testkit::Reply {
    let give_up = Instant::now() + GIVE_UP;
    loop {
        let reply = try_request(client, subject, body.to_string(), Duration::from_secs(20)).await;
        match reply {
            Ok(reply) if !matches!(reply.status, 503 | 504) => {
                *outcome
                    .lock()
                    .unwrap()
                    .statuses
                    .entry(reply.status)
                    .or_default() += 1;
                return reply;
            }
            other => {
                outcome.lock().unwrap().retries += 1;
                assert!(
                    Instant::now() < give_up,
                    "{subject} {body}: still undecided after {GIVE_UP:?}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Runs the storm for `length` on `stack` (started with [`SERVICES`] and
/// [`ENV`]) and checks the books afterwards.
pub async fn run(mut stack: Stack, length: Duration, disruption: Disruption) {
    // Two event derivers: they race for the chain the whole time.
    stack.spawn("orders-events");
    stack.spawn("orders-events");
    stack.spawn("inventory-holds");
    // Two ledger derivers, racing for their chain too.
    stack.spawn("inventory-ledger");
    stack.spawn("inventory-ledger");
    for p in 0..PRODUCTS {
        let reply = stack
            .request(
                "inventory.add-stock",
                &json!({"productId": format!("P{p}"), "quantity": STOCK, "price": 1.25}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }

    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let deadline = Instant::now() + length;
    let buyers: Vec<_> = (0..8u64)
        .map(|task| {
            let client = stack.client.clone();
            let outcome = outcome.clone();
            tokio::spawn(async move {
                let mut rng = Rng::new(task + 1);
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let first = rng.below(PRODUCTS) as u64;
                    let mut items = vec![
                        json!({"productId": format!("P{first}"), "quantity": 1 + rng.below(3)}),
                    ];
                    if rng.below(2) == 0 {
                        let second = (first + 1 + rng.below(PRODUCTS - 1) as u64) % PRODUCTS as u64;
                        items.push(
                            json!({"productId": format!("P{second}"), "quantity": 1 + rng.below(2)}),
                        );
                    }
                    let key = format!("storm-{task}-{n}");
                    if rng.below(10) == 0 {
                        // A hold without an order, left to expire.
                        let hold = json!({"orderId": key, "items": items});
                        let reply = until_decided(&client, "inventory.reserve", &hold, &outcome).await;
                        assert!(matches!(reply.status, 200 | 409), "{:?}", reply.body);
                        outcome.lock().unwrap().holds += 1;
                        continue;
                    }
                    let body = json!({"customerId": format!("c{task}"), "items": items, "idempotencyKey": key});
                    let reply = until_decided(&client, "orders.create", &body, &outcome).await;
                    if reply.status != 200 {
                        outcome.lock().unwrap().refused.insert(key, reply.status);
                        continue;
                    }
                    let id = reply.body["id"].as_str().unwrap().to_string();
                    assert_eq!(id, keyed_order_id(None, &key), "the key names the order");
                    outcome.lock().unwrap().created.insert(id.clone(), "PENDING".into());
                    let path: &[&str] = match rng.below(3) {
                        0 => &["CONFIRMED", "COMPLETED"],
                        1 => &["CANCELLED"],
                        _ => &[],
                    };
                    for status in path {
                        let body = json!({"id": id, "status": status});
                        let reply =
                            until_decided(&client, "orders.update-status", &body, &outcome).await;
                        // One client per order: every step succeeds, retried or not.
                        assert_eq!(reply.status, 200, "{id} -> {status}: {:?}", reply.body);
                        outcome.lock().unwrap().created.insert(id.clone(), status.to_string());
                    }
                }
            })
        })
        .collect();

    // The storm: a random victim every 2 s, replaced at once; one server restart.
    let mut rng = Rng::new(42);
    let mut restarted = false;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let victim = VICTIMS[rng.below(VICTIMS.len())];
        let candidates: Vec<_> = (0..stack.procs.len())
            .filter(|&i| stack.procs[i].name == victim && stack.procs[i].pid() != 0)
            .collect();
        if let Some(&index) = candidates.get(rng.below(candidates.len())) {
            stack.procs[index].kill();
            stack.spawn(victim);
        }
        if !restarted && deadline.saturating_duration_since(Instant::now()) < length / 2 {
            disrupt(&mut stack, &disruption).await;
            restarted = true;
        }
    }
    for buyer in buyers {
        buyer.await.unwrap();
    }
    assert!(restarted);
    let outcome = Arc::try_unwrap(outcome).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "storm: {} orders, {} refused, {} holds, answers {:?}, {} requests sent again",
        outcome.created.len(),
        outcome.refused.len(),
        outcome.holds,
        outcome.statuses,
        outcome.retries
    );
    assert!(
        !outcome.statuses.contains_key(&500),
        "a 500 was returned: {:?}",
        outcome.statuses
    );
    assert!(
        outcome.created.len() > 50,
        "the storm placed too few orders to prove anything"
    );

    // Holds expire and are released; then the books balance.
    let kv = jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await
        .unwrap();
    let mut last_problem = String::new();
    let balanced = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match books(&kv).await {
                Ok(()) => return,
                Err(problem) => last_problem = problem,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(balanced.is_ok(), "the books never balanced: {last_problem}");

    // Each logical order exists exactly once, in the status its client
    // last set; a refused one does not exist at all.
    let orders = read_prefix(&kv, "order.").await;
    let stored: BTreeMap<String, String> = orders
        .values()
        .map(|o| {
            (
                o["id"].as_str().unwrap().into(),
                o["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        stored, outcome.created,
        "stored orders are exactly those created"
    );
    for key in outcome.refused.keys() {
        assert!(
            !stored.contains_key(&keyed_order_id(None, key)),
            "refused {key} left an order"
        );
    }

    // Every order revision has exactly one event: counted once the
    // derivers have caught up with the last order revision, so no event
    // can still come.
    let mut expected = HashSet::new();
    let mut last_revision = 0;
    let mut revisions = kv.watch_from_revision("order.>", 1).await.unwrap();
    while let Some(entry) = revisions.next().await {
        let entry = entry.unwrap();
        if entry.operation == jetstream::kv::Operation::Put {
            expected.insert(format!(
                "{}:{}",
                &entry.key["order.".len()..],
                entry.revision
            ));
        }
        last_revision = last_revision.max(entry.revision);
        if entry.seen_current {
            break;
        }
    }
    assert!(expected.len() >= orders.len());
    let js = jetstream::new(stack.client.clone());
    eventually(60, "the event derivers caught up", || async {
        let Ok(events) = js.get_stream("OMS_EVENTS").await else {
            return false;
        };
        let Ok(last) = events.get_last_raw_message_by_subject("events.>").await else {
            return false;
        };
        // In order: a later product revision's stock event may follow.
        last.headers
            .get("Oms-Revision")
            .and_then(|v| v.as_str().parse::<u64>().ok())
            >= Some(last_revision)
    })
    .await;
    let all_events = stack.stream_messages("OMS_EVENTS").await;
    let stock: Vec<_> = all_events
        .iter()
        .filter(|e| e.0.starts_with("events.inventory."))
        .map(|e| e.1.clone())
        .collect();
    let stock_ids: HashSet<_> = stock.iter().collect();
    assert_eq!(
        stock_ids.len(),
        stock.len(),
        "a stock event was stored twice"
    );
    let ids = all_events
        .into_iter()
        .filter(|e| e.0.starts_with("events.orders."))
        .map(|e| e.1)
        .collect::<Vec<_>>();
    let unique: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "an event was stored twice");
    assert_eq!(unique, expected, "events match the order history exactly");

    // The ledger: one entry per product revision, and the audit passes
    // (every count is its entries' sum, reserved is the open orders').
    let entries = stack.quiet_ledger().await;
    let ids: HashSet<String> = entries
        .iter()
        .map(|e| format!("{}:{}", e["productId"].as_str().unwrap(), e["revision"]))
        .collect();
    assert_eq!(ids.len(), entries.len(), "a ledger entry was stored twice");
    let (code, report) = stack.verify().await;
    assert_eq!(code, 0, "oms-verify after the storm:\n{report}");
    eprintln!(
        "storm: {} ledger entries; {}",
        entries.len(),
        report
            .lines()
            .find(|l| l.starts_with("oms-verify:"))
            .unwrap_or_default()
    );
}

/// The invariants (README, crash safety) over the whole bucket, or what breaks them.
async fn books(kv: &jetstream::kv::Store) -> Result<(), String> {
    let products = read_prefix(kv, "product.").await;
    let orders = read_prefix(kv, "order.").await;
    let reservations = read_prefix(kv, "reservation.").await;
    let mut sold: HashMap<String, u64> = HashMap::new();
    let mut open: HashMap<String, u64> = HashMap::new();
    for order in orders.values() {
        let status = order["status"].as_str().unwrap();
        for item in order["items"].as_array().unwrap() {
            let id = item["productId"].as_str().unwrap().to_string();
            let q = item["quantity"].as_u64().unwrap();
            match status {
                "COMPLETED" => *sold.entry(id).or_default() += q,
                "PENDING" | "CONFIRMED" => *open.entry(id).or_default() += q,
                _ => {}
            }
        }
    }
    for (key, product) in &products {
        let id = &key["product.".len()..];
        let quantity = product["quantity"].as_i64().unwrap();
        let reserved = product["reserved"].as_i64().unwrap();
        let sold = *sold.get(id).unwrap_or(&0) as i64;
        let open = *open.get(id).unwrap_or(&0) as i64;
        if quantity < 0 {
            return Err(format!("{id}: quantity {quantity} < 0"));
        }
        if quantity + reserved + sold != STOCK as i64 {
            return Err(format!(
                "{id}: {quantity} + {reserved} + {sold} sold != {STOCK}"
            ));
        }
        if reserved != open {
            return Err(format!(
                "{id}: reserved {reserved} but open orders hold {open}"
            ));
        }
    }
    // Every hold made without an order ran out and was released.
    for (key, hold) in &reservations {
        let state = hold["state"].as_str().unwrap();
        if state != "RELEASED" {
            return Err(format!("{key} is {state} after its hold time"));
        }
    }
    Ok(())
}

async fn read_prefix(kv: &jetstream::kv::Store, prefix: &str) -> BTreeMap<String, Value> {
    let keys: Vec<String> = kv
        .keys()
        .await
        .unwrap()
        .filter_map(|k| async move { k.ok() })
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for key in keys.into_iter().filter(|k| k.starts_with(prefix)) {
        if let Ok(Some(value)) = kv.get(&key).await {
            out.insert(key, serde_json::from_slice(&value).unwrap());
        }
    }
    out
}

async fn disrupt(stack: &mut Stack, disruption: &Disruption) {
    match disruption {
        Disruption::RestartServer => stack.server.restart().await,
        Disruption::KillBucketLeader => {
            let js = jetstream::new(stack.client.clone());
            let mut stream = js.get_stream("KV_oms").await.expect("bucket stream");
            let info = stream.info().await.expect("stream info");
            let leader = info
                .cluster
                .as_ref()
                .and_then(|c| c.leader.clone())
                .expect("a replicated bucket has a leader");
            let node = stack
                .nodes_mut()
                .find(|n| n.name() == leader)
                .expect("the leader is one of our nodes");
            eprintln!("killing {leader}, the bucket's leader");
            node.stop();
            tokio::time::sleep(Duration::from_secs(3)).await;
            node.restart().await;
        }
    }
}
