//! What a request costs, per process and in JetStream operations: CPU time
//! of every process of the stack (utime + stime from `/proc/<pid>/stat`)
//! and of the load client, and the server's message and stream counters,
//! read before and after a case's measured window and divided by its
//! successful requests.

use crate::stack::Stack;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Who sends the load: its CPU is reported beside the stack's, not in it.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Client {
    /// This process (the NATS load client; for the echo, the responder too).
    Bench,
    /// wrk, a child of this process that has exited and been waited for by
    /// the time the window closes: its CPU is the growth of
    /// `getrusage(RUSAGE_CHILDREN)` over the window.
    Wrk,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Bench => "oms-bench",
            Client::Wrk => "wrk",
        }
    }
}

/// Counters at the start of a measured window.
pub struct Before {
    procs: Vec<(String, u32, Option<u64>)>,
    machine_ticks: Option<u64>,
    own_ticks: Option<u64>,
    children_us: u64,
    monitor: String,
    varz: Option<Value>,
    jsz: Option<Value>,
    started: Instant,
}

/// What one case cost per successful request.
pub struct Cost {
    /// CPU µs per request of each process of the stack, in stack order.
    pub procs: Vec<(String, f64)>,
    pub stack_total: f64,
    pub client: Client,
    pub client_us: f64,
    /// CPU µs per request the machine spent beyond the stack and the client
    /// (other processes, the kernel's own threads): whether the window was
    /// shared with other work.
    pub other_us: f64,
    /// How long the window was, for CPU time as cores busy.
    pub secs: f64,
    /// Successful requests in the window.
    pub requests: u64,
    /// JetStream operations per request, when the monitor answered.
    pub js: Option<Js>,
}

/// Stream appends, consumer deliveries and acks, and the server's message
/// counters, per successful request.
#[derive(Default)]
pub struct Js {
    /// Per stream: messages appended (last sequence growth) and bytes.
    pub streams: BTreeMap<String, (f64, f64)>,
    /// Messages delivered by all consumers of the stream, and acknowledged
    /// by those that ack (ack floor growth of consumers whose ack policy is
    /// not `none`; ordered consumers ack nothing).
    pub deliveries: BTreeMap<String, (f64, f64)>,
    /// JetStream API requests (stream/consumer info, pull requests, ...;
    /// the server does not count direct gets here).
    pub api: f64,
    /// Messages clients published into nats-server / it delivered to them.
    pub msgs_in: f64,
    pub msgs_out: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in clock ticks (all its threads, live or
/// ended; not its children).
pub fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
}

/// Fields 14 and 15 of a `/proc/<pid>/stat` line. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its
/// closing parenthesis.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy time of all CPUs since boot, in clock ticks: the first line of
/// `/proc/stat` without idle and iowait.
fn machine_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine(stat.lines().next()?)
}

fn parse_machine(line: &str) -> Option<u64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is in user)
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(values.iter().sum::<u64>() - values.get(3)? - values.get(4)?)
}

/// CPU time of the children this process has waited for, in µs.
fn children_us() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// A GET of nats-server's monitoring endpoint, as HTTP/1.0 so that a large
/// answer comes whole rather than chunked.
async fn monitor_json(monitor: &str, path: &str) -> Option<Value> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(monitor).await.ok()?;
        let head = format!("GET {path} HTTP/1.0\r\nHost: {monitor}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let status = std::str::from_utf8(&raw[..split])
            .ok()?
            .split_whitespace()
            .nth(1)?;
        if status != "200" {
            return None;
        }
        serde_json::from_slice(&raw[split + 4..]).ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

const JSZ: &str = "/jsz?accounts=true&streams=true&consumers=true&config=true";

impl Before {
    /// Reads every counter; the CPU times last, so the window is tight.
    pub async fn take(stack: &Stack) -> Before {
        let monitor = format!("127.0.0.1:{}", stack.server.monitor_port);
        let jsz = monitor_json(&monitor, JSZ).await;
        let varz = monitor_json(&monitor, "/varz").await;
        let procs = stack
            .pids()
            .into_iter()
            .map(|(name, pid)| {
                let ticks = proc_ticks(&pid.to_string());
                (name, pid, ticks)
            })
            .collect();
        Before {
            procs,
            machine_ticks: machine_ticks(),
            own_ticks: proc_ticks("self"),
            children_us: children_us(),
            monitor,
            varz,
            jsz,
            started: Instant::now(),
        }
    }

    /// Reads every counter again (CPU times first) and divides the growth
    /// by `ok`, the successful requests of the window.
    pub async fn finish(self, ok: u64, client: Client) -> Cost {
        let secs = self.started.elapsed().as_secs_f64();
        let machine_after = machine_ticks();
        let children_after = children_us();
        let own_after = proc_ticks("self");
        let after: Vec<Option<u64>> = self
            .procs
            .iter()
            .map(|(_, pid, _)| proc_ticks(&pid.to_string()))
            .collect();
        let varz = monitor_json(&self.monitor, "/varz").await;
        let jsz = monitor_json(&self.monitor, JSZ).await;

        let n = ok.max(1) as f64;
        let us_per_tick = 1e6 / ticks_per_second();
        let per_request = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(b), Some(a)) => a.saturating_sub(b) as f64 * us_per_tick / n,
            _ => 0.0,
        };
        let procs: Vec<(String, f64)> = self
            .procs
            .iter()
            .zip(after)
            .map(|((name, _, before), after)| (name.clone(), per_request(*before, after)))
            .collect();
        let stack_total: f64 = procs.iter().map(|(_, us)| us).sum();
        let client_us = match client {
            Client::Bench => per_request(self.own_ticks, own_after),
            Client::Wrk => children_after.saturating_sub(self.children_us) as f64 / n,
        };
        let machine = per_request(self.machine_ticks, machine_after);
        let other_us = (machine - stack_total - client_us).max(0.0);
        let js = match (&self.varz, &varz, &self.jsz, &jsz) {
            (Some(v0), Some(v1), Some(j0), Some(j1)) => Some(js_growth(v0, v1, j0, j1, n)),
            _ => None,
        };
        Cost {
            procs,
            stack_total,
            client,
            client_us,
            other_us,
            secs,
            requests: ok,
            js,
        }
    }
}

