//! `GET /openapi.json`: an OpenAPI 3.1 document generated from the route
//! table and the schema texts of the contract, so it cannot drift from what
//! the gateway and the handlers actually do.
//!
//! OpenAPI 3.1 speaks JSON Schema 2020-12, the dialect of `schemas/`, so the
//! schema files go into `components.schemas` as they are. A route's path
//! parameters (and, for a GET, its query parameters) are the request
//! schema's properties of those names; a write's body schema is the request
//! schema without the path parameters. Every route needs a bearer token
//! except those [`Access::Open`] (their `security` is empty); which role
//! may call it is in the README, not in the document.

use crate::endpoint::Endpoint;
use crate::policy::Access;
use crate::routes::{Route, Table, Target};
use oms_runtime::contract::problem_schema;
use serde_json::{json, Map, Value};

pub fn document(table: &Table) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Problem".into(),
        serde_json::from_str(problem_schema()).expect("problem schema is JSON"),
    );
    for route in table.routes() {
        let operation = match &route.target {
            Target::Operation(_) => operation(route, &mut schemas),
            Target::Health => builtin(
                "Liveness: the process answers HTTP",
                "application/json",
                json!({"type": "object"}),
            ),
            Target::Ready => {
                let mut op = builtin(
                    "Readiness: NATS is connected and every service answers $SRV.PING",
                    "application/json",
                    json!({"type": "object"}),
                );
                op["responses"]["503"] = problem_ref();
                op
            }
            Target::Metrics => builtin(
                "Prometheus text format",
                "text/plain",
                json!({"type": "string"}),
            ),
            Target::OpenApi => builtin(
                "This document",
                "application/json",
                json!({"type": "object"}),
            ),
        };
        let mut operation = operation;
        if route.access == Access::Open {
            operation["security"] = json!([]);
        } else {
            for status in ["401", "403", "429"] {
                operation["responses"][status] = problem_ref();
            }
        }
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "OMS REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Order and inventory management. Every route is one NATS operation (x-nats-subject); the same JSON works with `nats req`. Errors are RFC 9457 problems.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "schemas": schemas,
            "responses": {
                "Problem": {
                    "description": "An RFC 9457 problem; errors[].pointer names the bad field",
                    "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                },
            },
            "headers": {
                "X-Request-Id": {
                    "description": "The request's id (the one sent, or a generated one)",
                    "schema": {"type": "string"},
                },
            },
        },
    })
}

fn operation(route: &Route, schemas: &mut Map<String, Value>) -> Value {
    let Target::Operation(endpoint) = &route.target else {
        unreachable!("called for operation routes only")
    };
    let path_params: Vec<&str> = route.param_names().collect();
    let subject = &endpoint.subject;
    let response_name = format!("{subject}.response");
    schemas.insert(response_name.clone(), endpoint.rest_response_schema());
    let mut op = json!({
        "operationId": endpoint.op.service,
        "summary": endpoint.op.description,
        "tags": [endpoint.op.group],
        "x-nats-subject": subject,
        "parameters": parameters(endpoint, &path_params),
        "responses": responses(endpoint, &response_name, !path_params.is_empty()),
    });
    if endpoint.has_body {
        let request_name = format!("{subject}.request");
        schemas.insert(request_name.clone(), body_schema(endpoint, &path_params));
        op["requestBody"] = json!({
            "required": path_params.is_empty(),
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{request_name}")}}},
        });
        op["responses"]["413"] = problem_ref();
        op["responses"]["415"] = problem_ref();
    }
    op
}

/// Path fields, then query fields (a body-less route), then headers.
fn parameters(endpoint: &Endpoint, path_params: &[&str]) -> Vec<Value> {
    let property = |name: &str| {
        endpoint
            .fields
            .get(name)
            .cloned()
            .unwrap_or(json!({"type": "string"}))
    };
    let required: Vec<&str> = endpoint.request_schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": property(name)}))
        .collect();
    if !endpoint.has_body {
        for name in endpoint
            .fields
            .keys()
            .filter(|n| !path_params.contains(&n.as_str()))
        {
            parameters.push(json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": property(name),
            }));
        }
    }
    if let Some(field) = endpoint.idempotency_field.filter(|_| endpoint.has_body) {
        parameters.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": format!("Sent to the operation as the body field `{field}`: a retry with the same key is applied once"),
            "schema": property(field),
        }));
    }
    if endpoint.conditional {
        parameters.push(json!({
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "The ETag the change was decided on (`\"<revision>\"`), sent to the operation as `expectedRevision`: another revision is a 412 and nothing changes",
            "schema": {"type": "string"},
        }));
    }
    for (name, description) in [
        ("X-Request-Id", "Travels to the handler as a NATS header and appears in its logs; generated when absent"),
        ("traceparent", "W3C trace context, forwarded to the handler"),
    ] {
        parameters.push(json!({"name": name, "in": "header", "required": false, "description": description, "schema": {"type": "string"}}));
    }
    parameters
}

fn responses(endpoint: &Endpoint, response_name: &str, names_a_resource: bool) -> Value {
    let mut headers = json!({"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}});
    if endpoint.paged {
        headers["Link"] = json!({"description": "`<...>; rel=\"next\"` while more pages exist", "schema": {"type": "string"}});
    }
    if endpoint.tagged && !endpoint.paged {
        headers["ETag"] = json!({"description": "`\"<revision>\"`: the KV revision of what the body shows (also its `revision`)", "schema": {"type": "string"}});
    }
    if endpoint.location.is_some() {
        headers["Location"] = json!({"description": "Where the created resource is read", "schema": {"type": "string"}});
    }
    let mut responses = json!({
        endpoint.status.as_str(): {
            "description": endpoint.op.description,
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{response_name}")}}},
        },
        "400": problem_ref(),
        "503": problem_ref(),
        "504": problem_ref(),
        "default": problem_ref(),
    });
    if names_a_resource {
        responses["404"] = problem_ref();
    }
    if endpoint.conditional {
        responses["412"] = problem_ref();
    }
    responses
}

/// The request schema without the fields the path carries.
fn body_schema(endpoint: &Endpoint, path_params: &[&str]) -> Value {
    let mut schema = endpoint.request_schema.clone();
    for name in path_params {
        if let Some(properties) = schema["properties"].as_object_mut() {
            properties.remove(*name);
        }
        if let Some(required) = schema["required"].as_array_mut() {
            required.retain(|r| r != name);
        }
    }
    schema
}

fn builtin(summary: &str, content_type: &str, schema: Value) -> Value {
    json!({
        "summary": summary,
        "tags": ["gateway"],
        "responses": {"200": {"description": summary, "content": {content_type: {"schema": schema}}}},
    })
}

fn problem_ref() -> Value {
    json!({"$ref": "#/components/responses/Problem"})
}
