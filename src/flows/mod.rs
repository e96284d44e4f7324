//! The use cases: connect Amazon, mint links, read the roster, sync a store, push its orders,
//! schedule the daily work. They call `store` and `clients` through explicit arguments.
pub mod connect;
pub mod links;
pub mod push;
pub mod roster;
pub mod scheduler;
pub mod status;
pub mod sync;
pub mod tokens;