fn u(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// Streams of the global account by name, from a `/jsz` answer.
fn streams(jsz: &Value) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for account in jsz["account_details"].as_array().into_iter().flatten() {
        for stream in account["stream_detail"].as_array().into_iter().flatten() {
            if let Some(name) = stream["name"].as_str() {
                out.insert(name.to_string(), stream);
            }
        }
    }
    out
}

fn js_growth(varz0: &Value, varz1: &Value, jsz0: &Value, jsz1: &Value, n: f64) -> Js {
    let mut js = Js {
        msgs_in: (u(&varz1["in_msgs"]) - u(&varz0["in_msgs"])) / n,
        msgs_out: (u(&varz1["out_msgs"]) - u(&varz0["out_msgs"])) / n,
        api: (u(&jsz1["api"]["total"]) - u(&jsz0["api"]["total"])) / n,
        ..Js::default()
    };
    let before = streams(jsz0);
    for (name, stream) in streams(jsz1) {
        let old = before.get(&name);
        let grown =
            |field: &str| u(&stream["state"][field]) - old.map_or(0.0, |s| u(&s["state"][field]));
        js.streams
            .insert(name.clone(), (grown("last_seq") / n, grown("bytes") / n));
        // Consumers by name; one created in the window counts from zero
        // (ordered consumers are recreated under a new name on a gap).
        let mut delivered = 0.0;
        let mut acked = 0.0;
        for consumer in stream["consumer_detail"].as_array().into_iter().flatten() {
            let name = consumer["name"].as_str().unwrap_or_default();
            let old = old
                .and_then(|s| s["consumer_detail"].as_array())
                .and_then(|cs| cs.iter().find(|c| c["name"] == name));
            let grown = |field: &str| {
                u(&consumer[field]["consumer_seq"])
                    - old.map_or(0.0, |c| u(&c[field]["consumer_seq"]))
            };
            delivered += grown("delivered").max(0.0);
            if consumer["config"]["ack_policy"] != "none" {
                acked += grown("ack_floor").max(0.0);
            }
        }
        js.deliveries.insert(name, (delivered / n, acked / n));
    }
    js
}

impl Cost {
    /// CPU µs per request as cores busy over the window.
    fn cores(&self, us_per_request: f64) -> f64 {
        us_per_request * self.requests as f64 / 1e6 / self.secs.max(1e-9)
    }

