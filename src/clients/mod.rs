//! Adapters to the outside: Amazon (Login with Amazon, the Ads API, the report) and the affiliate
//! program's admin API. Each is built from its own settings and the shared HTTP policy (`http`);
//! they know neither each other nor the sandbox nor the workflows that call them.
pub mod amazon;
pub mod http;
pub mod lenient;
pub mod pace;
pub mod program;
pub mod resolve;
