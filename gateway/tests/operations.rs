//! The gateway's own routes: `/healthz`, `/readyz`, `/metrics` (checked with
//! a small Prometheus text-format parser) and `/openapi.json` (checked
//! against the contract table).

mod common;

use common::Gateway;
use futures::StreamExt;
use oms_runtime::contract::OPERATIONS;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use testkit::{eventually, Stack};

const INVENTORY: [&str; 4] = [
    "inventory-add-stock",
    "inventory-check",
    "inventory-get",
    "inventory-list",
];

fn services() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = OPERATIONS.iter().map(|op| op.service).collect();
    names.dedup();
    names
}

#[tokio::test]
async fn health_and_readiness() {
    let mut stack = Stack::start(&INVENTORY).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let health = gw.get("/healthz").await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );

    // Only the inventory services run: the others are named as missing.
    let ready = gw.get("/readyz").await;
    let problem = ready.problem(503);
    let missing: BTreeSet<String> = serde_json::from_value(problem["missing"].clone()).unwrap();
    let want: BTreeSet<String> = services()
        .into_iter()
        .filter(|s| !INVENTORY.contains(s))
        .map(String::from)
        .collect();
    assert_eq!(missing, want);

    // Stand-ins answer PING for the missing ones: ready.
    let mut responders = Vec::new();
    for service in &want {
        let mut sub = stack
            .client
            .subscribe(format!("$SRV.PING.{service}"))
            .await
            .unwrap();
        let client = stack.client.clone();
        let name = service.clone();
        responders.push(tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                let ping = json!({"type": "io.nats.micro.v1.ping_response", "name": name, "id": "x", "version": "0.0.0", "metadata": {}});
                client.publish(message.reply.unwrap(), ping.to_string().into()).await.unwrap();
            }
        }));
    }
    stack.client.flush().await.unwrap();
    // Readiness follows within a ping window or two (more on a loaded CI).
    eventually(10, "ready once stand-ins answer", || async {
        gw.get("/readyz").await.status == 200
    })
    .await;
    let ready = gw.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["nats"], "connected");

    // One real service goes away: not ready, and it is named.
    let index = stack
        .procs
        .iter()
        .position(|p| p.name == "inventory-get")
        .unwrap();
    stack.procs[index].kill();
    eventually(5, "readyz names inventory-get", || async {
        let ready = gw.get("/readyz").await;
        ready.status == 503 && ready.json()["missing"] == json!(["inventory-get"])
    })
    .await;
    assert_eq!(
        gw.get("/healthz").await.status,
        200,
        "health does not depend on NATS"
    );
    for r in responders {
        r.abort();
    }
}

