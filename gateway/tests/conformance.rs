//! Every operation of the table, driven over NATS and over HTTP: its
//! success and each error kind it can answer, every reply checked against
//! the schema its service publishes in its endpoint metadata (the response
//! schema for a success, the problem schema for an error). A reply shape
//! that drifts from its schema fails here, whichever side moved.

mod common;

use common::Gateway;
use oms_runtime::contract::{Spec, OPERATIONS};
use oms_runtime::schema::Schema;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use testkit::Stack;

/// One request and the status it must get. `$order` in a body stands for
/// the id of the order the transport's last successful create answered.
struct Case {
    subject: &'static str,
    body: Value,
    /// Over NATS; over HTTP a success is the route's own status.
    status: u16,
    /// NATS only: what REST does not carry this way (an internal subject,
    /// or a field the gateway takes from a header).
    nats_only: bool,
}

fn case(subject: &'static str, body: Value, status: u16) -> Case {
    Case {
        subject,
        body,
        status,
        nats_only: false,
    }
}

fn nats(subject: &'static str, body: Value, status: u16) -> Case {
    Case {
        nats_only: true,
        ..case(subject, body, status)
    }
}

fn cases() -> Vec<Case> {
    let item = |id: &str, n: u64| json!([{"productId": id, "quantity": n}]);
    vec![
        case(
            "inventory.add-stock",
            json!({"productId": "C-1", "quantity": 500, "price": 2.5}),
            200,
        ),
        case(
            "inventory.add-stock",
            json!({"productId": "C-1", "quantity": 0, "price": 2.5}),
            400,
        ),
        case(
            "inventory.add-stock",
            json!({"productId": "C-2", "quantity": 5, "price": 1, "requestId": "r-1"}),
            200,
        ),
        case(
            "inventory.add-stock",
            json!({"productId": "C-2", "quantity": 6, "price": 1, "requestId": "r-1"}),
            422,
        ),
        case("inventory.check", json!({"items": item("C-1", 2)}), 200),
        case(
            "inventory.check",
            json!({"items": [{"productId": "C-1", "quantity": 1}, {"productId": "C-1", "quantity": 1}]}),
            400,
        ),
        nats(
            "inventory.reserve",
            json!({"orderId": "hold-1", "items": item("C-1", 1)}),
            200,
        ),
        nats(
            "inventory.reserve",
            json!({"orderId": "hold-1", "items": item("C-1", 2)}),
            409,
        ),
        nats(
            "inventory.reserve",
            json!({"orderId": "hold-2", "items": item("C-1", 1_000_000)}),
            409,
        ),
        nats(
            "inventory.reserve",
            json!({"orderId": "hold-3", "items": item("NOPE", 1)}),
            422,
        ),
        nats(
            "inventory.reserve",
            json!({"orderId": "hold-4", "items": []}),
            400,
        ),
        nats("inventory.release", json!({"orderId": "hold-1"}), 200),
        nats("inventory.release", json!({"orderId": "no-such"}), 404),
        nats("inventory.release", json!({"orderId": ""}), 400),
        nats(
            "inventory.reserve",
            json!({"orderId": "hold-5", "items": item("C-1", 1)}),
            200,
        ),
        nats("inventory.commit", json!({"orderId": "hold-5"}), 200),
        nats("inventory.commit", json!({"orderId": "hold-1"}), 409),
        nats("inventory.commit", json!({"orderId": "no-such"}), 404),
        case("inventory.get", json!({"productId": "C-1"}), 200),
        case("inventory.get", json!({"productId": "NOPE"}), 404),
        case("inventory.get", json!({"productId": "bad id"}), 400),
        case(
            "inventory.get",
            json!({"productId": "C-1", "at": "2000-01-01T00:00:00Z"}),
            404,
        ),
        case("inventory.list", json!({"limit": 1}), 200),
        case("inventory.list", json!({"limit": 0}), 400),
        case(
            "inventory.adjust",
            json!({"productId": "C-1", "delta": -1, "reason": "damaged", "note": "dropped"}),
            200,
        ),
        case(
            "inventory.adjust",
            json!({"productId": "C-1", "quantity": 1, "delta": 1, "reason": "count"}),
            400,
        ),
        case(
            "inventory.adjust",
            json!({"productId": "NOPE", "delta": 1, "reason": "count"}),
            404,
        ),
        case(
            "inventory.adjust",
            json!({"productId": "C-1", "delta": -100_000_000, "reason": "lost"}),
            409,
        ),
        case(
            "inventory.history",
            json!({"productId": "C-1", "limit": 2}),
            200,
        ),
        case(
            "inventory.history",
            json!({"productId": "C-1", "limit": 0}),
            400,
        ),
        case(
            "orders.create",
            json!({"customerId": "c-1", "items": item("C-1", 1)}),
            200,
        ),
        case(
            "orders.create",
            json!({"customerId": "c-1", "items": item("C-1", 1_000_000)}),
            409,
        ),
        case(
            "orders.create",
            json!({"customerId": "c-1", "items": item("NOPE", 1)}),
            422,
        ),
        case(
            "orders.create",
            json!({"customerId": "c-1", "items": []}),
            400,
        ),
        nats(
            "orders.create",
            json!({"customerId": "c-1", "items": item("C-1", 1), "idempotencyKey": "k-1"}),
            200,
        ),
        nats(
            "orders.create",
            json!({"customerId": "c-1", "items": item("C-1", 2), "idempotencyKey": "k-1"}),
            422,
        ),
        case("orders.get", json!({"id": "$order"}), 200),
        case("orders.get", json!({"id": "no-such"}), 404),
        case(
            "orders.update-status",
            json!({"id": "$order", "status": "CONFIRMED", "expectedRevision": 1}),
            412,
        ),
        case(
            "orders.update-status",
            json!({"id": "$order", "status": "CONFIRMED"}),
            200,
        ),
        case(
            "orders.update-status",
            json!({"id": "$order", "status": "PENDING"}),
            409,
        ),
        case(
            "orders.update-status",
            json!({"id": "no-such", "status": "CANCELLED"}),
            404,
        ),
        case(
            "orders.update-status",
            json!({"id": "$order", "status": "SHIPPED"}),
            400,
        ),
        case(
            "orders.update-status",
            json!({"id": "$order", "status": "COMPLETED"}),
            200,
        ),
        case("orders.list", json!({"limit": 2}), 200),
        case("orders.list", json!({"status": "SHIPPED"}), 400),
    ]
}

