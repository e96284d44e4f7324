//! `GET /sandbox/program/orders[?store=ID][&page=N]`: what the app pushed into the simulated
//! program, newest day first, 50 a page, with every update it sent.
use std::cmp::Reverse;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::program::major;
use super::world::{DemoStore, Order};
use super::{Sandbox, error_page, render, see_other};

const PER_PAGE: usize = 50;

struct OrderRow {
    store: String,
    number: String,
    affiliate: String,
    date: String,
    total: String,
    commission: String,
    status: String,
    created: String,
    history: Vec<String>,
}

/// A store in the page's chooser, with how many orders the program holds for it.
struct StoreLink {
    id: String,
    name: String,
    orders: usize,
}

#[derive(Template)]
#[template(path = "sandbox/orders.html")]
struct OrdersPage {
    /// The store shown, or empty for every store.
    filter: String,
    stores: Vec<StoreLink>,
    orders: Vec<OrderRow>,
    total: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
}

/// The page's own query string: the same store, page `page`.
fn link(store: &str, page: usize) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if !store.is_empty() {
        q.append_pair("store", store);
    }
    q.append_pair("page", &page.to_string());
    format!("/sandbox/program/orders?{}", q.finish())
}

pub async fn orders_page(req: HttpRequest, sb: web::Data<Sandbox>) -> HttpResponse {
    let mut params = super::form::first_params(req.query_string().as_bytes());
    let filter = params.remove("store").unwrap_or_default();
    let page = match params.remove("page").filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                let msg = "The page is a whole number from 1 on: ?page=1 is the newest orders.";
                return error_page(StatusCode::BAD_REQUEST, "No such page", msg);
            }
        },
    };
    let (stores, total, orders) = sb.read(|s| {
        let stores: Vec<StoreLink> = s
            .stores
            .iter()
            .map(|st| StoreLink {
                id: st.id.clone(),
                name: st.name.clone(),
                orders: s.orders.iter().filter(|o| o.store_id == st.id).count(),
            })
            .collect();
        let mut orders: Vec<(&Order, &DemoStore)> = s
            .orders
            .iter()
            .filter(|o| filter.is_empty() || o.store_id == filter)
            .filter_map(|o| Some((o, s.stores.iter().find(|st| st.id == o.store_id)?)))
            .collect();
        // Newest day first (YYYY-MM-DD sorts as days); within a day, the last received first.
        orders.sort_by_key(|(o, _)| Reverse((o.date.as_deref(), o.created_at, o.id)));
        let rows: Vec<OrderRow> = orders
            .iter()
            .skip((page - 1).saturating_mul(PER_PAGE))
            .take(PER_PAGE)
            .map(|(o, st)| row(st, o))
            .collect();
        (stores, orders.len(), rows)
    });
    if !filter.is_empty() && !stores.iter().any(|st| st.id == filter) {
        let msg = format!("There is no demo store {filter}. The control room installs them.");
        return error_page(StatusCode::NOT_FOUND, "No such demo store", &msg);
    }
    let pages = total.div_ceil(PER_PAGE).max(1);
    if page > pages {
        // Past the end (the list shrank, or a hand-typed page): the last page, at its address.
        return see_other(sb.url(&link(&filter, pages)).as_str());
    }
    render(
        StatusCode::OK,
        &OrdersPage {
            prev: (page > 1).then(|| link(&filter, page - 1)),
            next: (page < pages).then(|| link(&filter, page + 1)),
            filter,
            stores,
            orders,
            total,
            page,
            pages,
        },
    )
}

fn row(store: &DemoStore, o: &Order) -> OrderRow {
    let affiliate = o.affiliate_id.map_or_else(String::new, |id| {
        let name = store
            .affiliates
            .iter()
            .find(|a| a.id == id)
            .map_or("?", |a| a.name.as_str());
        format!("{name} (#{id})")
    });
    let history = o
        .history
        .iter()
        .rev()
        .map(|u| {
            let at = u.at.format("%Y-%m-%d %H:%M UTC");
            if u.changes.is_empty() {
                return format!("{at}: update with no change (the affiliate was e-mailed anyway)");
            }
            let parts: Vec<String> = u
                .changes
                .iter()
                .map(|c| format!("{} {} → {}", c.field, c.from, c.to))
                .collect();
            format!("{at}: {}", parts.join(", "))
        })
        .collect();
    OrderRow {
        store: format!("{} ({})", store.name, store.id),
        number: o.number.clone(),
        affiliate,
        date: o.date.clone().unwrap_or_default(),
        total: format!("{} {}", major(o.total, &o.currency), o.currency),
        commission: format!("{} {}", major(o.commission, &o.currency), o.currency),
        status: o.status.clone(),
        created: o.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        history,
    }
}
