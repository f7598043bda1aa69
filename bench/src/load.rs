//! The NATS load client: N tasks on one connection, each doing
//! request-reply in a loop until a deadline, the way the gateway (one
//! connection, many requests in flight) uses NATS.

use async_nats::Client;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request that has no reply in this long is an error (the gateway's
/// default `OMS_REQUEST_TIMEOUT`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// No task sends more than this many requests in one case, whatever the
/// duration: a guard against a runaway loop, far above any measured rate.
const MAX_PER_TASK: usize = 5_000_000;

pub use testkit::Rng;

/// Builds one request payload; `task` and `seq` make ids unique. None ends
/// the task (a case that walks a finite set of orders ran out of them).
pub type Payload = Arc<dyn Fn(&mut Rng, usize, usize) -> Option<Bytes> + Send + Sync>;

/// What one case measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    /// Of the errors: no reply within [`REQUEST_TIMEOUT`].
    pub timeouts: u64,
    /// Error replies by `Nats-Service-Error-Code`.
    pub codes: std::collections::BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Latencies of successful requests, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Tasks that ran out of requests before the deadline.
    pub exhausted: u64,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The q-quantile (0..=1) of successful latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let last = self.latencies_us.len() - 1;
        let index = ((self.latencies_us.len() as f64 * q) as usize).min(last);
        self.latencies_us[index] as f64 / 1000.0
    }
}

/// Replies of successful requests are handed to this (up to its limit), for
/// cases that need what the server created (order ids).
pub struct Collect {
    pub limit: usize,
    pub ids: Mutex<Vec<String>>,
}

impl Collect {
    pub fn new(limit: usize) -> Arc<Collect> {
        Arc::new(Collect {
            limit,
            ids: Mutex::new(Vec::new()),
        })
    }
}

/// The value of the first `"id":"..."` in a JSON reply, without parsing
/// the whole document (the load client should spend its CPU on sending).
pub fn reply_id(payload: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"id\":\"";
    let start = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = payload[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(payload[start..start + len].to_vec()).ok()
}

/// Not measured before each case: connections, caches and the server's
/// first file blocks settle, so the first case of a phase is not penalized.
pub const WARMUP: Duration = Duration::from_secs(1);

/// Runs `concurrency` tasks sending to `subject` for `duration`.
pub async fn run(
    client: &Client,
    subject: &str,
    concurrency: usize,
    duration: Duration,
    payload: Payload,
    collect: Option<Arc<Collect>>,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let client = client.clone();
        let subject = subject.to_string();
        let payload = payload.clone();
        let collect = collect.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(task as u64 + 1);
            let mut out = Outcome {
                latencies_us: Vec::with_capacity(1 << 16),
                ..Outcome::default()
            };
            let mut seq = 0;
            while seq < MAX_PER_TASK && Instant::now() < deadline {
                let Some(body) = payload(&mut rng, task, seq) else {
                    out.exhausted += 1;
                    break;
                };
                seq += 1;
                let sent = Instant::now();
                let reply =
                    tokio::time::timeout(REQUEST_TIMEOUT, client.request(subject.clone(), body))
                        .await;
                let took = sent.elapsed();
                match reply {
                    Err(_) => {
                        out.errors += 1;
                        out.timeouts += 1;
                    }
                    Ok(Err(err)) => {
                        out.errors += 1;
                        *out.codes.entry(format!("{:?}", err.kind())).or_default() += 1;
                    }
                    Ok(Ok(message)) => {
                        let code = message
                            .headers
                            .as_ref()
                            .and_then(|h| h.get("Nats-Service-Error-Code"));
                        if let Some(code) = code {
                            out.errors += 1;
                            *out.codes.entry(code.to_string()).or_default() += 1;
                        } else {
                            out.ok += 1;
                            out.latencies_us
                                .push(took.as_micros().min(u32::MAX as u128) as u32);
                            if let Some(collect) = &collect {
                                let mut ids = collect.ids.lock().expect("ids lock");
                                if ids.len() < collect.limit {
                                    ids.extend(reply_id(&message.payload));
                                }
                            }
                        }
                    }
                }
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for task in tasks {
        let part = task.await.expect("load task");
        total.ok += part.ok;
        total.errors += part.errors;
        total.timeouts += part.timeouts;
        total.exhausted += part.exhausted;
        for (code, n) in part.codes {
            *total.codes.entry(code).or_default() += n;
        }
        total.latencies_us.extend(part.latencies_us);
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// The raw echo responder: a plain subscriber replying with the payload, on
/// its own connection. What it reaches is the machine's request-reply limit.
pub async fn echo_service(client: Client, subject: &str) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    let mut requests = client
        .subscribe(subject.to_string())
        .await
        .expect("subscribe the echo subject");
    client.flush().await.expect("flush the echo subscription");
    tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            if let Some(reply) = message.reply {
                let _ = client.publish(reply, message.payload).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_id_reads_the_first_id() {
        let body = br#"{"id":"abc123","customerId":"c-1","items":[{"productId":"P001"}]}"#;
        assert_eq!(reply_id(body).as_deref(), Some("abc123"));
        assert_eq!(reply_id(b"{}"), None);
    }

    #[test]
    fn quantiles_come_from_sorted_latencies() {
        let outcome = Outcome {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Outcome::default()
        };
        assert_eq!(outcome.quantile_ms(0.5), 51.0);
        assert_eq!(outcome.quantile_ms(0.99), 100.0);
    }
}
