//! The contract of the OMS operations in one place: what each operation is
//! called on NATS and over REST, the JSON Schemas that say what a field may
//! hold, and the Rust types of every request and reply.
//!
//! A field is added in three places: its type here, its schema in
//! `schemas/` (shared definitions once, in `defs.json`), and the handler that
//! fills it. The
//! conformance test (`gateway/tests/conformance.rs`) drives every
//! operation and checks each reply against the schema its service
//! publishes, so types and schemas cannot drift apart unnoticed.

pub mod inventory;
pub mod money;
pub mod operation;
pub mod orders;
pub mod schemas;
pub mod status;

pub use inventory::*;
pub use money::Cents;
pub use operation::{Answer, Kind, Operation, Route, Spec};
pub use orders::*;
pub use status::{Status, Transition};

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Every request/reply operation: the inventory's, then the orders'. Each
/// is defined beside its request and reply types (`inventory.rs`,
/// `orders.rs`); the handlers register from it, the gateway routes from
/// it, OpenAPI and the NATS permissions are made from it, the tests and
/// the bench drive it.
pub static OPERATIONS: LazyLock<Vec<&'static Spec>> =
    LazyLock::new(|| INVENTORY.iter().chain(ORDERS).copied().collect());

/// The problem body every error reply carries (bundled JSON Schema).
pub fn problem_schema() -> &'static str {
    crate::schemas::schema("problem.json")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_names_schemas_that_exist() {
        for op in super::OPERATIONS.iter() {
            for text in [op.request_schema(), op.response_schema()] {
                let schema: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(schema["type"], "object", "{}", op.service);
            }
        }
    }
}

/// A page of a list: up to `limit` values, and where the next page starts
/// when there is one (pass it back as `cursor`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
