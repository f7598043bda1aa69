//! The route table: one row per operation with a REST route in
//! `oms_runtime::contract::OPERATIONS`, plus the gateway's own four
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`).
//!
//! Matching is by segments: a `{name}` segment matches any one non-empty
//! segment and becomes the field `name` of the payload. When several rows
//! match a path, the one with the most literal segments wins, so
//! `POST /inventory/check` is the check and `GET /inventory/check` is the
//! product called "check". A path that matches only under other methods is
//! a 405 whose `Allow` lists them.

use crate::endpoint::{Endpoint, Location};
use crate::policy::{self, Access};
use hyper::Method;
use oms_runtime::contract::OPERATIONS;

/// What a row does.
#[derive(Debug)]
pub enum Target {
    /// Forward to the operation's NATS subject.
    Operation(Endpoint),
    Health,
    Ready,
    Metrics,
    OpenApi,
}

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// The template as written in the contract, e.g. `/orders/{id}/status`;
    /// also the `route` label of the metrics.
    pub path: &'static str,
    segments: Vec<Segment>,
    pub target: Target,
    /// Who may use it.
    pub access: Access,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

/// A path parameter as it appeared in the URL (still percent-encoded).
pub type Params<'p> = Vec<(&'static str, &'p str)>;

pub enum Lookup<'t, 'p> {
    Found(&'t Route, Params<'p>),
    /// The path exists under these methods only.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

#[derive(Debug)]
pub struct Table {
    routes: Vec<Route>,
}

impl Table {
    /// The table every gateway serves.
    pub fn from_contract() -> Table {
        let mut routes: Vec<Route> = OPERATIONS
            .iter()
            .filter_map(|op| {
                let route = op.route?;
                let method = Method::from_bytes(route.method.as_bytes()).expect("contract method");
                Some(Route::new(
                    method,
                    route.path,
                    Target::Operation(Endpoint::new(op)?),
                ))
            })
            .collect();
        for (path, target) in [
            ("/healthz", Target::Health),
            ("/readyz", Target::Ready),
            ("/metrics", Target::Metrics),
            ("/openapi.json", Target::OpenApi),
        ] {
            routes.push(Route::new(Method::GET, path, target));
        }
        link_locations(&mut routes);
        Table { routes }
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    pub fn endpoints(&self) -> impl Iterator<Item = (&Route, &Endpoint)> {
        self.routes.iter().filter_map(|r| match &r.target {
            Target::Operation(e) => Some((r, e)),
            _ => None,
        })
    }

    pub fn find<'t, 'p>(&'t self, method: &Method, path: &'p str) -> Lookup<'t, 'p> {
        let Some(rest) = path.strip_prefix('/') else {
            return Lookup::NotFound;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let mut best: Option<(&Route, Params<'p>)> = None;
        let mut allowed: Vec<Method> = Vec::new();
        for route in &self.routes {
            let Some(params) = route.matches(&segments) else {
                continue;
            };
            if route.method != *method {
                if !allowed.contains(&route.method) {
                    allowed.push(route.method.clone());
                }
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(b, _)| route.literals() > b.literals())
            {
                best = Some((route, params));
            }
        }
        match best {
            Some((route, params)) => Lookup::Found(route, params),
            None if !allowed.is_empty() => {
                allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                Lookup::MethodNotAllowed(allowed)
            }
            None => Lookup::NotFound,
        }
    }
}

impl Route {
    fn new(method: Method, path: &'static str, target: Target) -> Route {
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name),
                    None => Segment::Literal(s),
                },
            )
            .collect();
        let access = match &target {
            Target::Operation(endpoint) => policy::for_operation(endpoint.op),
            Target::Metrics => Access::Staff,
            Target::Health | Target::Ready | Target::OpenApi => Access::Open,
        };
        Route {
            method,
            path,
            segments,
            target,
            access,
        }
    }

    /// The `{name}`s of the template, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(*name),
            Segment::Literal(_) => None,
        })
    }

    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    fn matches<'p>(&self, segments: &[&'p str]) -> Option<Params<'p>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (pattern, actual) in self.segments.iter().zip(segments) {
            match pattern {
                Segment::Literal(literal) if literal == actual => {}
                Segment::Param(name) if !actual.is_empty() => params.push((*name, *actual)),
                _ => return None,
            }
        }
        Some(params)
    }
}

/// A create (`201`) whose path plus one `{param}` is a GET route reads back
/// at that GET: `POST /orders` -> `/orders/{id}`, with `id` from the reply.
fn link_locations(routes: &mut [Route]) {
    let gets: Vec<(String, &'static str)> = routes
        .iter()
        .filter(|r| r.method == Method::GET)
        .filter_map(|r| match r.segments.last() {
            Some(Segment::Param(name)) if r.segments.len() > 1 => {
                let parent = r.path.rsplit_once('/').map(|(p, _)| p.to_string())?;
                Some((parent, *name))
            }
            _ => None,
        })
        .collect();
    for route in routes.iter_mut() {
        let path = route.path;
        if let Target::Operation(endpoint) = &mut route.target {
            if endpoint.status != hyper::StatusCode::CREATED {
                continue;
            }
            if let Some((_, field)) = gets.iter().find(|(parent, _)| parent == path) {
                endpoint.location = Some(Location {
                    prefix: format!("{path}/"),
                    field: field.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(table: &Table, method: Method, path: &str) -> (&'static str, Vec<(String, String)>) {
        match table.find(&method, path) {
            Lookup::Found(route, params) => (
                route.path,
                params
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            _ => panic!("{method} {path} not found"),
        }
    }

    #[test]
    fn every_contract_route_is_in_the_table() {
        let table = Table::from_contract();
        for op in OPERATIONS.iter() {
            if let Some(route) = op.route {
                assert!(
                    table
                        .routes()
                        .any(|r| r.method == route.method && r.path == route.path),
                    "{} {}",
                    route.method,
                    route.path
                );
            }
        }
    }

    #[test]
    fn literal_beats_parameter_and_params_are_captured() {
        let table = Table::from_contract();
        assert_eq!(
            found(&table, Method::POST, "/inventory/check").0,
            "/inventory/check"
        );
        let (path, params) = found(&table, Method::GET, "/inventory/check");
        assert_eq!(path, "/inventory/{productId}");
        assert_eq!(params, vec![("productId".to_string(), "check".to_string())]);
        let (path, params) = found(&table, Method::PUT, "/orders/o-1/status");
        assert_eq!(path, "/orders/{id}/status");
        assert_eq!(params, vec![("id".to_string(), "o-1".to_string())]);
    }

    #[test]
    fn wrong_method_and_unknown_paths() {
        let table = Table::from_contract();
        match table.find(&Method::DELETE, "/inventory") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, vec![Method::GET, Method::POST]),
            _ => panic!("want 405"),
        }
        match table.find(&Method::PUT, "/inventory/check") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, vec![Method::GET, Method::POST]),
            _ => panic!("want 405"),
        }
        for path in [
            "/",
            "/nope",
            "/inventory/",
            "/inventory/a/b",
            "/orders//status",
            "inventory",
        ] {
            assert!(
                matches!(table.find(&Method::GET, path), Lookup::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn creates_know_where_their_resource_lives() {
        let table = Table::from_contract();
        let location = |path: &str| {
            table
                .endpoints()
                .find(|(r, _)| r.path == path && r.method == Method::POST)
                .and_then(|(_, e)| e.location.clone())
        };
        let orders = location("/orders").unwrap();
        assert_eq!(
            (orders.prefix.as_str(), orders.field.as_str()),
            ("/orders/", "id")
        );
        let products = location("/inventory").unwrap();
        assert_eq!(products.field, "productId");
        assert!(location("/inventory/check").is_none(), "not a create");
    }
}
