//! `gateway`: the REST front of the OMS operations. Configured by the
//! environment like every binary (`GATEWAY_ADDR`, `NATS_URL`, ...; see the
//! gateway's README).

use oms_runtime::{logging, Config};
use std::process::ExitCode;

fn main() -> ExitCode {
    let _logs = logging::init("gateway");
    let config = Config::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(gateway::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "gateway cannot start");
            ExitCode::FAILURE
        }
    }
}
