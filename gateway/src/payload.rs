//! REST request -> NATS payload: path parameters, query parameters and the
//! `Idempotency-Key` header become fields of one JSON object, the body's
//! own fields around them.
//!
//! The gateway does not validate what it forwards: the handler checks the
//! payload against the operation's schema and names the bad field, so REST
//! and `nats req` get the same precise answer. The gateway only refuses what
//! it cannot turn into a payload (a parameter that is not UTF-8, one field
//! given two different values), and what [`Rules`] forbid the caller.

use crate::endpoint::{typed, Endpoint, EXPECTED_REVISION};
use crate::{auth, url};
use bytes::Bytes;
use oms_runtime::Problem;
use serde_json::{Map, Value};

/// What the request carried besides its route.
pub struct Parts<'a> {
    pub params: &'a [(&'static str, &'a str)],
    pub query: Option<&'a str>,
    pub body: Option<Bytes>,
    pub idempotency_key: Option<&'a str>,
    /// From `If-Match` (see [`if_match`]).
    pub expected_revision: Option<u64>,
    pub rules: Rules<'a>,
}

/// What the caller's role holds the payload to (see `policy`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Rules<'a> {
    /// This field must be absent (it is then set) or equal; else 403.
    pub owner: Option<(&'static str, &'a str)>,
}

pub fn build(endpoint: &Endpoint, parts: Parts<'_>) -> Result<Bytes, Problem> {
    let mut extra: Vec<(String, Value)> = Vec::new();
    for (name, raw) in parts.params {
        let value = url::decode(raw, false).ok_or_else(|| {
            Problem::invalid_field(
                pointer(name),
                "the path segment is not valid percent-encoded UTF-8",
            )
        })?;
        extra.push((name.to_string(), Value::String(value)));
    }
    if let Some(query) = parts.query {
        let pairs = url::parse_query(query).ok_or_else(|| {
            Problem::invalid_field("", "the query string is not valid percent-encoded UTF-8")
        })?;
        for (name, text) in pairs {
            let value = typed(endpoint.kind(&name), &text);
            extra.push((name, value));
        }
    }
    if let (Some(field), Some(key)) = (endpoint.idempotency_field, parts.idempotency_key) {
        extra.push((field.to_string(), Value::String(key.to_string())));
    }
    if let Some(revision) = parts.expected_revision.filter(|_| endpoint.conditional) {
        extra.push((EXPECTED_REVISION.to_string(), Value::from(revision)));
    }

    let rules = parts.rules;
    let body = parts.body.unwrap_or_default();
    let mut object = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else if extra.is_empty() && rules.owner.is_none() {
        // Nothing to add: the bytes go through untouched.
        return Ok(body);
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(object)) => object,
            // Not an object (or not JSON): forward as is, and let the
            // handler's parse report it exactly as it would over NATS
            // (it takes only objects, so no rule can be dodged this way).
            _ => return Ok(body),
        }
    };
    for (name, value) in extra {
        insert(&mut object, name, value)?;
    }
    if let Some((field, sub)) = rules.owner {
        match object.get(field) {
            None => {
                object.insert(field.to_string(), Value::String(sub.to_string()));
            }
            Some(given) if given.as_str() == Some(sub) => {}
            Some(_) => {
                return Err(auth::forbidden(format!(
                    "a customer may only name itself as {field} ({sub})"
                )))
            }
        }
    }
    // The key goes on as the client sent it: the handler scopes it by the
    // principal the gateway names in `Oms-Principal`.
    if let Some(field) = endpoint.idempotency_field {
        if let Some(Value::String(key)) = object.get(field) {
            if !valid_key(key) {
                return Err(Problem::invalid_field(
                    pointer(field),
                    format!("{field} must match {KEY_PATTERN}"),
                ));
            }
        }
    }
    Ok(Bytes::from(Value::Object(object).to_string()))
}

