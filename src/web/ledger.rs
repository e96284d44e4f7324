//! The store's ledger (`/app/stores/{id}/ledger`, filtered and paged) and one order's history
//! (`/app/stores/{id}/ledger/{number}`).
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::{
    flows::views::{self, LedgerView, OrderFilter, OrderHistory},
    state::AppState,
    store::PushState,
    web::{
        PageError,
        guard::{self, StorePage},
        html,
        nav::StoreNav,
    },
};

/// The push states the filter offers, as the page names them.
const STATES: [PushState; 4] = [
    PushState::Pushed,
    PushState::Waiting,
    PushState::Pending,
    PushState::Dead,
];

/// The ledger's query string, as typed: an empty field means "any".
#[derive(Debug, Default, Deserialize)]
pub struct LedgerQuery {
    page: Option<String>,
    affiliate: Option<String>,
    from: Option<String>,
    to: Option<String>,
    state: Option<String>,
}

/// A field's value, `None` when absent or blank; a value that does not parse is a 400 naming it.
fn field<T>(
    value: &Option<String>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, PageError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .ok_or_else(|| PageError::BadRequest(format!("{name} is not valid"))),
    }
}

impl LedgerQuery {
    fn filter(&self) -> Result<(OrderFilter, u64), PageError> {
        let day = |v: &str| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok();
        let filter = OrderFilter {
            affiliate_id: field(&self.affiliate, "the affiliate", |v| v.parse().ok())?,
            from: field(&self.from, "the first day", day)?,
            to: field(&self.to, "the last day", day)?,
            push_state: field(&self.state, "the push state", |v| {
                STATES.into_iter().find(|s| s.as_str() == v)
            })?,
        };
        let page = field(&self.page, "the page", |v| {
            v.parse::<u64>().ok().filter(|p| *p >= 1)
        })?
        .unwrap_or(1);
        Ok((filter, page))
    }
}

/// The query string of the same filter on another page.
fn page_link(filter: &OrderFilter, page: u64) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(a) = filter.affiliate_id {
        q.append_pair("affiliate", &a.to_string());
    }
    if let Some(d) = filter.from {
        q.append_pair("from", &d.to_string());
    }
    if let Some(d) = filter.to {
        q.append_pair("to", &d.to_string());
    }
    if let Some(s) = filter.push_state {
        q.append_pair("state", s.as_str());
    }
    q.append_pair("page", &page.to_string());
    format!("?{}", q.finish())
}

struct StateOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "ledger.html")]
struct LedgerPage {
    sandbox: bool,
    nav: StoreNav,
    store_id: String,
    store_name: String,
    view: LedgerView,
    /// The filter as the form shows it again.
    affiliate: String,
    from: String,
    to: String,
    states: Vec<StateOption>,
    filtered: bool,
    prev: Option<String>,
    next: Option<String>,
}

pub async fn ledger(
    StorePage { store, .. }: StorePage,
    query: web::Query<LedgerQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    let row = guard::installed(db, &store).await?;
    let (filter, page) = query.filter()?;
    let now = state.deps.clock.now();
    let view = views::ledger_page(db, &store, &filter, page, now).await?;
    let show = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    html(&LedgerPage {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "ledger"),
        store_id: store.as_str().to_owned(),
        store_name: row.name,
        affiliate: filter
            .affiliate_id
            .map(|a| a.to_string())
            .unwrap_or_default(),
        from: show(filter.from),
        to: show(filter.to),
        states: STATES
            .iter()
            .map(|s| StateOption {
                value: s.as_str(),
                selected: filter.push_state == Some(*s),
            })
            .collect(),
        filtered: filter != OrderFilter::default(),
        prev: (view.page > 1).then(|| page_link(&filter, (view.page - 1).min(view.pages))),
        next: (view.page < view.pages).then(|| page_link(&filter, view.page + 1)),
        view,
    })
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    sandbox: bool,
    nav: StoreNav,
    store_id: String,
    order: OrderHistory,
}

pub async fn order(
    StorePage { store, .. }: StorePage,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    guard::installed(db, &store).await?;
    let (_, number) = path.into_inner();
    let order = views::order_history(db, &store, &number, state.deps.clock.now())
        .await?
        .ok_or(PageError::NotFound)?;
    html(&OrderPage {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "ledger"),
        store_id: store.as_str().to_owned(),
        order,
    })
}
