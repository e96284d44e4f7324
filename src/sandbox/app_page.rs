//! `GET /sandbox/app`, where the sandbox's "The app" link leads: the installed demo stores, each
//! opened in the app through a fresh signed load link (`POST /demo-stores/{id}/open`), or the
//! install when none is installed. Following the link never installs another store.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::world::DemoStore;
use super::{Sandbox, render};

#[derive(Template)]
#[template(path = "sandbox/app.html")]
struct AppPage {
    csrf: String,
    installed: Vec<DemoStore>,
    /// Demo stores whose app was uninstalled: the control room installs them again.
    uninstalled: usize,
}

pub async fn app_page(req: HttpRequest, sb: web::Data<Sandbox>) -> HttpResponse {
    let token = sb.form_token(&req);
    let (installed, uninstalled): (Vec<DemoStore>, Vec<DemoStore>) =
        sb.read(|s| s.stores.iter().cloned().partition(|st| st.installed));
    let page = AppPage {
        csrf: token.token.clone(),
        installed,
        uninstalled: uninstalled.len(),
    };
    token.bind(render(StatusCode::OK, &page))
}
