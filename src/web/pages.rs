//! Merchant pages. Every `/app/stores/{id}` page answers only to the session of that store.
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::{
    domain::region::Region,
    flows::{
        connect::Choice,
        links::CurrentLink,
        status::{self, HeldChange, LedgerEntry, SyncStatus},
    },
    state::AppState,
    store::stores::StoreSummary,
    web::{PageError, guard::StorePage, html, nav::StoreNav, session},
};

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

struct AffiliateRow {
    id: i64,
    name: String,
    ref_code: String,
    status: String,
}

struct RegionOption {
    code: &'static str,
    label: &'static str,
}

struct LandingRow {
    id: String,
    url: String,
    is_main: bool,
}

/// What the Amazon section shows.
struct AmazonView {
    /// `none`, or a connection status (`connected`, `choose_account`, `not_eligible`, `needs_reconnect`).
    status: String,
    region: String,
    account: String,
    problem: String,
    choices: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct Setup {
    sandbox: bool,
    nav: StoreNav,
    csrf: String,
    flash: String,
    store: StoreSummary,
    affiliates: Vec<AffiliateRow>,
    amazon: AmazonView,
    regions: Vec<RegionOption>,
    landing_pages: Vec<LandingRow>,
    links: Vec<CurrentLink>,
    status: SyncStatus,
    sales_basis: String,
    recent: Vec<LedgerEntry>,
    unmatched: u64,
    held: Vec<HeldChange>,
}

pub async fn setup(
    StorePage {
        store: store_id,
        session,
    }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let page = status::store_page(&state.deps.db, &store_id, 50)
        .await?
        .ok_or(PageError::NotFound)?;
    let amazon = match page.connection {
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
    };
    html(&Setup {
        status: page.sync,
        sales_basis: page.sales_basis.to_string(),
        recent: page.recent,
        unmatched: page.unmatched,
        held: page.held,
        nav: StoreNav::overview(store_id.as_str()),
        sandbox: state.deps.settings.sandbox.enabled,
        csrf: session::csrf_token(&session),
        flash: session::take_flash(&session).unwrap_or_default(),
        store: page.store,
        affiliates: page
            .affiliates
            .into_iter()
            .map(|a| AffiliateRow {
                id: a.affiliate_id,
                name: a.name,
                ref_code: a.ref_code.unwrap_or_default(),
                status: a.status,
            })
            .collect(),
        amazon,
        regions: Region::ALL
            .iter()
            .map(|r| RegionOption {
                code: r.as_str(),
                label: r.label(),
            })
            .collect(),
        landing_pages: page
            .landing_pages
            .into_iter()
            .map(|p| LandingRow {
                id: p.id,
                url: p.url,
                is_main: p.is_main,
            })
            .collect(),
        links: page.links,
    })
}
