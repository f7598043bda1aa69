//! Who may do what, route by route and caller by caller, through the real
//! gateway and the real handlers: no token, bad tokens (expired, wrong
//! audience, wrong signature, not a JWT), customer alice, customer bob,
//! a token with no role, and staff. Every refusal leaves the bucket as it
//! was; a customer never learns whether another's order exists; an
//! idempotency key belongs to the principal that sent it.

mod common;

use common::{hs256, now, token, Gateway, Response, SECRET};
use serde_json::{json, Value};
use sha2::Digest;
use testkit::{eventually, request, Stack};

const SERVICES: [&str; 13] = [
    "inventory-adjust",
    "inventory-history",
    "inventory-add-stock",
    "inventory-get",
    "inventory-list",
    "inventory-check",
    "inventory-reserve",
    "inventory-release",
    "inventory-commit",
    "orders-create",
    "orders-get",
    "orders-list",
    "orders-update-status",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Nobody,
    /// One of [`bad_tokens`].
    Bad(usize),
    Alice,
    Bob,
    NoRole,
    Staff,
}

fn bad_tokens() -> Vec<(&'static str, String)> {
    let claims = |extra: Value| {
        let mut c = json!({"sub": "alice", "roles": ["staff"], "aud": "oms", "exp": now() + 3600});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    vec![
        (
            "expired",
            hs256(SECRET, &claims(json!({"exp": now() - 120}))),
        ),
        (
            "wrong audience",
            hs256(SECRET, &claims(json!({"aud": "shop"}))),
        ),
        (
            "wrong signature",
            hs256("another-secret-of-at-least-32-bytes!", &claims(json!({}))),
        ),
        ("not a JWT", "staff".to_string()),
    ]
}

fn everyone() -> Vec<Who> {
    let mut all = vec![Who::Nobody];
    all.extend((0..bad_tokens().len()).map(Who::Bad));
    all.extend([Who::Alice, Who::Bob, Who::NoRole, Who::Staff]);
    all
}

fn token_of(who: Who) -> Option<String> {
    match who {
        Who::Nobody => None,
        Who::Bad(i) => Some(bad_tokens().swap_remove(i).1),
        Who::Alice => Some(token("alice", &["customer"])),
        Who::Bob => Some(token("bob", &["customer"])),
        Who::NoRole => Some(token("nobody-special", &[])),
        Who::Staff => Some(token("staff-1", &["staff"])),
    }
}

async fn call(gw: &Gateway, who: Who, method: &str, path: &str, body: Option<&Value>) -> Response {
    let text = body.map(|b| b.to_string());
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("Content-Type", "application/json")]
    } else {
        &[]
    };
    let token = token_of(who);
    gw.request_as(
        token.as_deref(),
        method,
        path,
        headers,
        text.as_deref().map(str::as_bytes),
    )
    .await
}

/// Checks the status, and the 401/403 shapes on the way.
fn expect(response: &Response, who: Who, status: u16, what: &str) {
    assert_eq!(
        response.status,
        status,
        "{what} as {who:?}: {}",
        response.text()
    );
    match status {
        401 => {
            response.problem(401);
            let challenge = response.header("www-authenticate");
            let want = if who == Who::Nobody {
                "Bearer"
            } else {
                "Bearer error=\"invalid_token\""
            };
            assert_eq!(challenge, Some(want), "{what} as {who:?}");
        }
        403 | 404 => {
            response.problem(status);
        }
        _ => {}
    }
}

async fn setup() -> (Stack, Gateway, String, String) {
    let stack = Stack::start(&SERVICES).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    for (id, quantity) in [("apple", 100), ("pear", 10)] {
        let added = gw
            .post(
                "/inventory",
                &json!({"productId": id, "quantity": quantity, "price": 1.5}),
            )
            .await;
        assert_eq!(added.status, 201, "{}", added.text());
    }
    let mut ids = Vec::new();
    for customer in ["alice", "bob"] {
        let body =
            json!({"customerId": customer, "items": [{"productId": "apple", "quantity": 1}]});
        let created = gw.post("/orders", &body).await;
        assert_eq!(created.status, 201, "{}", created.text());
        ids.push(created.json()["id"].as_str().unwrap().to_string());
    }
    let bob = ids.pop().unwrap();
    (stack, gw, ids.pop().unwrap(), bob)
}

