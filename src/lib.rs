//! attribution-bridge: Amazon Attribution for affiliate programs.
//!
//! The platform installs the app into a merchant's program with signed webhooks (`webhooks`), the
//! merchant opens it through a signed load link (`web`), and the app keeps the store's state
//! (`stores`, `affiliates`) with tokens sealed at rest (`crypto`).
#![forbid(unsafe_code)]

pub mod affiliates;
pub mod amazon;
pub mod cli;
pub mod clock;
pub mod commission;
pub mod config;
pub mod crypto;
pub mod currency;
pub mod db;
pub mod ids;
pub mod jobs;
pub mod links;
pub mod metrics;
pub mod money;
pub mod program;
pub mod retry;
pub mod roster;
pub mod sandbox;
pub mod scheduler;
pub mod startup;
pub mod state;
pub mod status;
pub mod stores;
pub mod sync;
pub mod telemetry;
pub mod web;
pub mod webhooks;

pub use startup::Application;
