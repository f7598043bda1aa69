//! The runtime every OMS binary stands on, written once: configuration,
//! logging, connecting, the service protocol, schema validation, problems and
//! the KV store. A handler binary's `main` hands one async function to [`run`].

pub mod backoff;
pub mod config;
pub mod connect;
pub mod consumer;
pub mod deadline;
pub mod direct;
pub mod drain;
pub mod env;
pub mod fault;
pub mod logging;
pub mod permissions;
pub mod principal;
pub mod problem;
pub mod schema;
pub mod service;
pub mod store;
pub mod time;

pub use config::Config;
pub use deadline::Deadline;
pub use env::{ConfigError, Env};
pub use oms_contract as contract;
pub use oms_contract::{Answer, Operation, Spec};
pub use principal::Principal;
pub use problem::{FieldError, Problem};
pub use store::{Slot, Start, Store, StoreError, Versioned, Write};

use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::sync::Arc;

/// What a process shares across all its requests.
pub struct App {
    pub config: Config,
    pub client: async_nats::Client,
    pub store: Store,
}

/// What a handler gets with each request: the shared app, the operation's
/// own state (built once at start by [`run_with`]) and who asked.
pub struct Ctx<S = ()> {
    pub app: Arc<App>,
    pub state: Arc<S>,
    pub request_id: String,
    pub traceparent: Option<String>,
    /// Who asked, when the gateway says (see [`principal`]).
    pub principal: Option<Principal>,
    /// When the caller stops waiting, if it said (see [`deadline`]).
    pub deadline: Option<Deadline>,
    /// The actor an operation that called this one acted for
    /// (`Oms-Actor`, see [`Ctx::actor`]).
    pub on_behalf_of: Option<String>,
}

impl<S> std::ops::Deref for Ctx<S> {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl<S> Ctx<S> {
    /// A customer (a principal without the staff role), held to its own
    /// orders; `None` for staff and for NATS users.
    pub fn customer(&self) -> Option<&str> {
        self.principal
            .as_ref()
            .filter(|p| !p.is_staff())
            .map(|p| p.sub.as_str())
    }

    /// 403 for a customer: the operation is for staff (and NATS users).
    pub fn staff_only(&self) -> Result<(), Problem> {
        match self.customer() {
            Some(sub) => Err(Problem::forbidden(format!("{sub} may not do this"))),
            None => Ok(()),
        }
    }

    /// Who a change is recorded as made by: the principal the
    /// gateway named, else the actor of the operation that called this one
    /// (`Oms-Actor`), else this process's own NATS user.
    pub fn actor(&self) -> Option<&str> {
        self.principal
            .as_ref()
            .map(|p| p.sub.as_str())
            .or(self.on_behalf_of.as_deref())
            .or(self.app.config.nats_user.as_deref())
    }

    /// Headers that carry this request's identity to a downstream call:
    /// its ids, its actor (not its principal: the callee's role checks are
    /// for the caller it sees), and its deadline, a little earlier (the
    /// reply needs time too).
    pub fn trace_headers(&self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(service::REQUEST_ID, self.request_id.as_str());
        if let Some(tp) = &self.traceparent {
            headers.insert(service::TRACEPARENT, tp.as_str());
        }
        if let Some(deadline) = self.deadline {
            let value = deadline.for_call().header_value();
            headers.insert(deadline::DEADLINE_HEADER, value.as_str());
        }
        if let Some(actor) = self.actor() {
            headers.insert(principal::ACTOR_HEADER, actor);
        }
        headers
    }
}

/// How one operation calls another: 5 s per attempt, 3 attempts, retried
/// only when nothing answered (no responders, or a timeout), as the
/// original system's clients did. Only idempotent operations are called.
/// A deadline in the headers (`Oms-Deadline`) bounds all of it: no attempt
/// waits past it, none starts after it.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const CALL_ATTEMPTS: u32 = 3;

impl<S> Ctx<S> {
    /// Request-reply to another operation, carrying this request's identity;
    /// its problem becomes this request's problem.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        op: &Operation<Req, Resp>,
        request: &Req,
    ) -> Result<Resp, Problem> {
        call(&self.client, self.trace_headers(), op, request).await
    }
}