/// One sample line of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format strictly enough to catch what a
/// Prometheus server would reject: bad names, bad label syntax, values that
/// are not numbers, a family's TYPE after its samples or twice, a histogram
/// whose buckets are not cumulative or whose +Inf bucket is not its count.
fn parse_prometheus(text: &str) -> Result<(BTreeMap<String, String>, Vec<Sample>), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples: Vec<Sample> = Vec::new();
    let family_of = |name: &str, types: &BTreeMap<String, String>| -> Option<String> {
        if types.contains_key(name) {
            return Some(name.to_string());
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            (types.get(base).map(String::as_str) == Some("histogram")).then(|| base.to_string())
        })
    };
    for (number, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !name_ok(name) {
                        return Err(at("bad metric name".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at("unknown type".into()));
                    }
                    if samples.iter().any(|s| {
                        family_of(&s.name, &types).as_deref() == Some(name) || s.name == name
                    }) {
                        return Err(at("TYPE after samples".into()));
                    }
                    if types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(at("TYPE twice".into()));
                    }
                }
                (Some("HELP"), Some(name), _) if name_ok(name) => {}
                _ => return Err(at("bad comment".into())),
            }
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(at("no value".into())),
        };
        if !name_ok(name) {
            return Err(at("bad metric name".into()));
        }
        let mut labels = BTreeMap::new();
        let rest = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end;
            loop {
                let start = chars
                    .peek()
                    .map(|(i, _)| *i)
                    .ok_or_else(|| at("unterminated labels".into()))?;
                if body[start..].starts_with('}') {
                    end = start + 1;
                    break;
                }
                let eq = body[start..]
                    .find("=\"")
                    .ok_or_else(|| at("label without =\"".into()))?
                    + start;
                let label = &body[start..eq];
                if !name_ok(label) || label.contains(':') {
                    return Err(at(format!("bad label name {label:?}")));
                }
                while chars.peek().is_some_and(|(i, _)| *i < eq + 2) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            _ => return Err(at("bad escape".into())),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(at("unterminated label value".into())),
                    }
                }
                if labels.insert(label.to_string(), value).is_some() {
                    return Err(at("label twice".into()));
                }
                match chars.peek() {
                    Some((_, ',')) => {
                        chars.next();
                    }
                    Some((_, '}')) => {}
                    _ => return Err(at("expected , or }".into())),
                }
            }
            &body[end..]
        } else {
            rest
        };
        let mut fields = rest.split_whitespace();
        let value = match fields.next() {
            Some("+Inf") => f64::INFINITY,
            Some("-Inf") => f64::NEG_INFINITY,
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| at("value is not a number".into()))?,
            None => return Err(at("no value".into())),
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing text".into()));
        }
        if family_of(name, &types).is_none() {
            return Err(at("sample without TYPE".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    // Histograms: cumulative buckets ending in +Inf == _count.
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let mut key = s.labels.clone();
            let le = key.remove("le").ok_or("bucket without le")?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().map_err(|_| "bad le")?
            };
            series.entry(key).or_default().push((bound, s.value));
        }
        for (key, buckets) in series {
            if !buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            {
                return Err(format!("{family} {key:?}: buckets not cumulative"));
            }
            if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
                return Err(format!("{family} {key:?}: no +Inf bucket"));
            }
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && s.labels == key)
                .ok_or(format!("{family} {key:?}: no _count"))?;
            if count.value != buckets.last().unwrap().1 {
                return Err(format!("{family} {key:?}: +Inf bucket is not _count"));
            }
        }
    }
    Ok((types, samples))
}