/// The schemas a service publishes for its endpoint, as a client finds them.
struct Published {
    response: Schema,
    problem: Schema,
}

async fn published(stack: &Stack, spec: &Spec) -> Published {
    let infos = testkit::discover(&stack.client, &format!("$SRV.INFO.{}", spec.service)).await;
    let metadata = &infos
        .first()
        .unwrap_or_else(|| panic!("{} answers no INFO", spec.service))["endpoints"][0]["metadata"];
    let schema = |name: &str| {
        let text = metadata[name]
            .as_str()
            .unwrap_or_else(|| panic!("{} publishes no {name}", spec.service));
        Schema::compile(Box::leak(text.to_string().into_boxed_str()))
    };
    Published {
        response: schema("response_schema"),
        problem: schema("problem_schema"),
    }
}

fn check(published: &Published, what: &str, status: u16, body: &Value) {
    let schema = if status < 300 {
        &published.response
    } else {
        &published.problem
    };
    if let Err(errors) = schema.check(body) {
        panic!("{what}: {status} reply {body} breaks its published schema: {errors:?}");
    }
    if status >= 300 {
        assert_eq!(body["status"], status, "{what}: problem status");
    }
}

fn with_order(body: &Value, order: &Option<String>) -> Value {
    let mut body = body.clone();
    if body["id"] == "$order" {
        body["id"] = json!(order.as_deref().expect("a create succeeded before"));
    }
    body
}

