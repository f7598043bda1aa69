//! `oms-bench`: one benchmark run on a fresh stack (nats-server with file
//! storage on ephemeral ports, every release binary beside this one), never
//! the ports of `just up`. It measures, in this order:
//!
//! 1. the machine's NATS request-reply limit: a raw echo responder driven
//!    by the same load client as everything else;
//! 2. each operation over NATS directly, at 16 and 64 in flight;
//! 3. the same operations over the gateway with wrk (the gateway's cost);
//! 4. status updates: orders created earlier walked PENDING -> CONFIRMED ->
//!    COMPLETED or CANCELLED, over NATS and HTTP at 64;
//! 5. one hot product reserved by 64 buyers, and the proof of no oversell;
//! 6. history: a page of one product's ledger of `BENCH_HISTORY_ENTRIES`
//!    entries (default 100000), newest and from a random cursor; then
//!    handler cold start and every binary's idle RSS;
//! 7. growth: get-by-id and the first list page at 10^3 .. 10^6 stored orders
//!    (on a second fresh stack, so earlier cases' orders do not count).
//!
//! Settings: `BENCH_SECS` (per case, default 5), `BENCH_MAX_ORDERS` (largest
//! growth size, default 1000000), `BENCH_ONLY` (comma-separated subset of
//! `echo,nats,http,hot,history,cold,growth`); `BENCH_LEDGER=off` runs
//! without `inventory-ledger` (the ledger's cost is the difference). Results: the table on stdout and one
//! JSON object per line in `target/bench/results.jsonl`.
//!
//! Every case also reports what a successful request cost (`cost.rs`): CPU
//! µs of each process of the stack and of the load client over the measured
//! window (not the warm-up), stream appends, consumer deliveries and acks,
//! and the messages through nats-server.

mod cost;
mod load;
mod report;
mod seed;
mod stack;
mod wrk;

use async_nats::Client;
use bytes::Bytes;
use cost::Cost;
use load::{Collect, Payload, Rng};
use report::{Report, Row};
use serde_json::{json, Value};
use stack::{handlers, workers, Stack, GATEWAY};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Products every order picks from: `P000` .. `P099`.
pub const PRODUCTS: usize = 100;
pub const PRODUCT_PREFIX: &str = "P";
pub const PRICE: f64 = 9.99;
/// Stock per product: the largest quantity one `add-stock` accepts, so no
/// order in the run can fail for lack of it.
const STOCK: u64 = 1_000_000_000;
const HOT: &str = "HOT";
const HOT_UNITS: u64 = 1_000_000;
const CONCURRENCY: [usize; 2] = [16, 64];
/// Order ids the get cases pick from (the first ones the create cases made).
const KEEP_IDS: usize = 10_000;
/// Order ids kept from the 1-item create cases, for the get and status cases.
const COLLECT_IDS: usize = 400_000;
/// The status cases' concurrency.
const STATUS_CONCURRENCY: usize = 64;
/// Status updates per second a status case's pool of PENDING orders is
/// sized for: each order gives two updates, so a case of `BENCH_SECS` plus
/// its warm-up uses up to (secs + 1) * this / 2 orders. A task that runs
/// out ends early and the case says so.
const STATUS_MAX_RPS: usize = 12_000;
const BUCKET: &str = "oms";

struct Settings {
    secs: Duration,
    max_orders: u64,
    only: Option<Vec<String>>,
}

impl Settings {
    /// The bench's settings, or the malformed one (the bench does not start).
    fn from_env() -> Result<Settings, oms_runtime::ConfigError> {
        let env = oms_runtime::Env::process();
        Ok(Settings {
            secs: Duration::from_secs(env.whole("BENCH_SECS", 5, 1, 3_600)?),
            max_orders: env.whole("BENCH_MAX_ORDERS", 1_000_000, 1, 100_000_000)?,
            only: env
                .text("BENCH_ONLY")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
        })
    }

    fn runs(&self, phase: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|p| p == phase))
    }
}

/// One operation, as NATS and as REST see it.
struct Case {
    name: &'static str,
    subject: &'static str,
    route: &'static str,
    payload: Payload,
    /// The wrk script sending the same requests.
    lua: String,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let settings = Settings::from_env().unwrap_or_else(|err| {
        eprintln!("oms-bench cannot start: {err}");
        std::process::exit(2)
    });
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .expect("oms-bench runs from target/<profile>");
    let mut report = Report::create(target.join("bench/results.jsonl"));
    // The generated wrk scripts, removed at the end.
    let scripts = testkit::TempDir::new("bench");
    let started = Instant::now();
    report.json(json!({
        "case": "run",
        "secs_per_case": settings.secs.as_secs(),
        "max_orders": settings.max_orders,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "load_average": load_average(),
        "started_at": seed::format_millis(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as i64
        ),
    }));
    let have_wrk = std::process::Command::new("wrk").arg("-v").output().is_ok();
    if !have_wrk {
        println!("wrk is not installed: HTTP cases are skipped (`just bench` installs it)");
    }

