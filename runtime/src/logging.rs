//! `tracing` set up once for every binary: `LOG_FORMAT=json|pretty`,
//! `RUST_LOG` filters, `LOG_DIR` adds daily rolling files (non-blocking).

use crate::env::{ConfigError, Env};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Keeps the file writer flushing; drop it only when the process ends.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the subscriber, or says which logging setting is malformed.
pub fn init(binary: &str, env: &Env) -> Result<LogGuard, ConfigError> {
    let filter = env
        .parsed(
            "RUST_LOG",
            "a tracing filter such as info or oms_handlers=debug,warn",
            |text| EnvFilter::try_new(text).ok(),
        )?
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = env.choice("LOG_FORMAT", &["pretty", "json"], "pretty")? == "json";
    let file = env.parsed("LOG_DIR", "a directory the process may write to", |dir| {
        RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(binary)
            .filename_suffix("log")
            .build(dir)
            .ok()
    })?;
    let (file, guard) = match file {
        Some(appender) => {
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
    Ok(LogGuard(guard))
}