/// A request as the gateway's route takes it: path fields in the path,
/// the rest in the query (GET) or the JSON body.
fn http_request(spec: &Spec, body: &Value) -> (String, Option<Value>) {
    let route = spec.route.expect("a routed operation");
    let mut rest = body.as_object().cloned().unwrap_or_default();
    let mut path = route.path.to_string();
    while let Some(start) = path.find('{') {
        let end = path[start..].find('}').unwrap() + start;
        let name = path[start + 1..end].to_string();
        let value = rest.remove(&name).expect("path field in the case");
        path.replace_range(start..=end, &encode(value.as_str().unwrap()));
    }
    if route.method == "GET" {
        let query: Vec<String> = rest
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={}", encode(s)),
                other => format!("{k}={other}"),
            })
            .collect();
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        (path, None)
    } else {
        (path, Some(Value::Object(rest)))
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn every_operation_answers_as_its_published_schemas_say() {
    let services: Vec<&str> = OPERATIONS.iter().map(|op| op.service).collect();
    let stack = Stack::start(&services).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let specs: BTreeMap<String, &Spec> = OPERATIONS.iter().map(|op| (op.subject(), *op)).collect();
    let mut schemas = BTreeMap::new();
    for spec in OPERATIONS.iter() {
        schemas.insert(spec.subject(), published(&stack, spec).await);
    }

    // Every operation is driven to a success and to an error, both ways
    // it is reachable.
    let cases = cases();
    for spec in OPERATIONS.iter() {
        let subject = spec.subject();
        let mine = || cases.iter().filter(|c| c.subject == subject);
        assert!(mine().any(|c| c.status < 300), "{subject}: no success case");
        assert!(mine().any(|c| c.status >= 400), "{subject}: no error case");
        if spec.route.is_some() {
            assert!(
                mine().any(|c| !c.nats_only && c.status < 300)
                    && mine().any(|c| !c.nats_only && c.status >= 400),
                "{subject}: no HTTP success and error case"
            );
        }
    }

    let mut order = None;
    for c in &cases {
        let body = with_order(&c.body, &order);
        let reply = stack.request(c.subject, &body).await;
        let what = format!("NATS {} {body}", c.subject);
        assert_eq!(reply.status, c.status, "{what}: {}", reply.body);
        check(&schemas[c.subject], &what, reply.status, &reply.body);
        if c.subject == "orders.create" && reply.status == 200 {
            order = reply.body["id"].as_str().map(String::from);
        }
    }

    let mut order = None;
    let mut http_cases = 0;
    for c in cases.iter().filter(|c| !c.nats_only) {
        let spec = specs[c.subject];
        let route = spec.route.expect("routed");
        let body = with_order(&c.body, &order);
        // The NATS pass made these: new ids over HTTP.
        let body = match c.subject {
            "inventory.add-stock" => {
                let mut b = body.clone();
                if let Some(r) = b.get("requestId").and_then(Value::as_str) {
                    b["requestId"] = json!(format!("http-{r}"));
                }
                b
            }
            _ => body,
        };
        let (path, payload) = http_request(spec, &body);
        let reply = match &payload {
            Some(payload) if route.method == "POST" => gw.post(&path, payload).await,
            Some(payload) => gw.put(&path, payload).await,
            None => gw.get(&path).await,
        };
        let what = format!("{} {path} {}", route.method, payload.unwrap_or_default());
        let want = if c.status < 300 {
            route.status
        } else {
            c.status
        };
        assert_eq!(reply.status, want, "{what}: {}", reply.text());
        let json: Value = serde_json::from_str(&reply.text())
            .unwrap_or_else(|e| panic!("{what}: {} reply is not JSON ({e})", reply.status));
        // A list answers a JSON array; its next page is in `Link`.
        let json = match json {
            Value::Array(items) => json!({"items": items}),
            other => other,
        };
        check(&schemas[c.subject], &what, want, &json);
        if c.subject == "orders.create" && reply.status == 201 {
            order = json["id"].as_str().map(String::from);
        }
        http_cases += 1;
    }
    assert!(http_cases >= 20, "HTTP drove {http_cases} cases");

    // Over HTTP a body past 64 KiB is a 413 problem, before any handler.
    let big =
        json!({"customerId": "c-1", "items": [{"productId": "x".repeat(70_000), "quantity": 1}]});
    let reply = gw.post("/orders", &big).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    check(&schemas["orders.create"], "413", 413, &reply.json());
}