    println!(
        "oms-bench: {} s per case, growth up to {} orders, results in {}",
        settings.secs.as_secs(),
        settings.max_orders,
        report.path.display()
    );
    println!("load average before: {}", load_average());
    let mut stack = Stack::start(true).await;
    let control = stack.server.client().await;
    let loader = stack.server.client().await;
    println!(
        "stack up: nats {} , gateway {}",
        stack.server.url(),
        stack.base_url()
    );

    if settings.runs("echo") {
        report.section("NATS request-reply limit (raw echo responder, same load client)");
        let echo = stack.server.client().await;
        let responder = load::echo_service(echo, "bench.echo").await;
        let body = Bytes::from_static(br#"{"productId":"P042","quantity":1,"price":9.99}"#);
        for concurrency in CONCURRENCY {
            let body = body.clone();
            let payload: Payload = Arc::new(move |_, _, _| Some(body.clone()));
            let (outcome, cost) = nats_measured(
                &stack,
                &loader,
                "bench.echo",
                concurrency,
                &settings,
                payload,
                None,
            )
            .await;
            nats_row(
                &mut report,
                "echo",
                "bench.echo",
                concurrency,
                &outcome,
                &cost,
            );
        }
        responder.abort();
    }

    seed_products(&control).await;
    let ids = Collect::new(COLLECT_IDS);
    let mut cases = vec![create_case(1), create_case(5)];
    let ran_nats = settings.runs("nats");
    if ran_nats {
        report.section("Operations over NATS directly (Rust load client, one connection)");
        for (n, case) in cases.iter().enumerate() {
            for concurrency in CONCURRENCY {
                // Only 1-item orders are kept, so every status case walks
                // orders of the same shape.
                run_nats_case(
                    &mut report,
                    &stack,
                    &loader,
                    case,
                    concurrency,
                    &settings,
                    (n == 0).then_some(&ids),
                )
                .await;
            }
        }
    }
    // Created 1-item orders, PENDING: the first ones for the get cases, the
    // rest for the status cases to walk (topped up when the create cases made
    // too few), each status case its own.
    let mut pool = OrderPool::new(std::mem::take(&mut *ids.ids.lock().expect("ids lock")));
    let wants_orders = settings.runs("nats") || settings.runs("http");
    let order_ids = if wants_orders {
        pool.take(&report, &loader, KEEP_IDS.min(pool.len().max(1000)))
            .await
    } else {
        Vec::new()
    };
    cases.extend(read_and_stock_cases(Arc::new(order_ids)));
    let status_orders = (settings.secs.as_secs() as usize + 1) * STATUS_MAX_RPS / 2;
    let mut nats_status_rps = None;
    if ran_nats {
        for case in &cases[2..] {
            for concurrency in CONCURRENCY {
                run_nats_case(
                    &mut report,
                    &stack,
                    &loader,
                    case,
                    concurrency,
                    &settings,
                    None,
                )
                .await;
            }
        }
        let walk = pool.take(&report, &loader, status_orders).await;
        nats_status_rps = Some(status_nats(&mut report, &stack, &loader, walk, &settings).await);
    }

    if settings.runs("http") && have_wrk {
        report.section("The same operations over the gateway (wrk -t2, --latency)");
        let base = stack.base_url();
        for case in &cases {
            for concurrency in CONCURRENCY {
                run_http_case(
                    &mut report,
                    &stack,
                    scripts.path(),
                    &base,
                    case.name,
                    case.route,
                    (&case.lua, &case.lua),
                    concurrency,
                    &settings,
                    json!({}),
                )
                .await;
            }
        }
        // Sized on the NATS rate when it ran (HTTP has not been faster).
        let wanted = nats_status_rps.map_or(status_orders, |rps| {
            let need = (settings.secs.as_secs_f64() + 1.0) * rps * 0.75;
            status_orders.min(need as usize + 1000)
        });
        let walk = pool.take(&report, &loader, wanted).await;
        status_http(&mut report, &stack, scripts.path(), walk, &settings).await;
    }

    if settings.runs("hot") {
        report.section("Hot SKU: 64 buyers reserving 1 unit of one product");
        hot_sku(&mut report, &stack, &control, &loader, &settings).await;
    }

    if settings.runs("history") {
        report.section("History: a ledger page of one product with many entries");
        history(&mut report, &stack, &control, &loader, &settings).await;
    }

    if settings.runs("cold") {
        report.heading("Cold start (exec to first served request) and idle RSS");
        cold_start(&mut report, &mut stack, &control).await;
    }
    drop(loader);
    drop(control);
    drop(stack);

    if settings.runs("growth") {
        report.heading("Growth: reads at 10^3 .. 10^6 stored orders (fresh stack, no workers)");
        growth(&mut report, scripts.path(), &settings, have_wrk).await;
    }

    report.flush();
    println!("\nload average after: {}", load_average());
    report.json(json!({"case": "end", "load_average": load_average()}));
    println!(
        "\ndone in {:.0} s; results in {}",
        started.elapsed().as_secs_f64(),
        report.path.display()
    );
}

/// `/proc/loadavg`'s first three fields: whether something else used the
/// machine's cores during the run.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// PENDING orders made by the create cases, handed out once each.
struct OrderPool {
    ids: Vec<String>,
}

impl OrderPool {
    fn new(ids: Vec<String>) -> OrderPool {
        OrderPool { ids }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// `n` orders no other case has had, creating what is missing (64 at a
    /// time over NATS, not measured; said under the table).
    async fn take(&mut self, report: &Report, loader: &Client, n: usize) -> Vec<String> {
        if self.ids.len() < n {
            let missing = n - self.ids.len();
            let started = Instant::now();
            let made = make_orders(loader, missing).await;
            report.detail(format!(
                "(made {} more PENDING orders in {:.1} s for the next cases, not measured)",
                made.len(),
                started.elapsed().as_secs_f64()
            ));
            self.ids.extend(made);
        }
        let rest = self.ids.split_off(n.min(self.ids.len()));
        std::mem::replace(&mut self.ids, rest)
    }
}

/// `P000`..`P099` with huge stock, and the hot product.
async fn seed_products(client: &Client) {
    for i in 0..PRODUCTS {
        let body = json!({"productId": format!("{PRODUCT_PREFIX}{i:03}"), "quantity": STOCK, "price": PRICE});
        expect_ok(client, "inventory.add-stock", &body).await;
    }
}

/// Sends one request that must succeed; returns its JSON reply.
async fn expect_ok(client: &Client, subject: &str, body: &Value) -> Value {
    let reply = testkit::try_request(client, subject, body.to_string(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        reply.status, 200,
        "{subject} {body} answered {} {}",
        reply.status, reply.body
    );
    reply.body
}

/// Creates `n` orders of 1 item, 64 requests in flight; returns their ids.
async fn make_orders(client: &Client, n: usize) -> Vec<String> {
    let sent = Arc::new(AtomicUsize::new(0));
    let payload: Payload = Arc::new(move |rng, _, _| {
        (sent.fetch_add(1, Ordering::Relaxed) < n).then(|| order_request(rng, 1))
    });
    let made = Collect::new(n);
    let outcome = load::run(
        client,
        "orders.create",
        64,
        Duration::from_secs(3600),
        payload,
        Some(made.clone()),
    )
    .await;
    assert!(
        outcome.errors == 0,
        "creating orders for the next cases failed: {:?}",
        outcome.codes
    );
    let mut ids = made.ids.lock().expect("ids lock");
    std::mem::take(&mut *ids)
}

/// An `orders.create` body with `items` distinct random products.
fn order_request(rng: &mut Rng, items: usize) -> Bytes {
    let mut picked: Vec<usize> = Vec::with_capacity(items);
    while picked.len() < items {
        let p = rng.below(PRODUCTS);
        if !picked.contains(&p) {
            picked.push(p);
        }
    }
    let lines: Vec<String> = picked
        .iter()
        .map(|p| format!(r#"{{"productId":"{PRODUCT_PREFIX}{p:03}","quantity":1}}"#))
        .collect();
    Bytes::from(format!(
        r#"{{"customerId":"c-{}","items":[{}]}}"#,
        rng.below(1000),
        lines.join(",")
    ))
}

fn create_case(items: usize) -> Case {
    Case {
        name: if items == 1 {
            "orders.create 1 item"
        } else {
            "orders.create 5 items"
        },
        subject: "orders.create",
        route: "POST /orders",
        payload: Arc::new(move |rng, _, _| Some(order_request(rng, items))),
        lua: wrk::post_script(
            "/orders",
            &format!(
                r#"string.format('{{"customerId":"c-%d","items":%s}}', math.random(0, 999), products({items}))"#
            ),
        ),
    }
}

fn read_and_stock_cases(ids: Arc<Vec<String>>) -> Vec<Case> {
    let table = wrk::id_table(&ids);
    vec![
        Case {
            name: "orders.get",
            subject: "orders.get",
            route: "GET /orders/{id}",
            payload: Arc::new(move |rng, _, _| {
                Some(Bytes::from(format!(
                    r#"{{"id":"{}"}}"#,
                    ids[rng.below(ids.len())]
                )))
            }),
            lua: wrk::get_script(r#""/orders/" .. ids[math.random(1, #ids)]"#, &table),
        },
        Case {
            name: "inventory.add-stock",
            subject: "inventory.add-stock",
            route: "POST /inventory",
            payload: Arc::new(|rng, _, _| {
                Some(Bytes::from(format!(
                    r#"{{"productId":"{PRODUCT_PREFIX}{:03}","quantity":1,"price":{PRICE}}}"#,
                    rng.below(PRODUCTS)
                )))
            }),
            lua: wrk::post_script(
                "/inventory",
                &format!(
                    r#"string.format('{{"productId":"%s","quantity":1,"price":{PRICE}}}', product())"#
                ),
            ),
        },
        Case {
            name: "inventory.get",
            subject: "inventory.get",
            route: "GET /inventory/{productId}",
            payload: Arc::new(|rng, _, _| {
                Some(Bytes::from(format!(
                    r#"{{"productId":"{PRODUCT_PREFIX}{:03}"}}"#,
                    rng.below(PRODUCTS)
                )))
            }),
            lua: wrk::get_script(r#""/inventory/" .. product()"#, ""),
        },
        Case {
            name: "orders.list limit=100",
            subject: "orders.list",
            route: "GET /orders?limit=100",
            payload: Arc::new(|_, _, _| Some(Bytes::from_static(br#"{"limit":100}"#))),
            lua: wrk::get_script(r#""/orders?limit=100""#, ""),
        },
    ]
}

async fn run_nats_case(
    report: &mut Report,
    stack: &Stack,
    loader: &Client,
    case: &Case,
    concurrency: usize,
    settings: &Settings,
    collect: Option<&Arc<Collect>>,
) {
    let (outcome, cost) = nats_measured(
        stack,
        loader,
        case.subject,
        concurrency,
        settings,
        case.payload.clone(),
        collect.cloned(),
    )
    .await;
    nats_row(
        report,
        case.name,
        case.subject,
        concurrency,
        &outcome,
        &cost,
    );
}

/// A warm-up of the same requests (not measured), then the measured window
/// and what it cost.
async fn nats_measured(
    stack: &Stack,
    loader: &Client,
    subject: &str,
    concurrency: usize,
    settings: &Settings,
    payload: Payload,
    collect: Option<Arc<Collect>>,
) -> (load::Outcome, Cost) {
    load::run(
        loader,
        subject,
        concurrency,
        load::WARMUP,
        payload.clone(),
        collect.clone(),
    )
    .await;
    let before = cost::Before::take(stack).await;
    let outcome = load::run(
        loader,
        subject,
        concurrency,
        settings.secs,
        payload,
        collect,
    )
    .await;
    let cost = before.finish(outcome.ok, cost::Client::Bench).await;
    (outcome, cost)
}

fn nats_row(
    report: &mut Report,
    case: &str,
    subject: &str,
    concurrency: usize,
    o: &load::Outcome,
    cost: &Cost,
) {
    let row = Row {
        case,
        transport: "nats",
        concurrency,
        rps: o.rps(),
        p50_ms: o.quantile_ms(0.50),
        p99_ms: o.quantile_ms(0.99),
        errors: o.errors,
        extra: json!({
            "subject": subject,
            "requests": o.ok + o.errors,
            "timeouts": o.timeouts,
            "error_codes": o.codes,
            "secs": o.elapsed.as_secs_f64(),
            "exhausted_tasks": o.exhausted,
        }),
    };
    row_with_cost(report, row, cost);
}

/// The row, with its cost in the JSON line and as lines under the table.
fn row_with_cost(report: &mut Report, mut row: Row, cost: &Cost) {
    if let (Value::Object(extra), Value::Object(cost)) = (&mut row.extra, cost.json()) {
        extra.extend(cost);
    }
    report.detail(format!(
        "{} · {} · {}: {}",
        row.case,
        row.transport,
        row.concurrency,
        cost.line()
    ));
    if let Some(js) = cost.js_line() {
        report.detail(format!("    {js}"));
    }
    report.row(row);
}

/// wrk for one second with `scripts.0` (not measured), then for
/// `BENCH_SECS` with `scripts.1`, and what that cost.
#[allow(clippy::too_many_arguments)]
async fn run_http_case(
    report: &mut Report,
    stack: &Stack,
    dir: &Path,
    base: &str,
    case: &str,
    route: &str,
    scripts: (&str, &str),
    concurrency: usize,
    settings: &Settings,
    mut extra: Value,
) -> Option<wrk::Report> {
    let file = format!(
        "{}-{concurrency}",
        case.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let (warmup, measured) = scripts;
    let _ = wrk::run(
        dir,
        &format!("{file}-warmup"),
        warmup,
        base,
        concurrency,
        load::WARMUP,
    )
    .await;
    let before = cost::Before::take(stack).await;
    match wrk::run(dir, &file, measured, base, concurrency, settings.secs).await {
        Ok(w) => {
            let ok = w.requests.saturating_sub(w.errors());
            let cost = before.finish(ok, cost::Client::Wrk).await;
            extra["route"] = json!(route);
            extra["requests"] = json!(w.requests);
            extra["non_2xx"] = json!(w.non_2xx);
            extra["socket_errors"] = json!(w.socket_errors);
            let row = Row {
                case,
                transport: "http",
                concurrency,
                rps: w.rps,
                p50_ms: w.p50_ms,
                p99_ms: w.p99_ms,
                errors: w.errors(),
                extra,
            };
            row_with_cost(report, row, &cost);
            Some(w)
        }
        Err(err) => {
            println!("| {case} | http | {concurrency} | failed: {err}");
            report.json(json!({"case": case, "transport": "http", "concurrency": concurrency, "error": err}));
            None
        }
    }
}

const STATUS_CASE: &str = "orders.update-status walk";

/// `orders.update-status` bodies walking `ids`: task t owns every
/// `tasks`-th order from t and moves each PENDING -> CONFIRMED, then
/// COMPLETED (even orders of the task) or CANCELLED (odd ones). A task sends
/// its requests one after the other, so each is a legal transition; where
/// a task stands is kept across the warm-up and the measured run.
fn status_walk(ids: Arc<Vec<String>>, tasks: usize) -> Payload {
    let steps: Arc<Vec<AtomicUsize>> = Arc::new((0..tasks).map(|_| AtomicUsize::new(0)).collect());
    Arc::new(move |_, task, _| {
        let step = steps[task].fetch_add(1, Ordering::Relaxed);
        let nth = step / 2;
        let id = ids.get(task + nth * tasks)?;
        let status = match (step % 2, nth % 2) {
            (0, _) => "CONFIRMED",
            (_, 0) => "COMPLETED",
            _ => "CANCELLED",
        };
        Some(Bytes::from(format!(
            r#"{{"id":"{id}","status":"{status}"}}"#
        )))
    })
}

/// The status walk over NATS at 64; returns its req/s.
async fn status_nats(
    report: &mut Report,
    stack: &Stack,
    loader: &Client,
    ids: Vec<String>,
    settings: &Settings,
) -> f64 {
    let orders = ids.len();
    let payload = status_walk(Arc::new(ids), STATUS_CONCURRENCY);
    let (outcome, cost) = nats_measured(
        stack,
        loader,
        "orders.update-status",
        STATUS_CONCURRENCY,
        settings,
        payload,
        None,
    )
    .await;
    if outcome.exhausted > 0 {
        report.detail(format!(
            "{STATUS_CASE}: {} of {STATUS_CONCURRENCY} tasks walked all their orders ({orders} in all) before the end: raise STATUS_MAX_RPS",
            outcome.exhausted
        ));
    }
    nats_row(
        report,
        STATUS_CASE,
        "orders.update-status",
        STATUS_CONCURRENCY,
        &outcome,
        &cost,
    );
    outcome.rps()
}

/// The status walk over the gateway at 64: the warm-up walks its own share
/// of the orders, the measured run the rest (each wrk run starts afresh).
async fn status_http(
    report: &mut Report,
    stack: &Stack,
    dir: &Path,
    ids: Vec<String>,
    settings: &Settings,
) {
    let warm = ids.len() / (settings.secs.as_secs() as usize + 1);
    let write = |name: &str, ids: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, ids.join("\n") + "\n").expect("write an id file");
        wrk::status_walk_script(&path)
    };
    let warmup = write("status-warmup.ids", &ids[..warm]);
    let measured = write("status.ids", &ids[warm..]);
    run_http_case(
        report,
        stack,
        dir,
        &stack.base_url(),
        STATUS_CASE,
        "PUT /orders/{id}/status",
        (&warmup, &measured),
        STATUS_CONCURRENCY,
        settings,
        json!({"orders": ids.len() - warm}),
    )
    .await;
}

/// 64 tasks reserve 1 unit of `HOT` each, with a fresh orderId every time;
/// afterwards the product must show exactly the successful reservations.
/// A page of `inventory.history` for a product with
/// `BENCH_HISTORY_ENTRIES` ledger entries (made first by as many
/// add-stocks, not measured): the newest page, and a page from a random
/// cursor (collected by walking the whole history once).
async fn history(
    report: &mut Report,
    stack: &Stack,
    control: &Client,
    loader: &Client,
    settings: &Settings,
) {
    if !stack::workers().any(|w| w == "inventory-ledger") {
        report.note("history: skipped, inventory-ledger is not running (BENCH_LEDGER=off)");
        return;
    }
    let entries: usize = std::env::var("BENCH_HISTORY_ENTRIES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(100_000);
    let product = format!("HIST-{}", nuid::next());
    let left = Arc::new(AtomicUsize::new(entries));
    let body = Bytes::from(format!(
        r#"{{"productId":"{product}","quantity":1,"price":{PRICE}}}"#
    ));
    let fill: Payload = Arc::new(move |_, _, _| {
        left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()
            .map(|_| body.clone())
    });
    let started = Instant::now();
    // Few at once: every add-stock is a compare-and-set on the one key.
    let made = load::run(
        loader,
        "inventory.add-stock",
        4,
        Duration::from_secs(3600),
        fill,
        None,
    )
    .await;
    // The ledger has them all once its newest entry is change `entries`.
    let newest = json!({"productId": product, "limit": 1});
    loop {
        let page = expect_ok(control, "inventory.history", &newest).await;
        if page["items"][0]["seq"].as_u64() >= Some(made.ok) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut cursors = Vec::new();
    let mut walk = json!({"productId": product, "limit": 1000});
    let walked = Instant::now();
    let mut seen = 0;
    loop {
        let page = expect_ok(control, "inventory.history", &walk).await;
        seen += page["items"].as_array().map_or(0, Vec::len);
        let Some(cursor) = page["nextCursor"].as_str() else {
            break;
        };
        cursors.push(cursor.to_string());
        walk["cursor"] = cursor.into();
    }
    report.note(&format!(
        "history: {} add-stocks of {product} in {:.1} s ({} errors); walked its {seen} entries in {} pages of 1000 in {:.2} s",
        made.ok,
        started.elapsed().as_secs_f64(),
        made.errors,
        cursors.len() + 1,
        walked.elapsed().as_secs_f64()
    ));
    let top: Payload = {
        let body = Bytes::from(json!({"productId": product, "limit": 100}).to_string());
        Arc::new(move |_, _, _| Some(body.clone()))
    };
    let deep: Payload = {
        let bodies: Vec<Bytes> = cursors
            .iter()
            .map(|c| {
                Bytes::from(json!({"productId": product, "limit": 100, "cursor": c}).to_string())
            })
            .collect();
        Arc::new(move |rng, _, _| {
            (!bodies.is_empty()).then(|| bodies[rng.below(bodies.len())].clone())
        })
    };
    for (name, payload) in [
        ("inventory.history newest 100", top),
        ("inventory.history 100 from a random cursor", deep),
    ] {
        for concurrency in [1, 16] {
            let (outcome, cost) = nats_measured(
                stack,
                loader,
                "inventory.history",
                concurrency,
                settings,
                payload.clone(),
                None,
            )
            .await;
            nats_row(
                report,
                name,
                "inventory.history",
                concurrency,
                &outcome,
                &cost,
            );
        }
    }
}

async fn hot_sku(
    report: &mut Report,
    stack: &Stack,
    control: &Client,
    loader: &Client,
    settings: &Settings,
) {
    expect_ok(
        control,
        "inventory.add-stock",
        &json!({"productId": HOT, "quantity": HOT_UNITS, "price": PRICE}),
    )
    .await;
    let run = nuid::next().to_string();
    let payload: Payload = Arc::new(move |_, task, seq| {
        Some(Bytes::from(format!(
            r#"{{"orderId":"hot-{run}-{task}-{seq}","items":[{{"productId":"{HOT}","quantity":1}}]}}"#
        )))
    });
    // No warm-up: every reservation of the run counts in the proof below.
    let before = cost::Before::take(stack).await;
    let outcome = load::run(
        loader,
        "inventory.reserve",
        64,
        settings.secs,
        payload,
        None,
    )
    .await;
    let cost = before.finish(outcome.ok, cost::Client::Bench).await;
    nats_row(
        report,
        "hot SKU inventory.reserve",
        "inventory.reserve",
        64,
        &outcome,
        &cost,
    );
    let product = expect_ok(control, "inventory.get", &json!({"productId": HOT})).await;
    let quantity = product["quantity"].as_u64().unwrap_or(0);
    let reserved = product["reserved"].as_u64().unwrap_or(0);
    let conserved = quantity + reserved == HOT_UNITS;
    let exact = reserved == outcome.ok;
    report.note(&format!(
        "hot SKU: {} reservations ({:.0}/s), {} errors {:?}; product {HOT}: quantity {quantity} + reserved {reserved} = {} (seeded {HOT_UNITS}) -> {}; reserved == successful reservations: {}",
        outcome.ok,
        outcome.rps(),
        outcome.errors,
        outcome.codes,
        quantity + reserved,
        if conserved { "no oversell" } else { "MISMATCH" },
        if exact { "yes" } else { "NO" },
    ));
    report.json(json!({
        "case": "hot SKU proof",
        "seeded": HOT_UNITS,
        "quantity": quantity,
        "reserved": reserved,
        "successful_reservations": outcome.ok,
        "timeouts": outcome.timeouts,
        "conserved": conserved,
        "reserved_equals_successes": exact,
    }));
}

/// A request each handler can answer at once (a 404 is an answer too).
fn cold_request(binary: &str) -> String {
    let id = nuid::next();
    match binary {
        "inventory-add-stock" => r#"{"productId":"COLD","quantity":1,"price":1}"#.into(),
        "inventory-check" => r#"{"items":[{"productId":"P000","quantity":1}]}"#.into(),
        "inventory-reserve" => {
            format!(r#"{{"orderId":"cold-{id}","items":[{{"productId":"P000","quantity":1}}]}}"#)
        }
        "inventory-release" | "inventory-commit" => format!(r#"{{"orderId":"cold-{id}"}}"#),
        "inventory-get" => r#"{"productId":"P000"}"#.into(),
        "inventory-list" | "orders-list" => r#"{"limit":1}"#.into(),
        "orders-create" => {
            r#"{"customerId":"cold","items":[{"productId":"P000","quantity":1}]}"#.into()
        }
        "orders-update-status" => r#"{"id":"cold-none","status":"CONFIRMED"}"#.into(),
        "orders-get" => r#"{"id":"cold-none"}"#.into(),
        _ => "{}".into(),
    }
}

/// Sends `binary`'s cheap request until one is answered; returns the time
/// since `started`, or None after 30 s.
async fn first_answer(
    client: &Client,
    binary: &str,
    subject: &str,
    started: Instant,
) -> Option<Duration> {
    // "No responders" comes back at once until the new instance subscribes.
    while started.elapsed() < Duration::from_secs(30) {
        let request = client.request(subject.to_string(), Bytes::from(cold_request(binary)));
        match tokio::time::timeout(Duration::from_secs(2), request).await {
            Ok(Ok(_)) => return Some(started.elapsed()),
            Ok(Err(_)) => tokio::time::sleep(Duration::from_micros(500)).await,
            Err(_) => {}
        }
    }
    None
}

/// Restarts each binary alone and times exec -> first answered request; then,
/// after a second of idleness, reads every binary's resident memory.
async fn cold_start(report: &mut Report, stack: &mut Stack, control: &Client) {
    let mut starts: Vec<(String, f64)> = Vec::new();
    for (binary, subject) in handlers() {
        stack.stop(binary).await;
        let started = Instant::now();
        stack.spawn(binary);
        let ms = first_answer(control, binary, &subject, started)
            .await
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        starts.push((binary.to_string(), ms));
    }
    stack.stop(GATEWAY).await;
    let started = Instant::now();
    stack.spawn(GATEWAY);
    stack
        .wait_http_ok("/inventory/P000", Duration::from_secs(30))
        .await;
    starts.push((GATEWAY.into(), started.elapsed().as_secs_f64() * 1000.0));
    for worker in workers() {
        stack.stop(worker).await;
        stack.spawn(worker);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;

    println!(
        "\n| {:<34} | {:>13} | {:>12} |",
        "binary", "cold start ms", "idle RSS MiB"
    );
    println!(
        "|{}|{}|{}|",
        "-".repeat(36),
        "-".repeat(14) + ":",
        "-".repeat(13) + ":"
    );
    let names = handlers().map(|(b, _)| b).chain([GATEWAY]).chain(workers());
    for binary in names {
        let start = starts.iter().find(|(b, _)| b == binary).map(|(_, ms)| *ms);
        let rss = stack.pid(binary).and_then(stack::rss_mib);
        println!(
            "| {:<34} | {:>13} | {:>12} |",
            binary,
            start
                .map(|ms| format!("{ms:.1}"))
                .unwrap_or_else(|| "-".into()),
            rss.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into()),
        );
        report.json(json!({
            "case": "cold start",
            "binary": binary,
            "start_ms": start.filter(|s| s.is_finite()),
            "rss_mib": rss,
        }));
    }
}

/// Seeds orders straight into the bucket up to each size, waits for the
/// orders-list index, then measures get-by-id and the first list page.
async fn growth(report: &mut Report, dir: &Path, settings: &Settings, have_wrk: bool) {
    let mut stack = Stack::start(false).await;
    let control = stack.server.client().await;
    let loader = stack.server.client().await;
    let js = async_nats::jetstream::new(control.clone());
    let mut sizes: Vec<u64> = [1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|s| *s < settings.max_orders)
        .collect();
    sizes.push(settings.max_orders);
    let mut stored = 0;
    let mut by_size = Vec::new();
    for size in sizes {
        let took = seed::orders(&js, BUCKET, stored, size).await;
        let seeded = size - stored;
        stored = size;
        let caught_up = wait_for_index(&control, &seed::order_id(size)).await;
        report.note(&format!(
            "{size} orders stored: seeded {seeded} in {:.1} s ({:.0}/s); orders-list index caught up {:.1} s later",
            took.as_secs_f64(),
            seeded as f64 / took.as_secs_f64().max(1e-9),
            caught_up.as_secs_f64()
        ));
        report.json(json!({
            "case": "growth seed",
            "orders": size,
            "seeded": seeded,
            "seed_secs": took.as_secs_f64(),
            "seed_rate": seeded as f64 / took.as_secs_f64().max(1e-9),
            "index_catch_up_secs": caught_up.as_secs_f64(),
        }));
        report.columns();
        let label = |what: &str| format!("{what} @ {size}");
        let get_case = label("orders.get");
        let list_case = label("orders.list limit=100");
        let extra = json!({"orders": size});
        let get: Payload = Arc::new(move |rng, _, _| {
            let n = 1 + rng.below(size as usize) as u64;
            Some(Bytes::from(format!(r#"{{"id":"{}"}}"#, seed::order_id(n))))
        });
        let list: Payload = Arc::new(|_, _, _| Some(Bytes::from_static(br#"{"limit":100}"#)));
        for (case, subject, payload) in [
            (&get_case, "orders.get", get),
            (&list_case, "orders.list", list),
        ] {
            let (o, cost) =
                nats_measured(&stack, &loader, subject, 64, settings, payload, None).await;
            let row = Row {
                case,
                transport: "nats",
                concurrency: 64,
                rps: o.rps(),
                p50_ms: o.quantile_ms(0.5),
                p99_ms: o.quantile_ms(0.99),
                errors: o.errors,
                extra: json!({"orders": size, "subject": subject, "error_codes": o.codes}),
            };
            row_with_cost(report, row, &cost);
        }
        if have_wrk {
            let get_lua = wrk::get_script(
                &format!(r#"string.format("/orders/g%08d", math.random(1, {size}))"#),
                "",
            );
            let got = run_http_case(
                report,
                &stack,
                dir,
                &stack.base_url(),
                &get_case,
                "GET /orders/{id}",
                (&get_lua, &get_lua),
                64,
                settings,
                extra.clone(),
            )
            .await;
            by_size.push((size, got.map(|w| w.rps)));
            let list_lua = wrk::get_script(r#""/orders?limit=100""#, "");
            run_http_case(
                report,
                &stack,
                dir,
                &stack.base_url(),
                &list_case,
                "GET /orders?limit=100",
                (&list_lua, &list_lua),
                64,
                settings,
                extra,
            )
            .await;
        }
    }
    // The index is disposable: a restarted orders-list rebuilds it from the
    // bucket. How long that takes at the largest size is part of its cost.
    stack.stop("orders-list").await;
    let started = Instant::now();
    stack.spawn("orders-list");
    let first = first_answer(&control, "orders-list", "orders.list", started).await;
    wait_for_index(&control, &seed::order_id(stored)).await;
    let rebuilt = started.elapsed();
    report.note(&format!(
        "orders-list restarted at {stored} orders: first answer after {:.0} ms, index rebuilt after {:.1} s",
        first.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        rebuilt.as_secs_f64()
    ));
    report.json(json!({
        "case": "orders-list restart",
        "orders": stored,
        "first_answer_ms": first.map(|d| d.as_secs_f64() * 1000.0),
        "index_rebuilt_secs": rebuilt.as_secs_f64(),
    }));
    if let (Some((small, Some(first))), Some((large, Some(last)))) =
        (by_size.first(), by_size.last())
    {
        report.note(&format!(
            "GET /orders/{{id}} at {large} orders: {:.0}% of its rate at {small}",
            100.0 * last / first
        ));
    }
}

/// Polls the first page until its newest order is `newest`.
async fn wait_for_index(client: &Client, newest: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(900) {
        if let Ok(reply) = testkit::try_request(
            client,
            "orders.list",
            r#"{"limit":1}"#,
            Duration::from_secs(5),
        )
        .await
        {
            if reply.body["items"][0]["id"] == newest {
                return started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("orders-list did not index {newest} within 15 minutes");
}
