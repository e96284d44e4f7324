//! The store's figures (`/app/stores/{id}/figures`): Amazon's daily clicks, purchases, sales, the
//! commission computed from them and the Brand Referral Bonus estimate over the 60-day window, as
//! charts above the table of the same numbers, and as CSV (`/app/stores/{id}/figures.csv`).
use actix_web::{HttpResponse, http::header, web};
use askama::Template;

use crate::{
    flows::dashboard::{self, Daily, Line, WINDOW_DAYS},
    state::AppState,
    web::{
        PageError,
        charts::{self, Series},
        guard::StorePage,
        html,
        nav::StoreNav,
    },
};

/// A chart's id, title, unit, value of a day and whether that value is money (minor units).
type Metric<'a> = (&'static str, &'static str, &'a str, fn(&Line) -> i64, bool);

/// One chart of the page: its id, heading and inline SVG.
struct Chart {
    id: &'static str,
    title: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "figures.html")]
struct FiguresPage {
    sandbox: bool,
    nav: StoreNav,
    store_id: String,
    daily: Daily,
    /// `"promoted"` or `"total"`: what "sales" means here.
    basis: String,
    charts: Vec<Chart>,
}

async fn window(store: &crate::domain::ids::StoreId, state: &AppState) -> Result<Daily, PageError> {
    let db = &state.deps.db;
    let at = dashboard::basis(db, store, state.deps.clock.now())
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(dashboard::daily(db, store, at, WINDOW_DAYS, None).await?)
}

pub async fn figures(
    StorePage { store, .. }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let daily = window(&store, &state).await?;
    let b = &daily.basis;
    let cur = b.currency.as_str();
    let metrics: [Metric<'_>; 5] = [
        ("chart-clicks", "Clicks", "clicks", |l| l.clicks, false),
        (
            "chart-purchases",
            "Purchases",
            "purchases",
            |l| l.purchases,
            false,
        ),
        ("chart-sales", "Sales", cur, |l| l.sales_minor, true),
        (
            "chart-commission",
            "Commission",
            cur,
            |l| l.commission_minor,
            true,
        ),
        (
            "chart-brb",
            "Brand Referral Bonus (estimate)",
            cur,
            |l| l.brb_minor,
            true,
        ),
    ];
    let mut charts = Vec::with_capacity(metrics.len());
    for (id, title, unit, value, is_money) in metrics {
        let points = daily
            .days
            .iter()
            .map(|d| {
                let v = value(&d.line);
                (d.day, if is_money { b.major(v) } else { v as f64 })
            })
            .collect();
        charts.push(Chart {
            id,
            title: if is_money {
                format!("{title} ({cur})")
            } else {
                title.to_owned()
            },
            svg: charts::bars(&Series { unit, points })?,
        });
    }
    html(&FiguresPage {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "figures"),
        store_id: store.as_str().to_owned(),
        basis: b.sales.to_string(),
        daily,
        charts,
    })
}

/// `GET /app/stores/{id}/figures.csv`: the Figures table.
pub async fn figures_csv(
    StorePage { store, .. }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let daily = window(&store, &state).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"amazon-figures-{store}-{}-{}.csv\"",
                daily.window.from, daily.window.to
            ),
        ))
        .body(daily.to_csv()))
}
