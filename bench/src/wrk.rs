//! HTTP load with wrk: a Lua script per case, generated into a temp dir,
//! and wrk's text report read back into numbers.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What wrk reported for one case.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

impl Report {
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// wrk's threads (`-t`): the load client's share of the 2 cores.
pub const THREADS: usize = 2;

/// Gives each wrk thread its own random sequence: without it both threads
/// would send the same products in the same order. Every request carries
/// the bench's staff token (from the environment `run` gives wrk).
const PRELUDE: &str = r#"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("OMS_BENCH_TOKEN") or "")
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  math.randomseed(4242 + 7919 * (tid or 0))
end
"#;

/// `POST path` with a body built by the Lua expression `body`.
pub fn post_script(path: &str, body: &str) -> String {
    format!(
        r#"{PRELUDE}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{}
request = function()
  return wrk.format(nil, "{path}", nil, {body})
end
"#,
        lua_helpers()
    )
}

/// `GET` of a path built by the Lua expression `path`.
pub fn get_script(path: &str, extra: &str) -> String {
    format!(
        r#"{PRELUDE}
{}
{extra}
request = function()
  return wrk.format("GET", {path})
end
"#,
        lua_helpers()
    )
}

/// `product()` names one of the seeded products; `products(n)` a JSON items
/// array of n distinct ones, 1 unit each.
fn lua_helpers() -> String {
    format!(
        r#"
function product()
  return string.format("{prefix}%03d", math.random(0, {last}))
end
function products(n)
  local seen, items = {{}}, {{}}
  while #items < n do
    local p = product()
    if not seen[p] then
      seen[p] = true
      items[#items + 1] = string.format('{{"productId":"%s","quantity":1}}', p)
    end
  end
  return "[" .. table.concat(items, ",") .. "]"
end
"#,
        prefix = crate::PRODUCT_PREFIX,
        last = crate::PRODUCTS - 1
    )
}

/// `PUT /orders/{id}/status` walking the orders listed in `ids_file` (one
/// id a line, all PENDING), each thread its own half: an order is confirmed,
/// and only once that answer is back (`response` sees the order CONFIRMED)
/// completed or cancelled (alternately), so every request is a legal
/// transition. Fresh orders are confirmed while no confirmed one waits. A
/// thread out of fresh orders sends an illegal update (409): the run shows
/// errors rather than repeating a legal-looking request.
pub fn status_walk_script(ids_file: &Path) -> String {
    format!(
        r#"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local fresh, next_fresh, confirmed, settled = {{}}, 1, {{}}, 0
function init(args)
  local n = 0
  for line in io.lines("{file}") do
    if n % {threads} == tid then fresh[#fresh + 1] = line end
    n = n + 1
  end
end
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
local function put(id, status)
  return wrk.format(nil, "/orders/" .. id .. "/status", nil, '{{"status":"' .. status .. '"}}')
end
request = function()
  local id = table.remove(confirmed, 1)
  if id then
    settled = settled + 1
    return put(id, settled % 2 == 0 and "CANCELLED" or "COMPLETED")
  end
  id = fresh[next_fresh]
  if not id then
    return put(fresh[1] or "none", "PENDING")
  end
  next_fresh = next_fresh + 1
  return put(id, "CONFIRMED")
end
response = function(status, headers, body)
  if status == 200 and body:match('"status":"(%u+)"') == "CONFIRMED" then
    confirmed[#confirmed + 1] = body:match('"id":"([^"]+)"')
  end
end
"#,
        file = ids_file.display(),
        threads = THREADS,
    )
}

/// A Lua table literal of the given ids, as `local ids = {...}`.
pub fn id_table(ids: &[String]) -> String {
    let mut out = String::from("local ids = {");
    for id in ids {
        out.push('"');
        out.push_str(id);
        out.push_str("\",");
    }
    out.push('}');
    out
}

/// Runs `wrk -t2 -cN -dSs --latency` with `script` against `base`.
pub async fn run(
    dir: &Path,
    name: &str,
    script: &str,
    base: &str,
    connections: usize,
    duration: Duration,
) -> Result<Report, String> {
    let file: PathBuf = dir.join(format!("{name}.lua"));
    std::fs::write(&file, script).map_err(|e| format!("write {}: {e}", file.display()))?;
    let secs = duration.as_secs().max(1);
    let run = tokio::process::Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .args([format!("-c{connections}"), format!("-d{secs}s")])
        .args(["--latency", "--timeout", "5s", "-s"])
        .arg(&file)
        .arg(base)
        .env(
            "OMS_BENCH_TOKEN",
            crate::stack::TOKEN.get().map_or("", String::as_str),
        )
        .kill_on_drop(true)
        .output();
    // wrk ends by itself after the duration; the margin covers its last timeouts.
    let output = tokio::time::timeout(duration + Duration::from_secs(30), run)
        .await
        .map_err(|_| "wrk did not finish".to_string())?
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("unreadable wrk output:\n{text}"))
}

/// Reads wrk's report (its `--latency` form).
pub fn parse(text: &str) -> Option<Report> {
    let mut report = Report::default();
    let mut seen_rps = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => report.p50_ms = duration_ms(value)?,
            ["99%", value] => report.p99_ms = duration_ms(value)?,
            ["Requests/sec:", value] => {
                report.rps = value.parse().ok()?;
                seen_rps = true;
            }
            [count, "requests", "in", ..] => report.requests = count.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => report.non_2xx = count.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                report.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    seen_rps.then_some(report)
}

/// wrk prints durations as `812.00us`, `1.23ms`, `2.01s` or `1.00m`.
fn duration_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 5s test @ http://127.0.0.1:8080
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.01ms    2.10ms  40.12ms   80.00%
    Req/Sec     6.50k   400.00     7.20k    70.00%
  Latency Distribution
     50%  812.00us
     75%    5.50ms
     90%    7.00ms
     99%    1.20s
  64640 requests in 5.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 17
Requests/sec:  12928.00
Transfer/sec:      4.00MB
";

    #[test]
    fn reads_every_figure() {
        assert_eq!(
            parse(SAMPLE),
            Some(Report {
                requests: 64640,
                rps: 12928.0,
                p50_ms: 0.812,
                p99_ms: 1200.0,
                non_2xx: 17,
                socket_errors: 5,
            })
        );
    }

    #[test]
    fn an_incomplete_report_is_none() {
        assert_eq!(parse("unable to connect to 127.0.0.1:1"), None);
    }

    #[test]
    fn id_table_is_lua() {
        assert_eq!(
            id_table(&["a".into(), "b".into()]),
            r#"local ids = {"a","b",}"#
        );
    }
}
