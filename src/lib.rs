//! attribution-bridge: Amazon Attribution for affiliate programs.
//!
//! `domain` holds the rules (money, commissions, ids), `store` every query, `clients` the
//! adapters to Amazon and the program, `flows` the use cases, `jobs` the queue that runs them,
//! `web` and `webhooks` the thin HTTP surface, `sandbox` a local Amazon and program.
#![forbid(unsafe_code)]

pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod flows;
pub mod jobs;
pub mod metrics;
pub mod sandbox;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webhooks;

pub use startup::Application;