#[test]
fn the_parser_rejects_what_prometheus_would() {
    let good = "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n";
    assert!(parse_prometheus(good).is_ok());
    for bad in [
        "a_total 1\n",                  // no TYPE
        "# TYPE a counter\na{x=1} 1\n", // unquoted label
        "# TYPE a counter\na nope\n",   // not a number
        "# TYPE 1a counter\n",          // bad name
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n", // +Inf != count
    ] {
        assert!(parse_prometheus(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let stack = Stack::start(&["inventory-get", "inventory-add-stock"]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    for i in 0..5 {
        gw.get(&format!("/inventory/m-{i}")).await.problem(404);
    }
    assert_eq!(
        gw.post(
            "/inventory",
            &json!({"productId": "m", "quantity": 1, "price": 1})
        )
        .await
        .status,
        201
    );
    gw.get("/no/such/thing").await.problem(404);

    let page = gw.get("/metrics").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = page.text();
    let (types, samples) = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(types["gateway_http_requests_total"], "counter");
    assert_eq!(types["gateway_http_request_duration_seconds"], "histogram");
    assert_eq!(types["gateway_http_requests_in_flight"], "gauge");
    assert_eq!(types["gateway_nats_reconnects_total"], "counter");

    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    };
    let get_404 = [
        ("method", "GET"),
        ("route", "/inventory/{productId}"),
        ("status", "404"),
    ];
    assert_eq!(find("gateway_http_requests_total", &get_404), Some(5.0));
    assert_eq!(
        find("gateway_http_request_duration_seconds_count", &get_404),
        Some(5.0)
    );
    assert!(find("gateway_http_request_duration_seconds_sum", &get_404).unwrap() > 0.0);
    let created = [
        ("method", "POST"),
        ("route", "/inventory"),
        ("status", "201"),
    ];
    assert_eq!(find("gateway_http_requests_total", &created), Some(1.0));
    assert_eq!(
        find(
            "gateway_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        find("gateway_http_requests_in_flight", &[]),
        Some(1.0),
        "this very request"
    );
    assert_eq!(find("gateway_nats_reconnects_total", &[]), Some(0.0));
    assert_eq!(find("gateway_nats_connected", &[]), Some(1.0));
    // The raw path never becomes a label value.
    assert!(!text.contains("m-1"), "{text}");
}

#[tokio::test]
async fn a_nats_outage_is_503_at_once_and_the_gateway_rides_it_out() {
    let mut stack = Stack::start(&["inventory-get"]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    gw.get("/inventory/p-1").await.problem(404);

    stack.server.stop();
    eventually(10, "the gateway notices the outage", || async {
        gw.get("/readyz").await.json()["nats"] == "disconnected"
    })
    .await;
    let started = std::time::Instant::now();
    let problem = gw.get("/inventory/p-1").await.problem(503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("NATS"),
        "{problem}"
    );
    assert_eq!(
        gw.get("/healthz").await.status,
        200,
        "health does not depend on NATS"
    );

    stack.server.restart().await;
    eventually(20, "the gateway reconnects and counts it", || async {
        let text = gw.get("/metrics").await.text();
        text.lines().any(|l| l == "gateway_nats_reconnects_total 1")
            && text.lines().any(|l| l == "gateway_nats_connected 1")
    })
    .await;
    eventually(20, "requests are served again", || async {
        gw.get("/inventory/p-1").await.status == 404
    })
    .await;
}

/// Follows a local `$ref` (`#/a/b`) in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_is_3_1_and_lists_every_route_with_its_schemas() {
    let stack = Stack::start(&[]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let response = gw.get("/openapi.json").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let doc = response.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        assert!(resolve(&doc, r).is_some(), "dangling $ref {r}");
    }

    let mut operation_ids = BTreeSet::new();
    let mut routed = 0;
    for op in OPERATIONS.iter() {
        let Some(route) = op.route else { continue };
        routed += 1;
        let entry = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
        assert!(entry.is_object(), "{} {} missing", route.method, route.path);
        assert_eq!(entry["x-nats-subject"], op.subject());
        assert!(operation_ids.insert(entry["operationId"].as_str().unwrap().to_string()));

        // The success response, with the response schema.
        let ok = &entry["responses"][route.status.to_string()];
        let schema_ref = ok["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let schema = resolve(&doc, schema_ref).unwrap();
        let contract: Value = serde_json::from_str(op.response_schema()).unwrap();
        if contract["properties"]["nextCursor"].is_object() {
            assert_eq!(
                schema, &contract["properties"]["items"],
                "a page is the bare array"
            );
            assert!(ok["headers"]["Link"].is_object());
        } else {
            assert_eq!(schema, &contract);
        }
        // Problems.
        for status in ["400", "503", "504"] {
            let problem = &entry["responses"][status]["$ref"];
            let problem = resolve(&doc, problem.as_str().unwrap()).unwrap();
            assert!(problem["content"]["application/problem+json"]["schema"].is_object());
        }

        // The request: every property of the request schema is a path or
        // query parameter (GET) or in the body (writes).
        let request: Value = serde_json::from_str(op.request_schema()).unwrap();
        let params: Vec<&Value> = entry["parameters"].as_array().unwrap().iter().collect();
        let param = |name: &str, place: &str| {
            params
                .iter()
                .find(|p| p["name"] == name && p["in"] == place)
        };
        let path_names: Vec<&str> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for name in &path_names {
            let p = param(name, "path")
                .unwrap_or_else(|| panic!("{} lacks path param {name}", route.path));
            assert_eq!(p["required"], true);
            assert_eq!(p["schema"], request["properties"][name]);
        }
        if route.method == "GET" {
            assert!(entry.get("requestBody").is_none());
            for (name, schema) in request["properties"].as_object().unwrap() {
                if path_names.contains(&name.as_str()) {
                    continue;
                }
                let p = param(name, "query")
                    .unwrap_or_else(|| panic!("{} lacks query param {name}", route.path));
                assert_eq!(&p["schema"], schema);
            }
        } else {
            let body_ref = entry["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            let body = resolve(&doc, body_ref).unwrap();
            for (name, schema) in request["properties"].as_object().unwrap() {
                if !path_names.contains(&name.as_str()) {
                    assert_eq!(
                        &body["properties"][name], schema,
                        "{} body field {name}",
                        route.path
                    );
                }
            }
            assert!(entry["responses"]["413"].is_object() && entry["responses"]["415"].is_object());
        }
    }
    assert_eq!(routed, 10, "the REST routes of the design");
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
    let create = &doc["paths"]["/orders"]["post"];
    assert!(create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Idempotency-Key"));
    assert!(create["responses"]["201"]["headers"]["Location"].is_object());
}
