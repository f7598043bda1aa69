//! What the gateway needs to know about one operation's REST route, read off
//! the contract table and the operation's JSON Schemas once at start.
//!
//! Nothing here is written per route: a route that takes a query parameter,
//! answers with a page, or honours `Idempotency-Key` does so because its
//! schema says so. A new operation in the table (`contract/src/operations.rs`) is a new route.

use hyper::StatusCode;
use oms_runtime::contract::Spec;
use serde_json::{Map, Value};

/// The JSON type a request field has, so a query string value (always text)
/// can be sent as the number or boolean the schema expects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Integer,
    Number,
    Boolean,
    Text,
}

#[derive(Debug)]
pub struct Endpoint {
    pub op: &'static Spec,
    /// `group.endpoint`, built once.
    pub subject: String,
    /// Status of a successful answer.
    pub status: StatusCode,
    /// Whether the request has a body (POST/PUT) or only parameters (GET).
    pub has_body: bool,
    /// The request schema's fields and their types.
    pub fields: Map<String, Value>,
    /// The body field `Idempotency-Key` fills: `idempotencyKey`, or
    /// `requestId` for operations that call their retry token that.
    pub idempotency_field: Option<&'static str>,
    /// The request takes `expectedRevision`, which `If-Match` fills.
    pub conditional: bool,
    /// The reply carries the `revision` of what it shows: its `ETag`.
    pub tagged: bool,
    /// The reply is a page `{items, nextCursor?}`: REST answers the bare
    /// array and a `Link: rel="next"` header.
    pub paged: bool,
    /// For a create: where the new resource can be read, e.g. `/orders/` +
    /// the reply's `id`. Filled in by the route table, which knows the GETs.
    pub location: Option<Location>,
    pub request_schema: Value,
    pub response_schema: Value,
}

/// The request field `If-Match` becomes.
pub const EXPECTED_REVISION: &str = "expectedRevision";

/// `Location: {prefix}{reply[field]}`.
#[derive(Debug, Clone)]
pub struct Location {
    pub prefix: String,
    pub field: String,
}

impl Endpoint {
    /// `None` for operations without a REST route (internal ones).
    pub fn new(op: &'static Spec) -> Option<Endpoint> {
        let route = op.route?;
        let request_schema = parse_schema(op.service, op.request_schema());
        let response_schema = parse_schema(op.service, op.response_schema());
        let fields = request_schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let idempotency_field = ["idempotencyKey", "requestId"]
            .into_iter()
            .find(|name| fields.contains_key(*name));
        let conditional = fields.contains_key(EXPECTED_REVISION);
        let tagged = response_schema["properties"]["revision"].is_object();
        let paged = response_schema["properties"]["nextCursor"].is_object()
            && response_schema["properties"]["items"]["type"] == "array";
        Some(Endpoint {
            op,
            subject: op.subject(),
            status: StatusCode::from_u16(route.status).expect("contract status is valid"),
            has_body: !matches!(route.method, "GET" | "HEAD" | "DELETE"),
            fields,
            idempotency_field,
            conditional,
            tagged,
            paged,
            location: None,
            request_schema,
            response_schema,
        })
    }

    /// The type the request schema declares for `name` (text when unknown:
    /// the handler then rejects the field precisely).
    pub fn kind(&self, name: &str) -> Kind {
        let declared = &self.fields.get(name).unwrap_or(&Value::Null)["type"];
        let has = |t: &str| {
            declared == t
                || declared
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == t))
        };
        if has("integer") {
            Kind::Integer
        } else if has("number") {
            Kind::Number
        } else if has("boolean") {
            Kind::Boolean
        } else {
            Kind::Text
        }
    }

    /// The schema of the REST body of a successful answer: the items array
    /// for a page, the reply itself otherwise.
    pub fn rest_response_schema(&self) -> Value {
        if self.paged {
            self.response_schema["properties"]["items"].clone()
        } else {
            self.response_schema.clone()
        }
    }
}

/// The schemas are compiled into the binary; one that does not parse is a
/// build defect, found by the first test that starts the gateway.
fn parse_schema(service: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{service}: schema is not JSON: {err}"))
}

/// A query value as the JSON the schema wants. A value that does not parse
/// as its type stays text, so the handler's schema check names the field.
pub fn typed(kind: Kind, text: &str) -> Value {
    let parsed = match kind {
        Kind::Integer => text.parse::<i64>().ok().map(Value::from),
        Kind::Number => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from),
        Kind::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Kind::Text => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_runtime::contract;

    #[test]
    fn facts_come_from_the_schemas() {
        let list = Endpoint::new(&contract::INVENTORY_LIST).unwrap();
        assert!(list.paged && !list.has_body);
        assert_eq!(list.kind("limit"), Kind::Integer);
        assert_eq!(list.kind("cursor"), Kind::Text);
        assert_eq!(list.kind("unknown"), Kind::Text);
        assert_eq!(list.rest_response_schema()["type"], "array");

        let create = Endpoint::new(&contract::ORDERS_CREATE).unwrap();
        assert_eq!(create.idempotency_field, Some("idempotencyKey"));
        assert_eq!(create.status, StatusCode::CREATED);
        assert!(create.has_body && !create.paged);

        let status = Endpoint::new(&contract::ORDERS_UPDATE_STATUS).unwrap();
        assert!(status.conditional && status.tagged);
        assert!(!list.conditional && !list.tagged);

        let add = Endpoint::new(&contract::INVENTORY_ADD_STOCK).unwrap();
        assert_eq!(add.idempotency_field, Some("requestId"));
        assert!(Endpoint::new(&contract::INVENTORY_RESERVE).is_none());
    }

    #[test]
    fn query_values_take_the_declared_type() {
        assert_eq!(typed(Kind::Integer, "5"), Value::from(5));
        assert_eq!(typed(Kind::Integer, "five"), Value::from("five"));
        assert_eq!(typed(Kind::Integer, "1.5"), Value::from("1.5"));
        assert_eq!(typed(Kind::Number, "1.5"), Value::from(1.5));
        assert_eq!(typed(Kind::Number, "NaN"), Value::from("NaN"));
        assert_eq!(typed(Kind::Boolean, "true"), Value::Bool(true));
        assert_eq!(typed(Kind::Text, "5"), Value::from("5"));
    }
}
