//! The rules of the trade, with no I/O: money and currencies, commissions, ids, Amazon's link
//! values, the clock. Nothing here knows the database, HTTP or the configuration.
pub mod affiliate;
pub mod clock;
pub mod commission;
pub mod currency;
pub mod figures;
pub mod hosts;
pub mod ids;
pub mod links;
pub mod money;
pub mod region;
pub mod text;
