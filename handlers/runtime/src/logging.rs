//! `tracing` set up once for every binary: `LOG_FORMAT=json|pretty`,
//! `RUST_LOG` filters, `LOG_DIR` adds daily rolling files (non-blocking).

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Keeps the file writer flushing; drop it only when the process ends.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

pub fn init(binary: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let (file, guard) = match std::env::var("LOG_DIR").ok().filter(|d| !d.is_empty()) {
        Some(dir) => {
            let appender = tracing_appender::rolling::daily(dir, format!("{binary}.log"));
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(writer), Some(guard))
        }
        None => (None, None),
    };
    // Four concrete layer types keep this free of boxing on the hot path.
    let stderr_json = json.then(|| fmt::layer().json().with_writer(std::io::stderr));
    let stderr_pretty = (!json).then(|| fmt::layer().with_writer(std::io::stderr));
    let file_json = file
        .clone()
        .filter(|_| json)
        .map(|w| fmt::layer().json().with_writer(w));
    let file_pretty = file
        .filter(|_| !json)
        .map(|w| fmt::layer().with_ansi(false).with_writer(w));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr_json)
        .with(stderr_pretty)
        .with(file_json)
        .with(file_pretty)
        .try_init();
    LogGuard(guard)
}
