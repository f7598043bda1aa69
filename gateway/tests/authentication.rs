//! Authentication through the real gateway: what a token must be
//! (each way of being wrong is a 401 that says why), JWKS keys of every
//! accepted kind, no start without a key unless `OMS_AUTH=off`, and the
//! principal as the handler sees it, whatever `Oms-*` headers the client
//! sent. Tokens are made here with ring, not with the gateway's code.

mod common;

use common::{b64, hs256, jwt, now, token, Gateway, SECRET};
use futures::StreamExt;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{free_port, Proc, Stack};

fn claims(extra: Value) -> Value {
    let mut c = json!({"sub": "staff-1", "roles": ["staff"], "aud": "oms", "exp": now() + 600});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

#[tokio::test]
async fn every_bad_token_is_a_401_that_says_why() {
    let stack = Stack::start(&[]).await;
    let gw = Gateway::start(&stack.server, &[]).await;
    let bearer = |t: &str| format!("Bearer {t}");
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(json!({})).to_string().as_bytes())
    );
    let cases: Vec<(Option<String>, bool, &str)> = vec![
        (None, false, "bearer token is required"),
        (
            Some("Basic c3RhZmY6c3RhZmY=".into()),
            false,
            "must be `Bearer <token>`",
        ),
        (Some(bearer("not-a-token")), true, "malformed"),
        (Some(bearer(&unsigned)), true, "malformed"),
        (
            Some(bearer(&hs256(SECRET, &claims(json!({"exp": now() - 120}))))),
            true,
            "expired",
        ),
        (
            Some(bearer(&hs256(SECRET, &claims(json!({"nbf": now() + 600}))))),
            true,
            "not valid yet",
        ),
        (
            Some(bearer(&hs256(SECRET, &claims(json!({"aud": "shop"}))))),
            true,
            "audience",
        ),
        (
            Some(bearer(&hs256(
                "another-secret-of-at-least-32-bytes!",
                &claims(json!({})),
            ))),
            true,
            "signature",
        ),
        (
            Some(bearer(&hs256(SECRET, &json!({"sub": "s", "aud": "oms"})))),
            true,
            "lacks the claim exp",
        ),
        (
            Some(bearer(&hs256(
                SECRET,
                &json!({"roles": ["staff"], "aud": "oms", "exp": now() + 60}),
            ))),
            true,
            "lacks the claim sub",
        ),
        (
            Some(bearer(&hs256(SECRET, &claims(json!({"sub": "two words"}))))),
            true,
            "visible ASCII",
        ),
        (
            Some(bearer(&hs256(SECRET, &claims(json!({"roles": "staff"}))))),
            true,
            "malformed",
        ),
    ];
    for (authorization, sent, why) in cases {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        let response = gw.request_as(None, "GET", "/metrics", &headers, None).await;
        let problem = response.problem(401);
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{authorization:?}: {problem}"
        );
        let challenge = if sent {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        assert_eq!(
            response.header("www-authenticate"),
            Some(challenge),
            "{authorization:?}"
        );
    }
    // Within the 60 s leeway, any scheme case, extra claims: accepted.
    let late = hs256(
        SECRET,
        &claims(json!({"exp": now() - 30, "iss": "anyone", "jti": "x"})),
    );
    let ok = gw
        .request_as(
            None,
            "GET",
            "/metrics",
            &[("Authorization", &format!("bearer {late}"))],
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}

/// A JWKS with one key of each accepted kind, and a signer per `kid`.
struct Issuer {
    jwks: Value,
    ed: sig::Ed25519KeyPair,
    ec: sig::EcdsaKeyPair,
    rsa: sig::RsaKeyPair,
}

