//! What an operation is: one NATS service with one endpoint, maybe a REST
//! route, the JSON Schemas of its request and reply — and, in the type, the
//! Rust request and reply it carries, so a handler and a caller of it cannot
//! disagree on the shape without the compiler saying so.

use std::marker::PhantomData;

/// How an operation is reached over REST.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// `{name}` segments become fields of the request payload.
    pub path: &'static str,
    /// Status of a successful answer.
    pub status: u16,
}

/// A REST route (for the table's entries).
pub const fn route(method: &'static str, path: &'static str, status: u16) -> Option<Route> {
    Some(Route {
        method,
        path,
        status,
    })
}

/// Whether an operation changes state: a read may be retried freely and
/// answered by any instance; a write is idempotent only where it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

/// An operation without its Rust types: what registration, routing,
/// permissions and OpenAPI need.
#[derive(Debug)]
pub struct Spec {
    /// Service name, binary name and queue group.
    pub service: &'static str,
    /// Subject = `group.endpoint`; endpoint names may not contain dots.
    pub group: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    pub route: Option<Route>,
    /// The request's schema, a file in `schemas/`.
    pub request_schema_file: &'static str,
    /// The successful reply's schema, a file in `schemas/`.
    pub response_schema_file: &'static str,
}

impl Spec {
    pub fn subject(&self) -> String {
        format!("{}.{}", self.group, self.endpoint)
    }

    /// The request's JSON Schema, bundled (no `$ref` left).
    pub fn request_schema(&self) -> &'static str {
        crate::schemas::schema(self.request_schema_file)
    }

    /// The successful reply's JSON Schema, bundled.
    pub fn response_schema(&self) -> &'static str {
        crate::schemas::schema(self.response_schema_file)
    }
}

/// An operation whose request is `Req` and whose successful reply is `Resp`.
pub struct Operation<Req, Resp> {
    pub spec: Spec,
    types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Operation<Req, Resp> {
    pub const fn new(spec: Spec) -> Self {
        Operation {
            spec,
            types: PhantomData,
        }
    }
}

impl<Req, Resp> std::ops::Deref for Operation<Req, Resp> {
    type Target = Spec;
    fn deref(&self) -> &Spec {
        &self.spec
    }
}

/// What a handler may answer for an operation whose reply is `Resp`: `Resp`
/// itself, or a type that serializes to the same JSON (a list page copied
/// from stored JSON without parsing it, for one).
pub trait Answer<Resp>: serde::Serialize {}

impl<T: serde::Serialize> Answer<T> for T {}
