//! The store's Overview (`/app/stores/{id}`) and Settings (`/app/stores/{id}/settings`) pages,
//! and the home page. Every store page answers only to the session of that store.
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::{
    domain::region::Region,
    flows::{
        connect::Choice,
        dashboard::{self, Daily, RECENT_DAYS},
        status::{self, HeldChange, SyncStatus},
    },
    state::AppState,
    store::{ConnectionStatus, connections, ledger, links, stores::StoreSummary},
    web::{
        PageError,
        charts::{self, Series},
        guard::{self, StorePage},
        html,
        nav::StoreNav,
        session,
    },
};

/// Held decreases the Overview lists; the rest are counted.
const HELD_SHOWN: usize = 20;

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    sandbox: bool,
    /// The sandbox's own CSRF token for its "Install a demo store" form.
    sandbox_csrf: String,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let token = state.sandbox.as_ref().map(|sb| sb.form_token(&req));
    let page = html(&Home {
        sandbox: token.is_some(),
        sandbox_csrf: token.as_ref().map(|t| t.token.clone()).unwrap_or_default(),
    })?;
    Ok(match token {
        Some(token) => token.bind(page),
        None => page,
    })
}

struct RegionOption {
    code: &'static str,
    label: &'static str,
}

fn regions() -> Vec<RegionOption> {
    Region::ALL
        .iter()
        .map(|r| RegionOption {
            code: r.as_str(),
            label: r.label(),
        })
        .collect()
}

/// What the Amazon blocks show (`templates/amazon_connect.html`).
struct AmazonView {
    /// `none`, or a connection status (`connected`, `choose_account`, `not_eligible`, `needs_reconnect`).
    status: String,
    region: String,
    account: String,
    problem: String,
    choices: Vec<Choice>,
}

impl AmazonView {
    fn of(connection: Option<connections::Connection>) -> Self {
        match connection {
            None => AmazonView {
                status: "none".into(),
                region: String::new(),
                account: String::new(),
                problem: String::new(),
                choices: vec![],
            },
            Some(c) => AmazonView {
                account: match (&c.advertiser_name, &c.country_code, c.profile_id) {
                    (Some(name), Some(country), Some(profile)) => {
                        format!("{name} · {country} · profile {profile}")
                    }
                    _ => String::new(),
                },
                choices: Choice::listed_on(&c),
                problem: c.problem.unwrap_or_default(),
                region: c.region,
                status: c.status.to_string(),
            },
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    sandbox: bool,
    nav: StoreNav,
    csrf: String,
    flash: String,
    store: StoreSummary,
    amazon: AmazonView,
    regions: Vec<RegionOption>,
    /// Current links; 0 until Amazon is connected and a landing page is set.
    links: usize,
    status: SyncStatus,
    recent: Daily,
    recent_days: u64,
    /// Daily sales of the last 30 days (inline SVG).
    chart: String,
    held: Vec<HeldChange>,
    held_count: usize,
    unmatched: u64,
    /// With the sandbox on: its program's orders page of this store.
    program_orders: Option<String>,
}

pub async fn overview(
    StorePage { store, session }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    let row = guard::installed(db, &store).await?;
    let at = dashboard::basis(db, &store, state.deps.clock.now())
        .await?
        .ok_or(PageError::NotFound)?;
    let recent = dashboard::daily(db, &store, at, RECENT_DAYS, None).await?;
    let b = &recent.basis;
    let chart = charts::bars(&Series {
        unit: &b.currency,
        points: recent
            .days
            .iter()
            .map(|d| (d.day, b.major(d.line.sales_minor)))
            .collect(),
    })?;
    let connection = connections::find(db, &store).await?;
    let links = match &connection {
        Some(c) if c.status == ConnectionStatus::Connected => {
            links::count_current(db, &store).await? as usize
        }
        _ => 0,
    };
    let mut held = status::held_changes(db, &store).await?;
    let held_count = held.len();
    held.truncate(HELD_SHOWN);
    html(&Overview {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "overview"),
        csrf: session::csrf_token(&session),
        flash: session::take_flash(&session).unwrap_or_default(),
        store: crate::store::stores::summary(db, row).await?,
        amazon: AmazonView::of(connection),
        regions: regions(),
        links,
        status: status::store_status(db, &store).await?,
        recent,
        recent_days: RECENT_DAYS,
        chart,
        held,
        held_count,
        unmatched: ledger::count_unmatched(db, &store).await?,
        program_orders: state
            .sandbox
            .as_ref()
            .map(|sb| sb.program_orders_url(store.as_str()).to_string()),
    })
}

struct LandingRow {
    id: String,
    url: String,
    is_main: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct Settings {
    sandbox: bool,
    nav: StoreNav,
    csrf: String,
    flash: String,
    store: StoreSummary,
    amazon: AmazonView,
    regions: Vec<RegionOption>,
    landing_pages: Vec<LandingRow>,
    sales_basis: String,
    /// `[sync] push_after_days`: the age in days at which a day's order is first pushed.
    push_after_days: u32,
}

pub async fn settings(
    StorePage { store, session }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    let row = guard::installed(db, &store).await?;
    let sales_basis = row.sales_basis.to_string();
    let connection = connections::find(db, &store).await?;
    let landing_pages = match &connection {
        Some(c) if c.status == ConnectionStatus::Connected => links::landing_pages(db, &store)
            .await?
            .into_iter()
            .map(|p| LandingRow {
                id: p.id,
                url: p.url,
                is_main: p.is_main,
            })
            .collect(),
        _ => vec![],
    };
    html(&Settings {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "settings"),
        csrf: session::csrf_token(&session),
        flash: session::take_flash(&session).unwrap_or_default(),
        store: crate::store::stores::summary(db, row).await?,
        amazon: AmazonView::of(connection),
        regions: regions(),
        landing_pages,
        sales_basis,
        push_after_days: state.deps.settings.sync.push_after_days,
    })
}