/// `If-Match` (RFC 9110 §13.1.1) as the `expectedRevision` it asks for.
/// The gateway's entity tags are strong, `"<revision>"`: `*` asks for
/// nothing (`None`); a tag that can never match — weak (`W/"..."`, which
/// a strong comparison never matches) or not a revision — is a 412 at
/// once, as RFC 9110 asks; several different revisions cannot be sent on
/// as one `expectedRevision` (400); an unparsable header is a 400.
pub fn if_match(value: Option<&str>) -> Result<Option<u64>, Problem> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value == "*" {
        return Ok(None);
    }
    let malformed = || {
        Problem::invalid_field(
            format!("/{EXPECTED_REVISION}"),
            "If-Match must be \"*\" or a list of quoted entity tags",
        )
    };
    let mut revisions = Vec::new();
    for tag in value.split(',').map(str::trim) {
        let (weak, quoted) = match tag.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let opaque = quoted
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.contains('"'))
            .ok_or_else(malformed)?;
        match opaque.parse::<u64>() {
            Ok(revision) if !weak && revision > 0 => revisions.push(revision),
            _ => {}
        }
    }
    revisions.dedup();
    match revisions.as_slice() {
        [] => Err(Problem::precondition_failed(format!(
            "If-Match {value} names no current revision"
        ))),
        [one] => Ok(Some(*one)),
        _ => Err(Problem::invalid_field(
            format!("/{EXPECTED_REVISION}"),
            "If-Match may name one revision only",
        )),
    }
}

/// The schemas' pattern for idempotency keys and request ids.
pub const KEY_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";

/// [`KEY_PATTERN`], checked by the gateway on a key it merges (a body
/// passed through untouched gets the same 400 from the handler's schema).
pub fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// Adds a field; the same field twice is fine only with the same value
/// (`PUT /orders/o-1/status` with `{"id":"o-2"}` is ambiguous, so a 400).
fn insert(object: &mut Map<String, Value>, name: String, value: Value) -> Result<(), Problem> {
    match object.get(&name) {
        Some(existing) if *existing != value => Err(Problem::invalid_field(
            pointer(&name),
            format!("{name} is given twice with different values (path, query, header or body)"),
        )),
        _ => {
            object.insert(name, value);
            Ok(())
        }
    }
}

