//! The sandbox's own CSRF defence for its forms (the control room, the consent page, and the
//! home page's "Install a demo store"). It shares nothing with the app's sessions.
//!
//! A browser gets a random nonce in the `sandbox_csrf` cookie (HttpOnly, SameSite=Strict); each
//! form carries `csrf` = base64url(HMAC-SHA256(the sandbox's own webhook key, "sandbox-csrf." +
//! nonce)). A POST whose token is missing, or does not match its cookie, is answered 403 before
//! anything changes: another site can neither read the token nor set the cookie.
use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    dev::Payload,
    error::InternalError,
    http::StatusCode,
    web,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::{Sandbox, error_page, random_token};

/// The cookie that holds the browser's nonce.
pub const COOKIE: &str = "sandbox_csrf";
/// The form field that carries the token.
pub const FIELD: &str = "csrf";
const NONCE_LEN: usize = 32;

/// The token for the forms of one page, and the cookie it is bound to when the browser had none.
#[derive(Debug, Clone)]
pub struct FormToken {
    /// The value of each form's hidden `csrf` field.
    pub token: String,
    cookie: Option<Cookie<'static>>,
}

impl FormToken {
    /// `page` with the cookie the token is bound to, when the browser does not hold it yet.
    pub fn bind(&self, mut page: HttpResponse) -> HttpResponse {
        if let Some(cookie) = &self.cookie
            && let Err(e) = page.add_cookie(cookie)
        {
            tracing::error!(error = %e, "sandbox: could not set the CSRF cookie");
        }
        page
    }
}

fn is_nonce(value: &str) -> bool {
    value.len() == NONCE_LEN && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Sandbox {
    /// The token for the forms of a page answered to `req`: from the browser's nonce, or from a
    /// new one whose cookie the page must set ([`FormToken::bind`]).
    pub fn form_token(&self, req: &HttpRequest) -> FormToken {
        let held = req
            .cookie(COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| is_nonce(v));
        match held {
            Some(nonce) => FormToken {
                token: self.csrf_mac(&nonce),
                cookie: None,
            },
            None => {
                let nonce = random_token(NONCE_LEN);
                let token = self.csrf_mac(&nonce);
                let cookie = Cookie::build(COOKIE, nonce)
                    .path("/")
                    .http_only(true)
                    .same_site(SameSite::Strict)
                    .finish();
                FormToken {
                    token,
                    cookie: Some(cookie),
                }
            }
        }
    }

    fn mac(&self, nonce: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.inner.webhook_key.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(b"sandbox-csrf.");
        mac.update(nonce.as_bytes());
        mac
    }

    fn csrf_mac(&self, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(nonce).finalize().into_bytes())
    }

    /// Whether `token` is the one bound to the request's cookie (compared in constant time).
    pub(super) fn csrf_ok(&self, req: &HttpRequest, token: Option<&str>) -> bool {
        let (Some(cookie), Some(token)) = (req.cookie(COOKIE), token) else {
            return false;
        };
        let Ok(given) = URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        is_nonce(cookie.value()) && self.mac(cookie.value()).verify_slice(&given).is_ok()
    }
}

/// The 403 page of a form without a valid token.
pub(super) fn refused() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "This form was refused",
        "It did not come from this sandbox's own page, or the page is out of date. Nothing was \
         changed. Go back, reload the page and send the form again.",
    )
}

/// A sandbox form whose CSRF token matched its cookie, with its other fields as `T` (every
/// field a string; the first of repeated fields counts). Use `Checked<IgnoredAny>` for a form
/// that is only a button. Refused with 403 (no token, wrong token) or 400 (bad fields).
pub(super) struct Checked<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Checked<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await?;
            let mut fields = super::form::first_params(&body);
            let token = fields.remove(FIELD);
            let allowed = req
                .app_data::<web::Data<Sandbox>>()
                .is_some_and(|sb| sb.csrf_ok(&req, token.as_deref()));
            if !allowed {
                return Err(InternalError::from_response("CSRF token refused", refused()).into());
            }
            let fields = fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            serde_json::from_value(serde_json::Value::Object(fields))
                .map(Checked)
                .map_err(|e| {
                    let page = error_page(StatusCode::BAD_REQUEST, "Invalid form", &e.to_string());
                    InternalError::from_response("invalid form", page).into()
                })
        })
    }
}
