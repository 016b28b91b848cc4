//! The bidirectional sync engine of vcluster-rs and its built-in syncers.
#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod metadata;
pub mod patch;
pub mod queue;
pub mod runner;
pub mod scope;
pub mod syncer;
pub mod syncers;
pub mod writes;
