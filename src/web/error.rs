//! Errors of the merchant pages, each a deliberate status with a page a person can act on.
use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use askama::Template;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session, or it expired: the merchant must come through the signed load link.
    #[error("no merchant session")]
    NoSession,
    #[error("the link is invalid or has expired")]
    BadLink,
    /// Another store's page, or a store that does not exist: indistinguishable on purpose.
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A form without this session's CSRF token.
    #[error("the form is stale or was not sent from this app")]
    Csrf,
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    sandbox: bool,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NoSession | Self::BadLink => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
            Self::NoSession => (
                "Please open the app from your program",
                "Your session has ended. Open Settings > Integrations > Amazon Attribution > Setup in your affiliate program to continue.".to_owned(),
            ),
            Self::BadLink => (
                "This link is invalid or has expired",
                "Open the app again from Settings > Integrations > Amazon Attribution > Setup in your affiliate program.".to_owned(),
            ),
            Self::NotFound => ("Not found", "There is no such page.".to_owned()),
            Self::BadRequest(detail) => ("Something in the request is wrong", detail.clone()),
            Self::Csrf => (
                "This form has expired",
                "Go back, reload the page and try again.".to_owned(),
            ),
            Self::Database(e) => {
                tracing::error!(error = %e, error.debug = ?e, "page failed on the database");
                ("Temporarily unavailable", "Please try again in a moment.".to_owned())
            }
            Self::Unexpected(e) => {
                tracing::error!(error = ?e, "page failed");
                ("Something went wrong", "Please try again; if it keeps happening, contact support.".to_owned())
            }
        };
        let body = ErrorPage {
            title,
            message: &message,
            sandbox: false,
        }
        .render()
        .unwrap_or_else(|_| title.to_owned());
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}
