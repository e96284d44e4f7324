//! The persistence layer: every query of the app. Store-scoped finders take a `StoreId` and
//! cannot forget it.
pub mod affiliates;
pub mod stores;
