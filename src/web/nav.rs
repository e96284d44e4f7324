//! The store's navigation, shown on every page of the store:
//! Overview · Affiliates · Figures · Ledger · Activity · Settings (`templates/store_nav.html`).

/// The pages of the store, in the navigation's order: (id, title, path under the store).
pub const PAGES: [(&str, &str, &str); 6] = [
    ("overview", "Overview", ""),
    ("affiliates", "Affiliates", "/affiliates"),
    ("figures", "Figures", "/figures"),
    ("ledger", "Ledger", "/ledger"),
    ("activity", "Activity", "/activity"),
    ("settings", "Settings", "/settings"),
];

/// Which page of the store is open; the template marks it `aria-current="page"`.
pub struct StoreNav {
    pub store: String,
    /// One of the ids of [`PAGES`].
    pub current: &'static str,
    pub pages: &'static [(&'static str, &'static str, &'static str)],
}

impl StoreNav {
    /// The navigation of `store` with page `current` (an id of [`PAGES`]) open.
    pub fn at(store: &str, current: &'static str) -> Self {
        debug_assert!(PAGES.iter().any(|p| p.0 == current), "{current}");
        Self {
            store: store.to_owned(),
            current,
            pages: &PAGES,
        }
    }
}
