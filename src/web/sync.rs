//! The merchant's sync actions: "Sync now", the sales basis, the dead letters, and in the sandbox,
//! shoppers clicking every link so that there is something to sync.
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::{
    flows::{push, scheduler, sync::orders},
    state::AppState,
    store::{JobStatus, SalesBasis, links, stores},
    web::{
        PageError,
        guard::{CsrfForm, StoreForm, WithCsrf},
        session::{back_to_settings, back_to_setup},
    },
};

/// `POST /app/stores/{id}/sync`: the trailing 60 days, now.
pub async fn sync_now(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let asked = scheduler::enqueue_now(&state.deps, &store, None, "manual").await?;
    if asked.queued {
        return Ok(back_to_setup(
            &session,
            &store,
            "Sync queued: Amazon's figures of the last 60 days are being read and the orders updated. Reload in a moment.",
        ));
    }
    // A click while a sync waits or runs adds nothing: that sync reads the same days.
    let now = state.deps.clock.now();
    let when = match &asked.job {
        Some(job) if job.status == JobStatus::Pending && job.run_at > now => format!(
            " Its next try is at {} UTC.",
            job.run_at.format("%Y-%m-%d %H:%M")
        ),
        _ => String::new(),
    };
    Ok(back_to_setup(
        &session,
        &store,
        format!(
            "Nothing new queued: a sync is already queued or running.{when} Reload in a moment."
        ),
    ))
}

#[derive(Deserialize)]
pub struct BasisForm {
    csrf: String,
    basis: String,
}

impl WithCsrf for BasisForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /app/stores/{id}/sales-basis`: promoted products only, or promoted + brand halo.
pub async fn sales_basis(
    StoreForm {
        store,
        session,
        form,
    }: StoreForm<BasisForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let basis = match form.basis.as_str() {
        "promoted" => SalesBasis::Promoted,
        "total" => SalesBasis::Total,
        _ => return Err(PageError::BadRequest("choose promoted or total".into())),
    };
    let now = state.deps.clock.now();
    if !stores::set_sales_basis(&state.deps.db, &store, basis, now).await? {
        return Err(PageError::NotFound);
    }
    Ok(back_to_settings(
        &session,
        &store,
        "Saved. The next sync recomputes every day that is not final yet (the last 60 days); \
         each order it changes is updated in your program, which e-mails its affiliate.",
    ))
}

/// `POST /app/stores/{id}/sandbox/shoppers` (sandbox only): every link gets its first click at the
/// sandbox's Amazon, which from then on reports traffic and sales for it.
pub async fn sandbox_shoppers(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some(sandbox) = &state.sandbox else {
        return Err(PageError::NotFound);
    };
    let urls: Vec<String> = links::current(&state.deps.db, &store)
        .await?
        .into_iter()
        .map(|l| l.url)
        .collect();
    let message = match sandbox.shoppers_click(&urls) {
        Ok(n) => format!(
            "Sandbox: {n} links were clicked by shoppers. Click “Sync now” to read their sales."
        ),
        Err(why) => format!("Sandbox Amazon refused the clicks: {why}"),
    };
    Ok(back_to_setup(&session, &store, message))
}

/// `POST /app/stores/{id}/dead-letters/retry`: the merchant fixed the cause (an affiliate, a
/// setting in the program) and sends the refused pushes again.
pub async fn retry_dead_letters(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let n = push::retry_dead_letters(&state.deps.db, Some(&store), state.deps.clock.now()).await?;
    let message = format!("{n} refused push(es) queued again.");
    Ok(back_to_setup(&session, &store, message))
}

/// `POST /app/stores/{id}/held/apply`: the merchant accepts Amazon's reading for every held
/// decrease; each becomes a new version of its order and is pushed.
pub async fn apply_held(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let n = orders::apply_held(&state.deps.db, &store, state.deps.clock.now()).await?;
    let message =
        format!("{n} held decrease(s) applied; the orders are being updated in your program.");
    Ok(back_to_setup(&session, &store, message))
}

/// `POST /app/stores/{id}/held/discard`: the merchant keeps the orders as they are.
pub async fn discard_held(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let n = orders::discard_held(&state.deps.db, &store, state.deps.clock.now()).await?;
    let message = format!("{n} held decrease(s) discarded; the orders stay as they are.");
    Ok(back_to_setup(&session, &store, message))
}
