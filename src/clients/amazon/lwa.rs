//! Login with Amazon: the consent URL (with `state` and PKCE S256) and the token endpoint, both
//! grants, with every documented error as its own variant. A 429 pauses this app's calls to the
//! token host for its `Retry-After`, as the Ads API's do.
use std::{
    fmt,
    time::{Duration, SystemTime},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::clients::{
    amazon::AmazonApp,
    http::{self, Caller, Retry, retry_after},
};

pub const SCOPE: &str = "advertising::campaign_management";

#[derive(Debug, thiserror::Error)]
pub enum LwaError {
    /// An expired, used or foreign code, or a revoked refresh token.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("Login with Amazon answered {status}: {detail}")]
    Other { status: u16, detail: String },
    #[error("Login with Amazon could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
}

impl LwaError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Other { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub struct Grant {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: i64,
}

#[derive(Deserialize)]
struct RawGrant {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default, deserialize_with = "crate::clients::lenient::opt_text")]
    expires_in: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `base64url(SHA-256(verifier))`, the S256 challenge.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn consent_url(authorize: &Url, app: &AmazonApp, state: &str, verifier: &str) -> Url {
    let mut url = authorize.clone();
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("scope", SCOPE)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", app.redirect_uri.as_str())
        .append_pair("state", state)
        .append_pair("code_challenge", &challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    url
}

pub async fn exchange_code(
    app: &AmazonApp,
    token_url: &Url,
    code: &str,
    verifier: &str,
) -> Result<Grant, LwaError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", app.redirect_uri.as_str()),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.expose_secret()),
        ("code_verifier", verifier),
    ];
    post(app, token_url, &form).await
}

pub async fn refresh(
    app: &AmazonApp,
    token_url: &Url,
    refresh_token: &SecretString,
) -> Result<Grant, LwaError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose_secret()),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.expose_secret()),
    ];
    post(app, token_url, &form).await
}

/// A failed token call, the `Retry-After` of its answer and its status, when it had one.
struct Failed {
    error: LwaError,
    retry_after: Option<Duration>,
    status: Option<u16>,
}

impl Failed {
    fn retry(&self) -> Retry {
        match &self.error {
            LwaError::Other { status: 429, .. } => Retry::Throttled(self.retry_after),
            LwaError::Other { status, .. } if *status >= 500 => Retry::Later {
                status: Some(*status),
                overloaded: false,
            },
            LwaError::Transport(e) => Retry::transport(e),
            _ => Retry::Never {
                status: self.status,
            },
        }
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

async fn post(app: &AmazonApp, token_url: &Url, form: &[(&str, &str)]) -> Result<Grant, LwaError> {
    // Throttling at Login with Amazon is the app's: its client id is the credential.
    let caller = Caller::new(token_url, &format!("lwa-client:{}", app.client_id));
    http::call(
        app.retry,
        &app.pauses,
        &caller,
        &*app.observer,
        Failed::retry,
        || post_once(app, token_url, form),
    )
    .await
    .map_err(|failed| failed.error)
}

async fn post_once(
    app: &AmazonApp,
    token_url: &Url,
    form: &[(&str, &str)],
) -> Result<Grant, Failed> {
    let failed = |error| Failed {
        error,
        retry_after: None,
        status: None,
    };
    let res = app
        .http
        .post(token_url.clone())
        .form(form)
        .send()
        .await
        .map_err(|e| failed(LwaError::Transport(e)))?;
    let status = res.status();
    let after = retry_after(res.headers(), SystemTime::now());
    let text = res
        .text()
        .await
        .map_err(|e| failed(LwaError::Transport(e)))?;
    read(status, &text).map_err(|error| Failed {
        error,
        retry_after: after,
        status: Some(status.as_u16()),
    })
}

/// The token endpoint's answer: a grant, or its documented error.
fn read(status: reqwest::StatusCode, text: &str) -> Result<Grant, LwaError> {
    if status.is_success() {
        let raw: RawGrant = serde_json::from_str(text).map_err(|e| LwaError::Other {
            status: status.as_u16(),
            detail: format!("unreadable token answer: {e}"),
        })?;
        let expires_in = raw
            .expires_in
            .as_deref()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map_or(3600, |s| s as i64);
        return Ok(Grant {
            access_token: raw.access_token,
            refresh_token: raw.refresh_token,
            expires_in,
        });
    }
    let err: RawError = serde_json::from_str(text).unwrap_or(RawError {
        error: String::new(),
        error_description: text.chars().take(300).collect(),
    });
    let detail = err.error_description;
    Err(match err.error.as_str() {
        "invalid_grant" => LwaError::InvalidGrant(detail),
        "invalid_request" => LwaError::InvalidRequest(detail),
        "invalid_client" | "unauthorized_client" => LwaError::InvalidClient(detail),
        "unsupported_grant_type" => LwaError::UnsupportedGrantType(detail),
        _ => LwaError::Other {
            status: status.as_u16(),
            detail: if err.error.is_empty() {
                detail
            } else {
                format!("{}: {detail}", err.error)
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::challenge;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
