//! `GET /sandbox/program/orders`: what the app pushed into the simulated program, per store,
//! newest first, with every update it sent.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::program::major;
use super::world::{DemoStore, Order};
use super::{Sandbox, render};

struct OrderRow {
    number: String,
    affiliate: String,
    date: String,
    total: String,
    commission: String,
    status: String,
    created: String,
    history: Vec<String>,
}

struct StoreOrders {
    id: String,
    name: String,
    orders: Vec<OrderRow>,
}

#[derive(Template)]
#[template(path = "sandbox/orders.html")]
struct OrdersPage {
    filter: String,
    stores: Vec<StoreOrders>,
}

pub async fn orders_page(req: HttpRequest, sb: web::Data<Sandbox>) -> HttpResponse {
    let filter = super::form::first_params(req.query_string().as_bytes())
        .remove("store")
        .unwrap_or_default();
    let stores = sb.read(|s| {
        s.stores
            .iter()
            .filter(|st| filter.is_empty() || st.id == filter)
            .map(|st| {
                let mut orders: Vec<&Order> =
                    s.orders.iter().filter(|o| o.store_id == st.id).collect();
                orders.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
                let orders = orders.into_iter().map(|o| row(st, o)).collect();
                StoreOrders {
                    id: st.id.clone(),
                    name: st.name.clone(),
                    orders,
                }
            })
            .collect()
    });
    render(StatusCode::OK, &OrdersPage { filter, stores })
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