/// The JSON Pointer of a top-level field (RFC 6901 escapes).
fn pointer(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_runtime::contract;
    use serde_json::json;

    fn run(op: &'static oms_runtime::Spec, parts: Parts<'_>) -> Result<Value, Problem> {
        let endpoint = Endpoint::new(op).unwrap();
        build(&endpoint, parts).map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    fn parts<'a>(
        params: &'a [(&'static str, &'a str)],
        query: Option<&'a str>,
        body: &str,
    ) -> Parts<'a> {
        Parts {
            params,
            query,
            body: Some(Bytes::from(body.to_string())),
            idempotency_key: None,
            expected_revision: None,
            rules: Rules::default(),
        }
    }

    #[test]
    fn get_payload_is_params_and_typed_query() {
        let got = run(
            &contract::INVENTORY_GET,
            parts(&[("productId", "SKU%2D1")], None, ""),
        )
        .unwrap();
        assert_eq!(got, json!({"productId": "SKU-1"}));
        let list = run(
            &contract::ORDERS_LIST,
            parts(&[], Some("limit=5&status=PENDING&cursor=a%20b"), ""),
        )
        .unwrap();
        assert_eq!(
            list,
            json!({"limit": 5, "status": "PENDING", "cursor": "a b"})
        );
        let bad = run(&contract::INVENTORY_LIST, parts(&[], Some("limit=ten"), "")).unwrap();
        assert_eq!(
            bad,
            json!({"limit": "ten"}),
            "left for the handler to reject"
        );
    }

    #[test]
    fn body_is_untouched_unless_something_is_merged() {
        let endpoint = Endpoint::new(&contract::INVENTORY_ADD_STOCK).unwrap();
        let raw = r#"{"productId":"a",  "quantity":1,"price":1.10}"#;
        let out = build(&endpoint, parts(&[], None, raw)).unwrap();
        assert_eq!(out, raw.as_bytes(), "byte for byte");
        let garbage = build(&endpoint, parts(&[("x", "y")], None, "{nope")).unwrap();
        assert_eq!(garbage, "{nope".as_bytes());
    }

    #[test]
    fn params_and_key_merge_into_the_body() {
        let got = run(
            &contract::ORDERS_UPDATE_STATUS,
            parts(&[("id", "o-1")], None, r#"{"status":"CONFIRMED"}"#),
        )
        .unwrap();
        assert_eq!(got, json!({"id": "o-1", "status": "CONFIRMED"}));
        let empty = run(
            &contract::ORDERS_UPDATE_STATUS,
            parts(&[("id", "o-1")], None, ""),
        )
        .unwrap();
        assert_eq!(empty, json!({"id": "o-1"}));
        let same = run(
            &contract::ORDERS_UPDATE_STATUS,
            parts(&[("id", "o-1")], None, r#"{"id":"o-1"}"#),
        )
        .unwrap();
        assert_eq!(same, json!({"id": "o-1"}));
        let clash = run(
            &contract::ORDERS_UPDATE_STATUS,
            parts(&[("id", "o-1")], None, r#"{"id":"o-2"}"#),
        )
        .unwrap_err();
        assert_eq!(
            (clash.status, clash.errors[0].pointer.as_str()),
            (400, "/id")
        );

        let mut with_key = parts(&[], None, r#"{"customerId":"c"}"#);
        with_key.idempotency_key = Some("k-1");
        let got = run(&contract::ORDERS_CREATE, with_key).unwrap();
        assert_eq!(got, json!({"customerId": "c", "idempotencyKey": "k-1"}));
    }

    #[test]
    fn rules_fill_and_check_and_keys_pass_as_sent() {
        let owner = Rules {
            owner: Some(("customerId", "c-1")),
        };
        let mut own = parts(&[], None, r#"{"items":[]}"#);
        own.rules = owner;
        let got = run(&contract::ORDERS_CREATE, own).unwrap();
        assert_eq!(got, json!({"customerId": "c-1", "items": []}));
        let mut other = parts(&[], None, r#"{"customerId":"c-2"}"#);
        other.rules = owner;
        assert_eq!(
            run(&contract::ORDERS_CREATE, other).unwrap_err().status,
            403
        );
        let mut listed = parts(&[], Some("customerId=c-2"), "");
        listed.rules = owner;
        assert_eq!(run(&contract::ORDERS_LIST, listed).unwrap_err().status, 403);

        // A key goes on as sent (the handler scopes it by the principal),
        // checked against the pattern when the gateway merges it.
        for (header, body) in [
            (Some("k-1"), r#"{"customerId":"c"}"#),
            (None, r#"{"customerId":"c","idempotencyKey":"k-1"}"#),
        ] {
            let mut p = parts(&[], None, body);
            p.idempotency_key = header;
            let got = run(&contract::ORDERS_CREATE, p).unwrap();
            assert_eq!(got["idempotencyKey"], "k-1");
        }
        let mut bad = parts(&[], None, r#"{"customerId":"c"}"#);
        bad.idempotency_key = Some("no spaces");
        let err = run(&contract::ORDERS_CREATE, bad).unwrap_err();
        assert_eq!(
            (err.status, err.errors[0].pointer.as_str()),
            (400, "/idempotencyKey")
        );
        assert!(valid_key("a") && valid_key(&"a".repeat(64)) && !valid_key(&"a".repeat(65)));
        assert!(!valid_key("-a") && !valid_key("") && !valid_key("a.b"));
    }

    #[test]
    fn if_match_becomes_expected_revision() {
        assert_eq!(if_match(None).unwrap(), None);
        assert_eq!(if_match(Some("*")).unwrap(), None);
        assert_eq!(if_match(Some("\"12\"")).unwrap(), Some(12));
        assert_eq!(if_match(Some(" \"12\", \"12\"")).unwrap(), Some(12));
        assert_eq!(if_match(Some("W/\"12\", \"13\"")).unwrap(), Some(13));
        assert_eq!(if_match(Some("W/\"12\"")).unwrap_err().status, 412);
        assert_eq!(if_match(Some("\"abc\"")).unwrap_err().status, 412);
        assert_eq!(if_match(Some("\"1\", \"2\"")).unwrap_err().status, 400);
        assert_eq!(if_match(Some("12")).unwrap_err().status, 400);
        let mut with = parts(&[("id", "o-1")], None, r#"{"status":"CANCELLED"}"#);
        with.expected_revision = Some(7);
        let got = run(&contract::ORDERS_UPDATE_STATUS, with).unwrap();
        assert_eq!(
            got,
            json!({"id": "o-1", "status": "CANCELLED", "expectedRevision": 7})
        );
        let mut clash = parts(&[("id", "o-1")], None, r#"{"expectedRevision":8}"#);
        clash.expected_revision = Some(7);
        let err = run(&contract::ORDERS_UPDATE_STATUS, clash).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/expectedRevision");
    }

    #[test]
    fn undecodable_parameters_are_a_400() {
        let err = run(
            &contract::INVENTORY_GET,
            parts(&[("productId", "%FF")], None, ""),
        )
        .unwrap_err();
        assert_eq!(
            (err.status, err.errors[0].pointer.as_str()),
            (400, "/productId")
        );
        let err = run(
            &contract::INVENTORY_LIST,
            parts(&[], Some("cursor=%zz"), ""),
        )
        .unwrap_err();
        assert_eq!(err.status, 400);
    }
}
