//! The store's navigation, shown on every page of the store: Overview · Ledger · Activity.

/// Which page of the store is open; `templates/store_nav.html` marks it `aria-current="page"`.
pub struct StoreNav {
    pub store: String,
    /// `overview`, `ledger` or `activity`.
    pub current: &'static str,
}

impl StoreNav {
    pub fn overview(store: &str) -> Self {
        Self::at(store, "overview")
    }

    pub fn ledger(store: &str) -> Self {
        Self::at(store, "ledger")
    }

    pub fn activity(store: &str) -> Self {
        Self::at(store, "activity")
    }

    fn at(store: &str, current: &'static str) -> Self {
        Self {
            store: store.to_owned(),
            current,
        }
    }
}
