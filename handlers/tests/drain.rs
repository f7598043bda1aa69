//! What SIGTERM does to a handler instance, one test per path of
//! `oms_runtime::service::serve` (README, "Draining"). Each test learns
//! which path ran from the instance's own log, and holds requests in flight
//! with the fault point `handle.before-reply` rather than by timing.

use futures::StreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::{discover, eventually, Proc, Stack};

/// Requests published per millisecond by the load of the by-count test,
/// whether or not replies come: a stalled instance cannot slow it down, so
/// the instance that leaves keeps getting requests until its count is due
/// (1024 in about a second). Below what two debug-built instances answer.
const PER_MS: u64 = 2;

/// Replies seen per request number, under one inbox prefix.
struct Replies {
    prefix: String,
    seen: Arc<Mutex<BTreeMap<u64, Vec<u16>>>>,
}

impl Replies {
    /// Collects every reply to `<prefix>.<n>` (status from the error header).
    async fn listen(client: &async_nats::Client) -> Replies {
        let prefix = client.new_inbox();
        let mut sub = client.subscribe(format!("{prefix}.*")).await.unwrap();
        client.flush().await.unwrap();
        let seen: Arc<Mutex<BTreeMap<u64, Vec<u16>>>> = Arc::default();
        let into = seen.clone();
        tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                let n = message.subject.rsplit('.').next().unwrap().parse().unwrap();
                let status = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Service-Error-Code"))
                    .map_or(200, |v| v.as_str().parse().unwrap());
                into.lock().unwrap().entry(n).or_default().push(status);
            }
        });
        Replies { prefix, seen }
    }

    fn subject(&self, n: u64) -> String {
        format!("{}.{n}", self.prefix)
    }

    fn of(&self, n: u64) -> Vec<u16> {
        self.seen
            .lock()
            .unwrap()
            .get(&n)
            .cloned()
            .unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().values().map(Vec::len).sum()
    }
}

/// Log lines of `proc` that name a drain path.
fn paths(proc: &Proc) -> Vec<&'static str> {
    let log = proc.log();
    ["left by count", "quiet drain", "drain deadline passed"]
        .into_iter()
        .filter(|path| log.contains(path))
        .collect()
}

