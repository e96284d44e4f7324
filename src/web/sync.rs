//! The merchant's sync actions: "Sync now", the sales basis, and in the sandbox, shoppers clicking
//! every link so that there is something to sync.
use actix_session::Session;
use actix_web::{HttpResponse, web};
use entity::stores as store_rows;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde::Deserialize;

use crate::{
    flows::{links, scheduler},
    state::AppState,
    web::{
        PageError,
        pages::authorize_form,
        session::{CsrfForm, flash},
        to_setup,
    },
};

/// `POST /app/stores/{id}/sync`: the trailing 60 days, now.
pub async fn sync_now(
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store = authorize_form(&session, &path, &form.csrf)?;
    scheduler::enqueue_now(&state, &store, None, "manual").await?;
    flash(
        &session,
        "Sync queued: Amazon's figures of the last 60 days are being read and the orders updated. Reload in a moment.",
    );
    Ok(to_setup(&store))
}

#[derive(Deserialize)]
pub struct BasisForm {
    csrf: String,
    basis: String,
}

/// `POST /app/stores/{id}/sales-basis`: promoted products only, or promoted + brand halo.
pub async fn sales_basis(
    path: web::Path<String>,
    form: web::Form<BasisForm>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store = authorize_form(&session, &path, &form.csrf)?;
    let basis = match form.basis.as_str() {
        "promoted" | "total" => form.basis.clone(),
        _ => return Err(PageError::BadRequest("choose promoted or total".into())),
    };
    let row = store_rows::Entity::find_by_id(store.as_str())
        .one(&state.db)
        .await?
        .ok_or(PageError::NotFound)?;
    let mut row: store_rows::ActiveModel = row.into();
    row.sales_basis = Set(basis);
    row.updated_at = Set(state.clock.now());
    row.update(&state.db).await?;
    flash(
        &session,
        "Saved. The next sync recomputes every day that is not final yet (the last 60 days).",
    );
    Ok(to_setup(&store))
}

/// `POST /app/stores/{id}/sandbox/shoppers` (sandbox only): every link gets its first click at the
/// sandbox's Amazon, which from then on reports traffic and sales for it.
pub async fn sandbox_shoppers(
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store = authorize_form(&session, &path, &form.csrf)?;
    if state.sandbox.is_none() {
        return Err(PageError::NotFound);
    }
    let urls: Vec<String> = links::list(&state.db, &store)
        .await?
        .into_iter()
        .map(|l| l.url)
        .collect();
    let target = state
        .settings
        .server
        .public_url
        .join("/sandbox/amazon/clicks")
        .map_err(anyhow::Error::from)?;
    let res = state
        .amazon
        .http
        .post(target)
        .json(&serde_json::json!({ "links": urls }))
        .send()
        .await
        .map_err(anyhow::Error::from)?;
    if res.status().is_success() {
        flash(
            &session,
            format!(
                "Sandbox: {} links were clicked by shoppers. Click “Sync now” to read their sales.",
                urls.len()
            ),
        );
    } else {
        flash(
            &session,
            format!("Sandbox Amazon refused the clicks ({}).", res.status()),
        );
    }
    Ok(to_setup(&store))
}

/// `POST /app/stores/{id}/dead-letters/retry`: the merchant fixed the cause (an affiliate, a
/// setting in the program) and sends the refused pushes again.
pub async fn retry_dead_letters(
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store = authorize_form(&session, &path, &form.csrf)?;
    let n = crate::jobs::retry_dead_letters(&state.db, Some(&store), state.clock.now()).await?;
    flash(&session, format!("{n} refused push(es) queued again."));
    Ok(to_setup(&store))
}
