//! The OMS domain shared by the handler binaries in `src/bin/`: each of those
//! files is one operation's whole logic; this library holds what several of
//! them need (the stored shapes, money, the status machine, the group commit
//! that moves stock, settling, and deriving events from the bucket).

pub mod derive;
pub mod events;
pub mod group;
pub mod ledger;
pub mod model;
pub mod money;
pub mod read_model;
pub mod settle;
pub mod status;

pub use oms_runtime::{contract, run, run_with, run_worker, Ctx, Problem, Versioned, Write};
