//! Prometheus metrics, written by hand in the text exposition format
//! (version 0.0.4): a few counters and one histogram do not need a client
//! library.
//!
//! Labels are bounded: `route` is the route's template (never the raw path),
//! or `unmatched` for 404/405; `method` is one of the standard methods or
//! `OTHER`. So no client can grow the series without limit.

use hyper::Method;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Per bucket, not cumulative; summed when written.
    buckets: [u64; BUCKETS.len()],
}

type Key = (&'static str, &'static str, u16);

#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<Key, Series>>,
    in_flight: AtomicI64,
}

/// Counts a request as in flight until dropped, however the request ends.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Facts the metrics page reports that the gateway does not count itself.
#[derive(Default)]
pub struct Nats {
    pub connected: bool,
    pub reconnects: u64,
    /// Per stream (the bucket's, `OMS_EVENTS`, `OMS_DLQ`): bytes stored and
    /// the limit (-1: none), as JetStream reports them.
    pub streams: Vec<(String, u64, i64)>,
    /// Messages waiting in `OMS_DLQ` per subject (`dlq.<stream>.<consumer>`),
    /// and how many were ever stored there (its last sequence).
    pub dead_letters: Vec<(String, u64)>,
    pub dead_letters_total: Option<u64>,
}

impl Metrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    pub fn observe(&self, method: &Method, route: &'static str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let entry = series
            .entry((method_label(method), route, status))
            .or_default();
        entry.count += 1;
        entry.sum += seconds;
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            entry.buckets[i] += 1;
        }
    }

    /// The whole page.
    pub fn render(&self, nats: Nats) -> String {
        let mut out = String::new();
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());

        out.push_str(
            "# HELP gateway_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE gateway_http_requests_total counter\n");
        for ((method, route, status), s) in series.iter() {
            let labels = labels(method, route, *status);
            let _ = writeln!(out, "gateway_http_requests_total{{{labels}}} {}", s.count);
        }

        out.push_str("# HELP gateway_http_request_duration_seconds Time from request head to response, by route and status.\n");
        out.push_str("# TYPE gateway_http_request_duration_seconds histogram\n");
        for ((method, route, status), s) in series.iter() {
            let labels = labels(method, route, *status);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "gateway_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(series);

        let gauge = |out: &mut String, name: &str, kind: &str, help: &str, value: i64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        // The gauge counts this very request, which is still being answered.
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "gateway_http_requests_in_flight",
            "gauge",
            "HTTP requests being answered now.",
            in_flight,
        );
        gauge(
            &mut out,
            "gateway_nats_connected",
            "gauge",
            "1 while the NATS connection is up.",
            nats.connected as i64,
        );
        gauge(
            &mut out,
            "gateway_nats_reconnects_total",
            "counter",
            "Times the NATS connection was re-established.",
            nats.reconnects as i64,
        );
        if !nats.streams.is_empty() {
            out.push_str(
                "# HELP oms_stream_bytes Bytes stored in a JetStream stream of the system.
# TYPE oms_stream_bytes gauge
",
            );
            for (stream, bytes, _) in &nats.streams {
                let _ = writeln!(
                    out,
                    "oms_stream_bytes{{stream=\"{}\"}} {bytes}",
                    escape(stream)
                );
            }
            out.push_str("# HELP oms_stream_max_bytes The stream's byte limit (-1: none); writes past it get 507.
# TYPE oms_stream_max_bytes gauge
");
            for (stream, _, max) in &nats.streams {
                let _ = writeln!(
                    out,
                    "oms_stream_max_bytes{{stream=\"{}\"}} {max}",
                    escape(stream)
                );
            }
        }
        if let Some(total) = nats.dead_letters_total {
            out.push_str("# HELP oms_dead_letters Messages waiting in OMS_DLQ, by subject (dlq.<stream>.<consumer>).
# TYPE oms_dead_letters gauge
");
            for (subject, count) in &nats.dead_letters {
                let _ = writeln!(
                    out,
                    "oms_dead_letters{{subject=\"{}\"}} {count}",
                    escape(subject)
                );
            }
            gauge(
                &mut out,
                "oms_dead_letters_total",
                "counter",
                "Messages ever stored in OMS_DLQ.",
                total as i64,
            );
        }
        out
    }
}

fn labels(method: &str, route: &str, status: u16) -> String {
    format!(
        "method=\"{method}\",route=\"{}\",status=\"{status}\"",
        escape(route)
    )
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let metrics = Metrics::default();
        metrics.observe(&Method::GET, "/inventory", 200, Duration::from_millis(3));
        metrics.observe(&Method::GET, "/inventory", 200, Duration::from_millis(300));
        metrics.observe(&Method::GET, "/inventory", 200, Duration::from_secs(30));
        metrics.observe(
            &Method::from_bytes(b"BREW").unwrap(),
            "unmatched",
            405,
            Duration::ZERO,
        );
        let page = metrics.render(Nats {
            connected: true,
            reconnects: 2,
            streams: vec![("KV_oms".into(), 1234, 300_000)],
            dead_letters: vec![("dlq.KV_oms.inventory-holds".into(), 1)],
            dead_letters_total: Some(3),
        });
        let line = |prefix: &str| {
            page.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix}\n{page}"))
                .to_string()
        };
        assert!(line(
            "gateway_http_requests_total{method=\"GET\",route=\"/inventory\",status=\"200\"}"
        )
        .ends_with(" 3"));
        assert!(line("gateway_http_request_duration_seconds_bucket{method=\"GET\",route=\"/inventory\",status=\"200\",le=\"0.005\"}").ends_with(" 1"));
        assert!(line("gateway_http_request_duration_seconds_bucket{method=\"GET\",route=\"/inventory\",status=\"200\",le=\"0.5\"}").ends_with(" 2"));
        assert!(line("gateway_http_request_duration_seconds_bucket{method=\"GET\",route=\"/inventory\",status=\"200\",le=\"+Inf\"}").ends_with(" 3"));
        assert!(line("gateway_http_requests_total{method=\"OTHER\"").ends_with(" 1"));
        assert_eq!(
            line("gateway_nats_reconnects_total "),
            "gateway_nats_reconnects_total 2"
        );
        assert_eq!(
            line("oms_stream_max_bytes{"),
            "oms_stream_max_bytes{stream=\"KV_oms\"} 300000"
        );
        assert!(line("oms_dead_letters{subject=\"dlq.KV_oms.inventory-holds\"}").ends_with(" 1"));
        assert_eq!(line("oms_dead_letters_total "), "oms_dead_letters_total 3");
    }
}
