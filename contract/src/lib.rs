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
pub mod operations;
pub mod orders;
pub mod schemas;
pub mod status;

pub use inventory::*;
pub use money::Cents;
pub use operation::{Answer, Kind, Operation, Route, Spec};
pub use operations::*;
pub use orders::*;
pub use status::{Status, Transition};

use serde::{Deserialize, Serialize};

/// A page of a list: up to `limit` values, and where the next page starts
/// when there is one (pass it back as `cursor`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
