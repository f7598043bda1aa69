//! The crash storm shared by `crash_storm.rs` (one nats-server, restarted)
//! and `cluster.rs` (three nodes, the bucket's leader killed): orders keep
//! flowing while handler instances are SIGKILLed every two seconds; then no
//! stock, order or event is lost or doubled (DESIGN §8.4).

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::{eventually, try_request, Stack};

const PRODUCTS: usize = 5;
const STOCK: u64 = 400;
const VICTIMS: [&str; 3] = ["orders-create", "inventory-reserve", "inventory-events"];

/// Every service and worker the storm runs, two of the ones it kills.
pub const SERVICES: [&str; 8] = [
    "inventory-add-stock",
    "inventory-get",
    "orders-create",
    "orders-create",
    "inventory-reserve",
    "inventory-reserve",
    "orders-update-status",
    "orders-get",
];

/// Holds run out after 2 s, so orphans are released within the test.
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

/// A tiny deterministic PRNG: the storm is random but reproducible per seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Outcome {
    /// Orders a client got a 2xx for.
    created: HashSet<String>,
    statuses: BTreeMap<u16, usize>,
    timeouts: usize,
}

/// Runs the storm for `length` on `stack` (started with [`SERVICES`] and
/// [`ENV`]) and checks the books afterwards.
pub async fn run(mut stack: Stack, length: Duration, disruption: Disruption) {
    stack.spawn("orders-events");
    stack.spawn("inventory-events");
    stack.spawn("inventory-events");
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
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (task + 1));
                while Instant::now() < deadline {
                    let first = rng.next(PRODUCTS as u64);
                    let mut items = vec![
                        json!({"productId": format!("P{first}"), "quantity": 1 + rng.next(3)}),
                    ];
                    if rng.next(2) == 0 {
                        let second = (first + 1 + rng.next(PRODUCTS as u64 - 1)) % PRODUCTS as u64;
                        items.push(
                            json!({"productId": format!("P{second}"), "quantity": 1 + rng.next(2)}),
                        );
                    }
                    let body =
                        json!({"customerId": format!("c{task}"), "items": items}).to_string();
                    let reply =
                        try_request(&client, "orders.create", body, Duration::from_secs(20)).await;
                    let id = match reply {
                        Ok(reply) => {
                            let mut o = outcome.lock().unwrap();
                            *o.statuses.entry(reply.status).or_default() += 1;
                            if reply.status != 200 {
                                continue;
                            }
                            let id = reply.body["id"].as_str().unwrap().to_string();
                            o.created.insert(id.clone());
                            id
                        }
                        Err(_) => {
                            outcome.lock().unwrap().timeouts += 1;
                            continue;
                        }
                    };
                    let path: &[&str] = match rng.next(3) {
                        0 => &["CONFIRMED", "COMPLETED"],
                        1 => &["CANCELLED"],
                        _ => &[],
                    };
                    for status in path {
                        let body = json!({"id": id, "status": status}).to_string();
                        if let Ok(reply) = try_request(
                            &client,
                            "orders.update-status",
                            body,
                            Duration::from_secs(20),
                        )
                        .await
                        {
                            *outcome
                                .lock()
                                .unwrap()
                                .statuses
                                .entry(reply.status)
                                .or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect();

    // The storm: a random victim every 2 s, replaced at once; one server restart.
    let mut rng = Rng(42);
    let mut restarted = false;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let victim = VICTIMS[rng.next(VICTIMS.len() as u64) as usize];
        let candidates: Vec<_> = (0..stack.procs.len())
            .filter(|&i| stack.procs[i].name == victim && stack.procs[i].pid() != 0)
            .collect();
        if let Some(&index) = candidates.get(rng.next(candidates.len() as u64) as usize) {
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
        "storm: {} orders created, statuses {:?}, {} timeouts",
        outcome.created.len(),
        outcome.statuses,
        outcome.timeouts
    );
    assert!(
        !outcome.statuses.contains_key(&500),
        "a 500 was returned: {:?}",
        outcome.statuses
    );
    // Status updates only name orders a client was told exist.
    assert!(
        !outcome.statuses.contains_key(&404),
        "an order that was created read as absent: {:?}",
        outcome.statuses
    );
    assert!(
        outcome.created.len() > 50,
        "the storm placed too few orders to prove anything"
    );

    // After holds expire and every event is applied, the books balance.
    let kv = jetstream::new(stack.client.clone())
        .get_key_value("oms")
        .await
        .unwrap();
    let mut last_problem = String::new();
    let balanced = tokio::time::timeout(Duration::from_secs(90), async {
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

    // Every order a client was told about exists.
    let orders = read_prefix(&kv, "order.").await;
    for id in &outcome.created {
        assert!(
            orders.contains_key(&format!("order.{id}")),
            "order {id} got a 2xx but is gone"
        );
    }

    // Every order revision has exactly one event, including across the storm.
    // One watch over every revision of every order key (deletes excluded:
    // a hold's expiry seals an order id, which is no order change).
    let mut expected = HashSet::new();
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
        if entry.seen_current {
            break;
        }
    }
    assert!(expected.len() >= orders.len());
    eventually(60, "every order revision has its event", || async {
        let events = stack.stream_messages("OMS_EVENTS").await;
        let ids: HashSet<_> = events.into_iter().map(|e| e.1).collect();
        ids.is_superset(&expected)
    })
    .await;
    let ids = stack
        .stream_messages("OMS_EVENTS")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect::<Vec<_>>();
    let unique: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "an event was stored twice");
    assert_eq!(unique, expected, "events match the order history exactly");
}

/// The invariants of DESIGN §8 over the whole bucket, or what breaks them.
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
    // No reservation is still waiting for an order that never came.
    for (key, reservation) in &reservations {
        let id = &key["reservation.".len()..];
        let state = reservation["state"].as_str().unwrap();
        let order = orders.get(&format!("order.{id}"));
        let want = match order.map(|o| o["status"].as_str().unwrap()) {
            None => "RELEASED",
            Some("COMPLETED") => "COMMITTED",
            Some("CANCELLED") => "RELEASED",
            Some(_) => "HELD",
        };
        if state != want {
            return Err(format!("reservation {id} is {state}, want {want}"));
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
