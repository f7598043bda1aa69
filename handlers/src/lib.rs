//! The OMS domain shared by the handler binaries in `src/bin/`: each of those
//! files is one operation's whole logic; this library holds what several of
//! them need (where things are stored, the group commit that moves stock,
//! settling, deriving events from the bucket, and the list indexes). The
//! requests, replies and the status machine are the contract's
//! (`oms_contract`, re-exported here as `contract`).

pub mod derive;
pub mod events;
pub mod group;
pub mod ledger;
pub mod model;
pub mod read_model;
pub mod settle;

pub use oms_runtime::{contract, run, run_with, run_worker, Ctx, Problem, Versioned, Write};