    /// `nats-server 80, gateway 30, ... = stack 190; client oms-bench 25`
    /// (processes under 0.5 µs per request left out; the JSON has them),
    /// then the cores the stack, the client and the rest of the machine kept
    /// busy.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .procs
            .iter()
            .filter(|(_, us)| *us >= 0.5)
            .map(|(name, us)| format!("{name} {us:.0}"))
            .collect();
        format!(
            "cpu µs/req: {} = stack {:.0}; client {} {:.0}; rest of the machine {:.0} (cores busy: stack {:.2}, client {:.2}, rest {:.2})",
            parts.join(", "),
            self.stack_total,
            self.client.name(),
            self.client_us,
            self.other_us,
            self.cores(self.stack_total),
            self.cores(self.client_us),
            self.cores(self.other_us),
        )
    }

    /// `js/req: KV_oms +1.00 msgs 0.9 kB, ...; nats msgs in 8.0 out 9.1`
    pub fn js_line(&self) -> Option<String> {
        let js = self.js.as_ref()?;
        let mut parts = Vec::new();
        for (name, (msgs, bytes)) in &js.streams {
            let (delivered, acked) = js.deliveries.get(name).copied().unwrap_or_default();
            if *msgs < 0.005 && delivered < 0.005 {
                continue;
            }
            let mut part = format!("{name} +{msgs:.2} msgs {:+.2} kB", bytes / 1000.0);
            if delivered >= 0.005 {
                part += &format!(", {delivered:.2} delivered");
            }
            if acked >= 0.005 {
                part += &format!(" {acked:.2} acked");
            }
            parts.push(part);
        }
        if js.api >= 0.005 {
            parts.push(format!("{:.2} JS API calls", js.api));
        }
        Some(format!(
            "js/req: {}{}nats-server msgs in {:.1} out {:.1}",
            parts.join(", "),
            if parts.is_empty() { "" } else { "; " },
            js.msgs_in,
            js.msgs_out
        ))
    }

    /// `cpu_us_per_req` and `js_per_req` for a results line.
    pub fn json(&self) -> Value {
        let round = |v: f64| (v * 10.0).round() / 10.0;
        let cents = |v: f64| (v * 100.0).round() / 100.0;
        let mut cpu = Map::new();
        for (name, us) in &self.procs {
            cpu.insert(name.clone(), json!(round(*us)));
        }
        cpu.insert("stack_total".into(), json!(round(self.stack_total)));
        cpu.insert(
            "client".into(),
            json!({"name": self.client.name(), "us": round(self.client_us)}),
        );
        cpu.insert("rest_of_machine".into(), json!(round(self.other_us)));
        cpu.insert(
            "cores_busy".into(),
            json!({
                "stack": cents(self.cores(self.stack_total)),
                "client": cents(self.cores(self.client_us)),
                "rest_of_machine": cents(self.cores(self.other_us)),
            }),
        );
        let js = self.js.as_ref().map(|js| {
            let round = |v: f64| (v * 1000.0).round() / 1000.0;
            let streams: Map<String, Value> = js
                .streams
                .iter()
                .map(|(name, (msgs, bytes))| {
                    let (delivered, acked) = js.deliveries.get(name).copied().unwrap_or_default();
                    (
                        name.clone(),
                        json!({
                            "stored_msgs": round(*msgs),
                            "stored_bytes": round(*bytes),
                            "consumer_deliveries": round(delivered),
                            "consumer_acks": round(acked),
                        }),
                    )
                })
                .collect();
            json!({
                "streams": streams,
                "js_api_calls": round(js.api),
                "server_msgs_in": round(js.msgs_in),
                "server_msgs_out": round(js.msgs_out),
            })
        });
        json!({"cpu_us_per_req": cpu, "js_per_req": js})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_utime_plus_stime() {
        // A command name with a space and a parenthesis, as the kernel allows.
        let stat =
            "4242 (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 170 33 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_ticks(stat), Some(203));
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let line = "cpu  100 2 30 5000 70 4 6 1 0 0";
        assert_eq!(parse_machine(line), Some(100 + 2 + 30 + 4 + 6 + 1));
        assert_eq!(parse_machine("cpu0 1 2 3 4 5 6 7 8"), None);
        assert!(machine_ticks().is_some());
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(proc_ticks("self").is_some());
        assert!(ticks_per_second() >= 1.0);
    }

    #[test]
    fn growth_counts_new_consumers_from_zero() {
        let jsz = |seq: u64, consumers: Value| {
            json!({"api": {"total": seq}, "account_details": [{"stream_detail": [
                {"name": "KV_oms", "state": {"last_seq": seq, "bytes": seq * 100}, "consumer_detail": consumers}
            ]}]})
        };
        let before = jsz(
            10,
            json!([{"name": "a", "config": {"ack_policy": "explicit"}, "delivered": {"consumer_seq": 10}, "ack_floor": {"consumer_seq": 8}}]),
        );
        let after = jsz(
            30,
            json!([
                {"name": "a", "config": {"ack_policy": "explicit"}, "delivered": {"consumer_seq": 30}, "ack_floor": {"consumer_seq": 28}},
                {"name": "b", "config": {"ack_policy": "none"}, "delivered": {"consumer_seq": 4}, "ack_floor": {"consumer_seq": 4}}
            ]),
        );
        let varz0 = json!({"in_msgs": 100, "out_msgs": 50});
        let varz1 = json!({"in_msgs": 180, "out_msgs": 150});
        let js = js_growth(&varz0, &varz1, &before, &after, 10.0);
        assert_eq!(js.streams["KV_oms"], (2.0, 200.0));
        assert_eq!(js.deliveries["KV_oms"], (2.4, 2.0));
        assert_eq!((js.msgs_in, js.msgs_out, js.api), (8.0, 10.0, 2.0));
    }
}
