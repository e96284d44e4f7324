//! The store's affiliates (`/app/stores/{id}/affiliates`: searchable, sortable, paged, each with
//! its link and last 30 days) and one affiliate (`/app/stores/{id}/affiliates/{affiliate_id}`: its
//! links, its 60 days as a chart and a table, the order of each day).
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    flows::dashboard::{self, AffiliateLine, AffiliatePage, WINDOW_DAYS, Window},
    state::AppState,
    web::{
        PageError,
        charts::{self, Series},
        guard::StorePage,
        html,
        nav::StoreNav,
    },
};

/// Affiliates per page.
pub const PER_PAGE: usize = 100;

/// The columns the list sorts by: (query value, header).
const SORTS: [(&str, &str); 6] = [
    ("id", "ID"),
    ("name", "Name"),
    ("clicks", "Clicks"),
    ("purchases", "Purchases"),
    ("sales", "Sales"),
    ("commission", "Commission"),
];

#[derive(Debug, Default, Deserialize)]
pub struct AffiliatesQuery {
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
}

/// A column header: its sort link, and how the list is sorted by it now (`aria-sort`).
struct Header {
    title: &'static str,
    link: String,
    /// `ascending`, `descending` or `none`.
    aria_sort: &'static str,
}

#[derive(Template)]
#[template(path = "affiliates.html")]
struct AffiliatesList {
    sandbox: bool,
    nav: StoreNav,
    store_id: String,
    window: Window,
    currency: String,
    search: String,
    headers: Vec<Header>,
    rows: Vec<AffiliateLine>,
    /// How many affiliates the search lets through, on every page.
    matching: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
}

fn link(search: &str, sort: &str, desc: bool, page: usize) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if !search.is_empty() {
        q.append_pair("q", search);
    }
    q.append_pair("sort", sort);
    q.append_pair("dir", if desc { "desc" } else { "asc" });
    q.append_pair("page", &page.to_string());
    format!("?{}", q.finish())
}

/// Whether the affiliate's id, name or referral code contains `search` (any case).
fn matches(a: &AffiliateLine, search: &str) -> bool {
    let s = search.to_lowercase();
    a.affiliate_id.to_string() == s
        || a.name.to_lowercase().contains(&s)
        || a.ref_code.to_lowercase().contains(&s)
}

fn sort(rows: &mut [AffiliateLine], by: &str, desc: bool) {
    rows.sort_by(|a, b| {
        let order = match by {
            "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            "clicks" => a.line.clicks.cmp(&b.line.clicks),
            "purchases" => a.line.purchases.cmp(&b.line.purchases),
            "sales" => a.line.sales_minor.cmp(&b.line.sales_minor),
            "commission" => a.line.commission_minor.cmp(&b.line.commission_minor),
            _ => std::cmp::Ordering::Equal,
        }
        .then(a.affiliate_id.cmp(&b.affiliate_id));
        if desc { order.reverse() } else { order }
    });
}

pub async fn affiliates(
    StorePage { store, .. }: StorePage,
    query: web::Query<AffiliatesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    let at = dashboard::basis(db, &store, state.deps.clock.now())
        .await?
        .ok_or(PageError::NotFound)?;
    let currency = at.0.currency.clone();
    let (window, mut rows) = dashboard::affiliates(db, &store, at).await?;
    let search = query.q.as_deref().unwrap_or("").trim().to_owned();
    if !search.is_empty() {
        rows.retain(|a| matches(a, &search));
    }
    let by = query
        .sort
        .as_deref()
        .and_then(|s| SORTS.iter().find(|(v, _)| *v == s))
        .map_or("id", |(v, _)| *v);
    let desc = query.dir.as_deref() == Some("desc");
    sort(&mut rows, by, desc);
    let matching = rows.len();
    let pages = matching.div_ceil(PER_PAGE).max(1);
    let page = match query.page.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| PageError::BadRequest("the page is not valid".into()))?
            .min(pages),
    };
    let rows = rows
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let headers = SORTS
        .iter()
        .map(|(value, title)| {
            let current = *value == by;
            Header {
                title,
                // A second click on the sorted column turns the order round; numbers start highest.
                link: link(
                    &search,
                    value,
                    if current {
                        !desc
                    } else {
                        !matches!(*value, "id" | "name")
                    },
                    1,
                ),
                aria_sort: match (current, desc) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
            }
        })
        .collect();
    html(&AffiliatesList {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "affiliates"),
        store_id: store.as_str().to_owned(),
        window,
        currency,
        headers,
        rows,
        matching,
        page,
        pages,
        prev: (page > 1).then(|| link(&search, by, desc, page - 1)),
        next: (page < pages).then(|| link(&search, by, desc, page + 1)),
        search,
    })
}

#[derive(Template)]
#[template(path = "affiliate.html")]
struct AffiliateView {
    sandbox: bool,
    nav: StoreNav,
    store_id: String,
    page: AffiliatePage,
    window_days: u64,
    /// The daily sales chart (inline SVG).
    chart: String,
}

pub async fn affiliate(
    StorePage { store, .. }: StorePage,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    let affiliate_id: i64 = path.1.parse().map_err(|_| PageError::NotFound)?;
    let at = dashboard::basis(db, &store, state.deps.clock.now())
        .await?
        .ok_or(PageError::NotFound)?;
    let page = dashboard::affiliate(db, &store, at, affiliate_id)
        .await?
        .ok_or(PageError::NotFound)?;
    let basis = &page.daily.basis;
    let chart = charts::bars(&Series {
        unit: &basis.currency,
        points: page
            .daily
            .days
            .iter()
            .map(|d| (d.day, basis.major(d.line.sales_minor)))
            .collect(),
    })?;
    html(&AffiliateView {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "affiliates"),
        store_id: store.as_str().to_owned(),
        page,
        window_days: WINDOW_DAYS,
        chart,
    })
}