impl Issuer {
    fn new(dir: &std::path::Path) -> Issuer {
        let rng = SystemRandom::new();
        let ed = sig::Ed25519KeyPair::from_pkcs8(
            sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref(),
        )
        .unwrap();
        let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let ec_pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let ec = sig::EcdsaKeyPair::from_pkcs8(alg, ec_pkcs8.as_ref(), &rng).unwrap();
        // ring cannot make RSA keys: openssl makes a throwaway one.
        let der = dir.join("rsa.der");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-outform",
                "DER",
                "-out",
            ])
            .arg(&der)
            .output()
            .expect("openssl (Debian's openssl package) makes the test's RSA key");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        // OpenSSL 3 writes PKCS#1 as DER; others may write PKCS#8.
        let bytes = std::fs::read(&der).unwrap();
        let rsa = sig::RsaKeyPair::from_der(&bytes)
            .or_else(|_| sig::RsaKeyPair::from_pkcs8(&bytes))
            .unwrap();
        let rsa_public = sig::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
        let point = ec.public_key().as_ref();
        let jwks = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": b64(ed.public_key().as_ref()), "kid": "ed", "alg": "EdDSA", "use": "sig"},
            {"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]), "kid": "ec"},
            {"kty": "RSA", "n": b64(&rsa_public.n), "e": b64(&rsa_public.e), "kid": "rsa", "alg": "RS256"},
        ]});
        Issuer { jwks, ed, ec, rsa }
    }

    fn sign(&self, alg: &str, kid: &str, claims: &Value) -> String {
        let rng = SystemRandom::new();
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        jwt(&header, claims, |m| match kid {
            "ed" => self.ed.sign(m).as_ref().to_vec(),
            "ec" => self.ec.sign(&rng, m).unwrap().as_ref().to_vec(),
            _ => {
                let mut out = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(&sig::RSA_PKCS1_SHA256, &rng, m, &mut out)
                    .unwrap();
                out
            }
        })
    }
}