#[tokio::test]
async fn every_route_for_every_caller() {
    let (stack, gw, alice_order, bob_order) = setup().await;
    use Who::*;
    // Expected status per caller: nobody, bad (each), alice, bob, no role, staff.
    let column = |who: Who| match who {
        Nobody => 0,
        Bad(_) => 1,
        Alice => 2,
        Bob => 3,
        NoRole => 4,
        Staff => 5,
    };
    let check = json!({"items": [{"productId": "apple", "quantity": 1}]});
    let alice_path = format!("/orders/{alice_order}");
    #[rustfmt::skip]
    let reads: [(&str, &str, Option<&Value>, [u16; 6]); 12] = [
        ("GET", "/healthz", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/readyz", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/openapi.json", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/metrics", None, [401, 401, 403, 403, 403, 200]),
        ("GET", "/inventory", None, [401, 401, 200, 200, 403, 200]),
        ("GET", "/inventory/apple", None, [401, 401, 200, 200, 403, 200]),
        ("GET", "/inventory/apple/history", None, [401, 401, 403, 403, 403, 200]),
        ("POST", "/inventory/check", Some(&check), [401, 401, 200, 200, 403, 200]),
        ("GET", &alice_path, None, [401, 401, 200, 404, 403, 200]),
        ("GET", "/orders/no-such-order", None, [401, 401, 404, 404, 403, 404]),
        ("GET", "/orders?customerId=alice", None, [401, 401, 200, 403, 403, 200]),
        ("GET", "/orders", None, [401, 401, 200, 200, 403, 200]),
    ];
    let before = stack.snapshot().await;
    for (method, path, body, want) in reads {
        for who in everyone() {
            let response = call(&gw, who, method, path, body).await;
            expect(
                &response,
                who,
                want[column(who)],
                &format!("{method} {path}"),
            );
        }
    }
    assert_eq!(stack.snapshot().await, before, "reads changed the bucket");

    // Another's order reads exactly like a missing one.
    let hidden = call(&gw, Bob, "GET", &format!("/orders/{alice_order}"), None).await;
    let missing = call(&gw, Bob, "GET", "/orders/no-such-order", None).await;
    assert_eq!(
        hidden.text().replace(&alice_order, "ID"),
        missing.text().replace("no-such-order", "ID")
    );

    // Refused writes change nothing.
    let add = json!({"productId": "apple", "quantity": 5, "price": 0.01});
    let adjust = json!({"delta": 5, "reason": "received"});
    let order = json!({"items": [{"productId": "apple", "quantity": 1}]});
    let for_bob = json!({"customerId": "bob", "items": [{"productId": "apple", "quantity": 1}]});
    let cancel = json!({"status": "CANCELLED"});
    let confirm = json!({"status": "CONFIRMED"});
    let alice_status = format!("/orders/{alice_order}/status");
    let mut refused: Vec<(Who, &str, &str, &Value, u16)> = Vec::new();
    for who in everyone()
        .into_iter()
        .filter(|w| matches!(w, Nobody | Bad(_)))
    {
        refused.push((who, "POST", "/inventory", &add, 401));
        refused.push((who, "POST", "/inventory/apple/adjust", &adjust, 401));
        refused.push((who, "POST", "/orders", &order, 401));
        refused.push((who, "PUT", &alice_status, &cancel, 401));
    }
    refused.extend([
        (Alice, "POST", "/inventory", &add, 403),
        (Alice, "POST", "/inventory/apple/adjust", &adjust, 403),
        (NoRole, "POST", "/inventory/apple/adjust", &adjust, 403),
        (Bob, "POST", "/inventory", &add, 403),
        (NoRole, "POST", "/inventory", &add, 403),
        (NoRole, "POST", "/orders", &order, 403),
        (Alice, "POST", "/orders", &for_bob, 403),
        (Alice, "PUT", &alice_status, &confirm, 403),
        (Bob, "PUT", &alice_status, &cancel, 404),
        (Bob, "PUT", &alice_status, &confirm, 404),
        (NoRole, "PUT", &alice_status, &cancel, 403),
        (Alice, "PUT", "/orders/no-such-order/status", &cancel, 404),
    ]);
    let before = stack.snapshot().await;
    for (who, method, path, body, status) in refused {
        let response = call(&gw, who, method, path, Some(body)).await;
        expect(&response, who, status, &format!("{method} {path} {body}"));
        assert_eq!(
            stack.snapshot().await,
            before,
            "{method} {path} as {who:?} changed the bucket"
        );
    }

    // What each may do.
    let added = call(&gw, Staff, "POST", "/inventory", Some(&add)).await;
    expect(&added, Staff, 201, "staff adds stock");
    for (who, body, owner) in [
        (Alice, &order, "alice"),
        (
            Alice,
            &json!({"customerId": "alice", "items": [{"productId": "pear", "quantity": 1}]}),
            "alice",
        ),
        (Bob, &order, "bob"),
        (
            Staff,
            &json!({"customerId": "carol", "items": [{"productId": "pear", "quantity": 1}]}),
            "carol",
        ),
    ] {
        let created = call(&gw, who, "POST", "/orders", Some(body)).await;
        expect(&created, who, 201, &format!("create {body}"));
        assert_eq!(created.json()["customerId"], owner);
    }
    let no_customer = call(&gw, Staff, "POST", "/orders", Some(&order)).await;
    assert_eq!(
        no_customer.problem(400)["errors"][0]["pointer"],
        "/customerId"
    );
    let cancelled = call(&gw, Alice, "PUT", &alice_status, Some(&cancel)).await;
    expect(&cancelled, Alice, 200, "alice cancels hers");
    assert_eq!(cancelled.json()["status"], "CANCELLED");
    let bob_status = format!("/orders/{bob_order}/status");
    expect(
        &call(&gw, Staff, "PUT", &bob_status, Some(&confirm)).await,
        Staff,
        200,
        "staff confirms",
    );
    expect(
        &call(&gw, Bob, "PUT", &bob_status, Some(&cancel)).await,
        Bob,
        200,
        "bob cancels his confirmed one",
    );
    let stock = request(
        &stack.client,
        "inventory.get",
        &json!({"productId": "apple"}),
    )
    .await;
    assert_eq!(
        stock.body["reserved"], 2,
        "the two open orders of apple: alice's and bob's new ones"
    );

    // Lists: a customer sees its own orders only; staff sees all.
    eventually(10, "the order index has the six orders", || async {
        let all = call(&gw, Staff, "GET", "/orders", None).await.json();
        all.as_array().is_some_and(|a| a.len() == 6)
    })
    .await;
    for (who, sub, count) in [(Alice, "alice", 3), (Bob, "bob", 2)] {
        let mine = call(&gw, who, "GET", "/orders", None).await.json();
        let mine = mine.as_array().unwrap();
        assert_eq!(mine.len(), count, "{who:?}: {mine:?}");
        assert!(
            mine.iter().all(|o| o["customerId"] == sub),
            "{who:?}: {mine:?}"
        );
    }
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_its_principal() {
    let (_stack, gw, _, _) = setup().await;
    let order = json!({"items": [{"productId": "apple", "quantity": 1}]});
    let create = |who: Who, key: String, body: Value| {
        let gw = &gw;
        async move {
            let token = token_of(who);
            let text = body.to_string();
            let headers = [
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key.as_str()),
            ];
            let response = gw
                .request_as(
                    token.as_deref(),
                    "POST",
                    "/orders",
                    &headers,
                    Some(text.as_bytes()),
                )
                .await;
            assert_eq!(response.status, 201, "{who:?}: {}", response.text());
            response.json()
        }
    };
    let alice = create(Who::Alice, "cart-1".into(), order.clone()).await;
    let again = create(Who::Alice, "cart-1".into(), order.clone()).await;
    assert_eq!(again, alice, "a retry names the same order");
    // The gateway passes the key as sent; orders-create scopes it by the
    // principal the gateway names (`Oms-Principal`), as the README says.
    let digest = sha2::Sha256::digest(b"alice\0cart-1");
    let derived: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(alice["id"], derived.as_str());

    let bob = create(Who::Bob, "cart-1".into(), order.clone()).await;
    assert_ne!(
        bob["id"], alice["id"],
        "the same key from another principal"
    );
    assert_eq!(bob["customerId"], "bob");
    let staff = create(
        Who::Staff,
        "cart-1".into(),
        json!({"customerId": "alice", "items": order["items"]}),
    )
    .await;
    assert_ne!(staff["id"], alice["id"]);

    // Bob naming alice as the principal himself, with her key in the body,
    // does not reach her order: the gateway drops his `Oms-*` headers and
    // names him, so the key is his.
    let mut body = order.clone();
    body["idempotencyKey"] = json!("cart-1");
    let forged = gw
        .request_as(
            token_of(Who::Bob).as_deref(),
            "POST",
            "/orders",
            &[
                ("Content-Type", "application/json"),
                ("Oms-Principal", "alice"),
            ],
            Some(body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(forged.status, 201, "{}", forged.text());
    assert_eq!(forged.json(), bob, "bob's own order again");
}