/// Under steady load, the instance that gets SIGTERM leaves by count: the
/// server routes it exactly the requests it still reads, so every request
/// gets exactly one reply.
#[tokio::test]
async fn under_load_an_instance_leaves_by_count_and_every_request_gets_one_reply() {
    let mut stack = Stack::start(&["inventory-add-stock", "inventory-get"]).await;
    stack.add_stock("steady", 1, 1.0).await;
    let leaving = stack.spawn("inventory-get");
    stack.wait_for("inventory-get", 2).await;
    let replies = Replies::listen(&stack.client).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = {
        let (client, stop, sent) = (stack.client.clone(), stop.clone(), sent.clone());
        let prefix = replies.prefix.clone();
        let body = bytes::Bytes::from(json!({"productId": "steady"}).to_string());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..PER_MS {
                    let n = sent.load(Ordering::Relaxed);
                    let reply = format!("{prefix}.{n}");
                    client
                        .publish_with_reply("inventory.get", reply, body.clone())
                        .await
                        .unwrap();
                    sent.store(n + 1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = discover(&stack.client, "$SRV.STATS.inventory-get").await;
    assert_eq!(stats.len(), 2);
    for s in &stats {
        let served = s["endpoints"][0]["num_requests"].as_u64().unwrap();
        assert!(served > 0, "both serve: {s}");
    }

    let signalled = Instant::now();
    let status = stack.procs[leaving].terminate().await;
    let gone = signalled.elapsed();
    assert!(
        status.success(),
        "the drained instance exits cleanly: {status}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let sent = sent.load(Ordering::Relaxed);
    eventually(30, "every request has a reply", || async {
        replies.count() >= sent as usize
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // room for a second reply
    for n in 0..sent {
        assert_eq!(replies.of(n), [200], "request {n} of {sent}");
    }
    assert_eq!(replies.count(), sent as usize);

    let proc = &stack.procs[leaving];
    assert_eq!(
        paths(proc),
        ["left by count"],
        "{}",
        proc.log_path().display()
    );
    eprintln!("{sent} requests; the drained instance was gone {gone:?} after SIGTERM");
    assert_eq!(
        discover(&stack.client, "$SRV.PING.inventory-get")
            .await
            .len(),
        1
    );
}

/// Starts a stack whose `inventory-get` holds every request for `hold`
/// before replying, with one product to get; returns the stack and that
/// instance's index.
async fn holding_stack(hold: Duration) -> (Stack, usize) {
    let mut stack = Stack::start(&["inventory-add-stock"]).await;
    stack.add_stock("held", 1, 1.0).await;
    let fault = format!("handle.before-reply=sleep:{}", hold.as_millis());
    stack.env.push(("OMS_FAULTS".into(), fault));
    let index = stack.spawn("inventory-get");
    stack.wait_for("inventory-get", 1).await;
    (stack, index)
}

/// Sends request 0 and waits until the instance holds it before its reply.
async fn hold_one(stack: &Stack, index: usize) -> Replies {
    let replies = Replies::listen(&stack.client).await;
    let body = json!({"productId": "held"}).to_string();
    stack
        .client
        .publish_with_reply("inventory.get", replies.subject(0), body.into())
        .await
        .unwrap();
    stack.procs[index]
        .wait_for_line("fault point handle.before-reply", Duration::from_secs(10))
        .await;
    replies
}

/// An idle instance with one request in flight drains once quiet: the
/// request still gets its reply, then the process exits 0.
#[tokio::test]
async fn an_idle_instance_drains_when_quiet_and_answers_what_it_holds() {
    let hold = Duration::from_millis(1500);
    let (mut stack, index) = holding_stack(hold).await;
    let replies = hold_one(&stack, index).await;
    let held_since = Instant::now();

    let status = stack.procs[index].terminate().await;
    let gone = held_since.elapsed();
    assert!(status.success(), "{status}");
    eventually(5, "the held request's reply", || async {
        !replies.of(0).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // room for a second reply
    assert_eq!(replies.of(0), [200], "the held request was answered once");
    assert!(
        gone >= hold - Duration::from_millis(100),
        "left after {gone:?}"
    );
    assert!(gone < hold + Duration::from_secs(2), "left after {gone:?}");
    let proc = &stack.procs[index];
    assert_eq!(
        paths(proc),
        ["quiet drain"],
        "{}",
        proc.log_path().display()
    );
    assert!(proc.log().contains("no request for 100 ms"));
    eprintln!("held {hold:?}: answered and gone {gone:?} after the hold began");
    eprintln!("round trip to nats-server: {:?}", round_trip(&stack).await);
}

/// A request held past the drain deadline is given up: the instance exits
/// 10 s after SIGTERM, and its caller gets no reply (it times out).
#[tokio::test]
async fn a_request_held_past_the_drain_deadline_is_left_unanswered() {
    let (mut stack, index) = holding_stack(Duration::from_secs(60)).await;
    let replies = hold_one(&stack, index).await;

    let signalled = Instant::now();
    let status = stack.procs[index].terminate().await;
    let gone = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(gone >= Duration::from_secs(10), "left after {gone:?}");
    assert!(gone < Duration::from_secs(12), "left after {gone:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(replies.of(0).is_empty(), "no reply after the deadline");
    let proc = &stack.procs[index];
    let log = proc.log();
    assert_eq!(
        paths(proc),
        ["quiet drain", "drain deadline passed"],
        "{}",
        proc.log_path().display()
    );
    assert!(log.contains("in_flight=1"), "{log}");
    eprintln!("held past the deadline: gone {gone:?} after SIGTERM");
}

/// With NATS gone there is nothing to drain: SIGTERM ends an instance at
/// once and cleanly, instead of after its drain deadline.
#[tokio::test]
async fn an_instance_leaves_at_once_when_nats_is_gone() {
    let mut stack = Stack::start(&["inventory-get"]).await;
    stack.server.stop();
    tokio::time::sleep(Duration::from_millis(500)).await; // the instance sees the connection drop
    let started = Instant::now();
    let status = stack.procs[0].terminate().await;
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(stack.procs[0].log().contains("NATS is not connected"));
}

/// Median of 200 request round trips to nats-server (a subject nobody
/// serves: the server's "no responders" is the answer): the order of the
/// window in which a quiet drain can lose a request.
async fn round_trip(stack: &Stack) -> Duration {
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let _ = stack.client.request("drain.rtt-probe", "".into()).await;
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}
