//! The table printed as the run goes, and the same figures as JSON lines in
//! `target/bench/results.jsonl`.

use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// One measured case.
pub struct Row<'a> {
    pub case: &'a str,
    pub transport: &'a str,
    pub concurrency: usize,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Anything else worth keeping (error codes, stored orders, ...).
    pub extra: Value,
}

pub struct Report {
    file: File,
    pub path: PathBuf,
    /// Echo req/s by concurrency: the machine's NATS limit in this run.
    echo: HashMap<usize, f64>,
    /// NATS req/s by (case, concurrency), for the gateway's cost.
    nats: HashMap<(String, usize), f64>,
    /// Lines about the rows of the current table (their cost), printed
    /// under it so the table stays one table.
    details: RefCell<Vec<String>>,
}

impl Report {
    pub fn create(path: PathBuf) -> Report {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the results directory");
        }
        let file = File::create(&path).expect("create the results file");
        Report {
            file,
            path,
            echo: HashMap::new(),
            nats: HashMap::new(),
            details: RefCell::new(Vec::new()),
        }
    }

    /// A section heading and the table's column names.
    pub fn section(&self, title: &str) {
        self.heading(title);
        self.columns();
    }

    /// A section heading alone (for sections with their own table).
    pub fn heading(&self, title: &str) {
        self.flush();
        println!("\n## {title}");
    }

    /// The table's column names.
    pub fn columns(&self) {
        self.flush();
        println!();
        println!(
            "| {:<34} | {:<9} | {:>4} | {:>9} | {:>8} | {:>8} | {:>7} | {:>6} | {:>6} |",
            "case", "transport", "conc", "req/s", "p50 ms", "p99 ms", "errors", "×echo", "×nats"
        );
        println!(
            "|{}|{}|{}|{}|{}|{}|{}|{}|{}|",
            "-".repeat(36),
            "-".repeat(11),
            "-".repeat(5) + ":",
            "-".repeat(10) + ":",
            "-".repeat(9) + ":",
            "-".repeat(9) + ":",
            "-".repeat(8) + ":",
            "-".repeat(7) + ":",
            "-".repeat(7) + ":",
        );
    }

    /// A free line under the table (a proof, a note).
    pub fn note(&self, text: &str) {
        self.flush();
        println!("\n{text}");
    }

    /// A line about a row, printed under the current table.
    pub fn detail(&self, text: String) {
        self.details.borrow_mut().push(text);
    }

    /// Prints the details of the table just ended.
    pub fn flush(&self) {
        let details = std::mem::take(&mut *self.details.borrow_mut());
        if !details.is_empty() {
            println!();
            for line in details {
                println!("{line}");
            }
        }
    }

    /// Prints a row, adds its ratios, writes it as a JSON line.
    pub fn row(&mut self, row: Row) {
        if row.case == "echo" {
            self.echo.insert(row.concurrency, row.rps);
        }
        if row.transport == "nats" {
            self.nats
                .insert((row.case.to_string(), row.concurrency), row.rps);
        }
        // A concurrency the echo was not run at compares with the nearest one.
        let echo = self.echo.get(&row.concurrency).copied().or_else(|| {
            self.echo
                .iter()
                .min_by_key(|(c, _)| c.abs_diff(row.concurrency))
                .map(|(_, r)| *r)
        });
        let ratio_to_echo = echo.filter(|e| *e > 0.0).map(|e| row.rps / e);
        let ratio_to_nats = (row.transport == "http")
            .then(|| {
                self.nats
                    .get(&(row.case.to_string(), row.concurrency))
                    .filter(|n| **n > 0.0)
                    .map(|n| row.rps / n)
            })
            .flatten();
        println!(
            "| {:<34} | {:<9} | {:>4} | {:>9.0} | {:>8.2} | {:>8.2} | {:>7} | {:>6} | {:>6} |",
            row.case,
            row.transport,
            row.concurrency,
            row.rps,
            row.p50_ms,
            row.p99_ms,
            row.errors,
            ratio(ratio_to_echo),
            ratio(ratio_to_nats),
        );
        let mut line = Map::new();
        line.insert("case".into(), json!(row.case));
        line.insert("transport".into(), json!(row.transport));
        line.insert("concurrency".into(), json!(row.concurrency));
        line.insert("rps".into(), json!(round(row.rps, 1)));
        line.insert("p50_ms".into(), json!(round(row.p50_ms, 3)));
        line.insert("p99_ms".into(), json!(round(row.p99_ms, 3)));
        line.insert("errors".into(), json!(row.errors));
        line.insert(
            "ratio_to_echo".into(),
            json!(ratio_to_echo.map(|r| round(r, 4))),
        );
        if row.transport == "http" {
            line.insert(
                "ratio_to_nats".into(),
                json!(ratio_to_nats.map(|r| round(r, 4))),
            );
        }
        if let Value::Object(extra) = row.extra {
            line.extend(extra);
        }
        self.json(Value::Object(line));
    }

    /// Writes one JSON line as is.
    pub fn json(&mut self, value: Value) {
        writeln!(self.file, "{value}").expect("write a result line");
        self.file.flush().expect("flush the results file");
    }
}

fn ratio(value: Option<f64>) -> String {
    value
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| "-".into())
}

/// Rounds for the JSON file; NaN (no successful request) becomes null.
fn round(value: f64, places: i32) -> Option<f64> {
    let scale = 10f64.powi(places);
    value.is_finite().then(|| (value * scale).round() / scale)
}