/// Request-reply to an operation (see [`Ctx::call`]; workers have no `Ctx`).
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    headers: async_nats::HeaderMap,
    op: &Operation<Req, Resp>,
    request: &Req,
) -> Result<Resp, Problem> {
    use async_nats::client::RequestErrorKind;
    let subject = op.subject();
    let payload = bytes::Bytes::from(serde_json::to_vec(request).map_err(Problem::internal)?);
    let deadline = Deadline::from_headers(Some(&headers))?;
    let mut last = Problem::unavailable(format!("{subject} did not answer"));
    for attempt in 1..=CALL_ATTEMPTS {
        let timeout = match deadline {
            Some(deadline) if deadline.passed() => {
                return Err(Problem::timeout(format!(
                    "{subject} did not answer before the deadline"
                )))
            }
            Some(deadline) => deadline.remaining().min(CALL_TIMEOUT),
            None => CALL_TIMEOUT,
        };
        let request = async_nats::Request::new()
            .payload(payload.clone())
            .headers(headers.clone())
            .timeout(Some(timeout));
        match client.send_request(subject.clone(), request).await {
            Ok(reply) => return problem::from_reply(&reply),
            Err(err) => {
                last = match err.kind() {
                    RequestErrorKind::NoResponders => {
                        Problem::unavailable(format!("no {} instance is running", op.service))
                    }
                    RequestErrorKind::TimedOut => {
                        Problem::timeout(format!("{subject} did not answer in time"))
                    }
                    _ => return Err(Problem::internal(err)),
                };
                tracing::warn!(attempt, error = %err, %subject, "call failed");
                if err.kind() == RequestErrorKind::NoResponders {
                    let pause = std::time::Duration::from_millis(200 * u64::from(attempt));
                    let pause = deadline.map_or(pause, |d| pause.min(d.remaining()));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    Err(last)
}

/// Runs a request/reply operation: `fn main() { run(&OP, handle) }`.
pub fn run<Req, Resp, A, F, Fut>(op: &'static Operation<Req, Resp>, handler: F)
where
    Req: DeserializeOwned + Send + 'static,
    A: Answer<Resp> + Send + 'static,
    F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<A, Problem>> + Send + 'static,
{
    run_with(op, |_| std::future::ready(()), handler)
}

/// Like [`run`], for an operation with state of its own (an index, a
/// cache): `setup` builds it once, after connecting. The instance joins the
/// service only when that is done, so an index is current before its first
/// answer.
pub fn run_with<S, Req, Resp, A, Setup, Ready, F, Fut>(
    op: &'static Operation<Req, Resp>,
    setup: Setup,
    handler: F,
) where
    S: Send + Sync + 'static,
    Setup: FnOnce(&Arc<App>) -> Ready,
    Ready: Future<Output = S>,
    Req: DeserializeOwned + Send + 'static,
    A: Answer<Resp> + Send + 'static,
    F: Fn(Ctx<S>, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<A, Problem>> + Send + 'static,
{
    start(op.service, |app| async move {
        let state = Arc::new(setup(&app).await);
        service::serve(app, state, &op.spec, handler).await
    });
}

/// Runs a long-lived worker (a consumer, not a service) until shutdown.
pub fn run_worker<F, Fut>(name: &'static str, worker: F)
where
    F: FnOnce(Arc<App>) -> Fut,
    Fut: Future<Output = ()>,
{
    start(name, |app| async move {
        tokio::select! {
            _ = worker(app) => {}
            _ = shutdown_signal() => tracing::info!("stopping"),
        }
    });
}

fn start<F, Fut>(name: &'static str, body: F)
where
    F: FnOnce(Arc<App>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (_logs, config) = init(name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let app = connect_app(name, config).await;
        body(app).await;
    });
}

/// Logging and settings for a process about to start, or the reason it will
/// not: a malformed setting ends the process here, exit status 2, naming the
/// variable.
pub fn init(binary: &str) -> (logging::LogGuard, Config) {
    let env = Env::process();
    let started = logging::init(binary, &env).and_then(|logs| Ok((logs, Config::read(&env)?)));
    // A malformed OMS_FAULTS stops the process now, not at its first point.
    fault::is_armed("");
    started.unwrap_or_else(|err| {
        eprintln!("{binary} cannot start: {err}");
        std::process::exit(2)
    })
}

/// Connects (retrying until NATS is there) and opens the bucket.
pub async fn connect_app(name: &str, config: Config) -> Arc<App> {
    let client = connect::connect(&config, name).await;
    let mut backoff = backoff::Backoff::default();
    let store = loop {
        match Store::open(client.clone(), &config).await {
            Ok(store) => break store,
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff.delay(), "bucket not ready");
                backoff.wait().await;
            }
        }
    };
    Arc::new(App {
        config,
        client,
        store,
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