#[tokio::test]
async fn jwks_keys_of_each_kind_with_issuer_and_audience() {
    let dir = std::env::temp_dir().join(format!("oms-jwks-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).unwrap();
    let issuer = Issuer::new(&dir);
    let path = dir.join("jwks.json");
    std::fs::write(&path, issuer.jwks.to_string()).unwrap();
    let stack = Stack::start(&[]).await;
    let env = [
        ("OMS_JWT_PUBLIC_KEYS", path.to_str().unwrap()),
        ("OMS_JWT_ISSUER", "https://id.test"),
        ("OMS_JWT_AUDIENCE", "oms-api"),
    ];
    let gw = Gateway::start(&stack.server, &env).await;
    let good = json!({"sub": "ops", "roles": ["staff"], "aud": "oms-api", "iss": "https://id.test", "exp": now() + 600});
    let metrics = |token: String| {
        let gw = &gw;
        async move {
            gw.request_as(Some(&token), "GET", "/metrics", &[], None)
                .await
        }
    };
    for (alg, kid) in [("EdDSA", "ed"), ("ES256", "ec"), ("RS256", "rsa")] {
        let response = metrics(issuer.sign(alg, kid, &good)).await;
        assert_eq!(response.status, 200, "{alg}: {}", response.text());
    }
    let mut no_iss = good.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    let mut other_aud = good.clone();
    other_aud["aud"] = json!("oms");
    let mut other_iss = good.clone();
    other_iss["iss"] = json!("https://evil.test");
    for (token, why) in [
        (issuer.sign("EdDSA", "ed", &no_iss), "lacks the claim iss"),
        (issuer.sign("ES256", "ec", &other_aud), "audience"),
        (issuer.sign("RS256", "rsa", &other_iss), "issuer"),
        (issuer.sign("ES256", "rsa", &good), "signature"),
        (hs256(SECRET, &good), "algorithm"),
    ] {
        let problem = metrics(token).await.problem(401);
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{why}: {problem}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the gateway binary with exactly `env` (no test secret), expects
/// it to exit by itself, and returns its status and log.
async fn refused_start(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut vars = vec![
        (
            "GATEWAY_ADDR".to_string(),
            format!("127.0.0.1:{}", free_port()),
        ),
        ("NATS_URL".to_string(), "nats://127.0.0.1:1".to_string()),
        ("OMS_AUTH".to_string(), String::new()),
        ("OMS_JWT_SECRET".to_string(), String::new()),
        ("OMS_JWT_PUBLIC_KEYS".to_string(), String::new()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut proc = Proc::start("gateway", &vars);
    proc.may_exit();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = proc.exit_status() {
            return (status, proc.log());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway started: {env:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_gateway_does_not_start_without_a_key_or_with_a_malformed_setting() {
    let (status, log) = refused_start(&[]).await;
    assert!(!status.success());
    for name in ["OMS_JWT_SECRET", "OMS_JWT_PUBLIC_KEYS", "OMS_AUTH=off"] {
        assert!(log.contains(name), "{name} not named: {log}");
    }
    for (name, value) in [
        ("OMS_AUTH", "maybe"),
        ("OMS_JWT_SECRET", "too-short"),
        ("OMS_JWT_PUBLIC_KEYS", "/no/such/jwks.json"),
        ("GATEWAY_RATE_LIMIT", "lots"),
        ("GATEWAY_MAX_CONNECTIONS", "0"),
        ("GATEWAY_HEADER_TIMEOUT", "-1"),
        ("GATEWAY_IDLE_TIMEOUT", "forever"),
    ] {
        let mut env = vec![(name, value)];
        if !name.starts_with("OMS_JWT") {
            env.push(("OMS_JWT_SECRET", SECRET));
        }
        let (status, log) = refused_start(&env).await;
        assert!(
            !status.success() && log.contains(name),
            "{name}={value}: {log}"
        );
    }
}

#[tokio::test]
async fn with_auth_off_every_request_acts_as_staff() {
    let stack = Stack::start(&["inventory-get"]).await;
    let gw = Gateway::start(
        &stack.server,
        &[("OMS_AUTH", "off"), ("OMS_JWT_SECRET", "")],
    )
    .await;
    let ready = gw.request_as(None, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.json()["auth"], "off", "{}", ready.text());
    gw.proc
        .wait_for_line("OMS_AUTH=off", Duration::from_secs(5))
        .await;
    assert_eq!(
        gw.request_as(None, "GET", "/metrics", &[], None)
            .await
            .status,
        200
    );
    let product = gw
        .request_as(Some("garbage"), "GET", "/inventory/none", &[], None)
        .await;
    product.problem(404); // from the handler: served, not refused
    let on = Gateway::start(&stack.server, &[]).await;
    assert_eq!(on.get("/readyz").await.json()["auth"], "on");
}

#[tokio::test]
async fn client_oms_headers_are_dropped_and_the_principal_travels() {
    let stack = Stack::start(&[]).await;
    // A stand-in for inventory.check that answers with the headers it got.
    let mut sub = stack.client.subscribe("inventory.check").await.unwrap();
    let client = stack.client.clone();
    let echo = tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            let headers: serde_json::Map<String, Value> = message
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .map(|(k, v)| {
                    (
                        k.to_string().to_ascii_lowercase(),
                        json!(v.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
                    )
                })
                .collect();
            let reply = message.reply.unwrap();
            client
                .publish(reply, Value::Object(headers).to_string().into())
                .await
                .unwrap();
        }
    });
    stack.client.flush().await.unwrap();
    let gw = Gateway::start(&stack.server, &[]).await;
    let forged = [
        ("Content-Type", "application/json"),
        ("Oms-Principal", "staff-1"),
        ("Oms-Roles", "staff"),
        ("oms-anything", "x"),
    ];
    let body = br#"{"items":[{"productId":"p","quantity":1}]}"#;
    let alice = token("alice", &["customer"]);
    let seen = gw
        .request_as(
            Some(&alice),
            "POST",
            "/inventory/check",
            &forged,
            Some(body),
        )
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text());
    let oms: Vec<(String, Value)> = seen
        .json()
        .as_object()
        .unwrap()
        .iter()
        // The gateway's own deadline travels too.
        .filter(|(k, _)| k.starts_with("oms-") && *k != "oms-deadline")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let deadline = &seen.json()["oms-deadline"][0];
    assert!(
        deadline.as_str().is_some_and(|d| d.parse::<u64>().is_ok()),
        "{deadline}"
    );
    assert_eq!(
        oms,
        vec![
            ("oms-principal".into(), json!(["alice"])),
            ("oms-roles".into(), json!(["customer"]))
        ]
    );
    let staff = gw
        .request_as(
            Some(&token("ops", &["staff", "customer"])),
            "POST",
            "/inventory/check",
            &forged,
            Some(body),
        )
        .await;
    assert_eq!(staff.json()["oms-roles"], json!(["staff,customer"]));
    assert_eq!(staff.json()["oms-principal"], json!(["ops"]));

    // The forged headers gain nothing.
    let add = br#"{"productId":"p","quantity":1,"price":1}"#;
    gw.request_as(Some(&alice), "POST", "/inventory", &forged, Some(add))
        .await
        .problem(403);
    gw.request_as(Some(&alice), "GET", "/metrics", &forged[1..], None)
        .await
        .problem(403);
    gw.request_as(None, "GET", "/metrics", &forged[1..], None)
        .await
        .problem(401);

    // With auth off there is no principal, and none can be forged (only
    // the gateway's deadline is sent).
    let off = Gateway::start(&stack.server, &[("OMS_AUTH", "off")]).await;
    let seen = off
        .request_as(None, "POST", "/inventory/check", &forged, Some(body))
        .await;
    assert!(
        seen.json()
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("oms-") || k == "oms-deadline"),
        "{}",
        seen.text()
    );
    echo.abort();
}
