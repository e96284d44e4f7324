//! The store's activity (`/app/stores/{id}/activity`): its sync runs, the work that waits and the
//! dead letters, with the form that sends them again.
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::{
    flows::views::{self, ActivityView},
    state::AppState,
    web::{
        PageError,
        guard::{self, StorePage},
        html,
        nav::StoreNav,
        session,
    },
};

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    sandbox: bool,
    nav: StoreNav,
    store_id: String,
    store_name: String,
    csrf: String,
    view: ActivityView,
}

pub async fn activity(
    StorePage { store, session }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let db = &state.deps.db;
    let row = guard::installed(db, &store).await?;
    let view = views::activity(db, &store).await?;
    html(&ActivityPage {
        sandbox: state.deps.settings.sandbox.enabled,
        nav: StoreNav::at(store.as_str(), "activity"),
        store_id: store.as_str().to_owned(),
        store_name: row.name,
        csrf: session::csrf_token(&session),
        view,
    })
}
