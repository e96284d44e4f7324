//! The Amazon Ads API calls the app makes. 429 and 5xx are retried with backoff within the
//! policy's bound; a 429 pauses every call of the same profile (or, unscoped, the same token) to
//! the host for its `Retry-After`; every other answer becomes a typed error. Tokens never reach a
//! log line.
use std::time::{Duration, SystemTime};

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::clients::{
    amazon::{AmazonApp, wire},
    http::{self, Caller, Retry, retry_after},
};

#[derive(Debug, thiserror::Error)]
pub enum AmazonError {
    #[error("Amazon did not accept the access token (401)")]
    Unauthorized,
    #[error("this Amazon Ads profile is not enabled for Amazon Attribution ({0})")]
    NotEnabled(String),
    #[error("Amazon kept throttling the requests (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("Amazon answered {status}")]
    Server { status: u16 },
    #[error("Amazon refused the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("Amazon could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("Amazon's answer was not understood: {0}")]
    Decode(String),
}

impl AmazonError {
    /// Whether and how to try again: throttling, Amazon's own failures and the network are
    /// worth it; a refused token is the token flow's to handle, not a retry's.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Throttled { retry_after } => Retry::Throttled(*retry_after),
            Self::Server { status } => Retry::Later {
                status: Some(*status),
                overloaded: false,
            },
            Self::Transport(t) => Retry::transport(t),
            Self::Unauthorized => Retry::Never { status: Some(401) },
            Self::NotEnabled(_) => Retry::Never { status: Some(403) },
            Self::Rejected { status, .. } => Retry::Never {
                status: Some(*status),
            },
            Self::Decode(_) => Retry::Never { status: None },
        }
    }

    /// Worth another try later (throttling, Amazon's own failures, the network).
    pub fn is_transient(&self) -> bool {
        self.retry().is_worth_it()
    }
}

pub struct AdsClient<'a> {
    app: &'a AmazonApp,
    base: Url,
}

impl<'a> AdsClient<'a> {
    pub fn new(app: &'a AmazonApp, base: Url) -> Self {
        Self { app, base }
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// Whose calls a 429 pauses: the profile's, or the token's when the call names no profile.
    fn caller(&self, token: &SecretString, scope: Option<&str>) -> Caller {
        match scope {
            Some(profile) => Caller::new(&self.base, &format!("amazon-profile:{profile}")),
            None => Caller::new(&self.base, &format!("token:{}", token.expose_secret())),
        }
    }

    /// Sends with retries (after the caller's pause); returns the body of a 2xx answer.
    async fn send(
        &self,
        caller: Caller,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Value, AmazonError> {
        let text = self.send_for_text(caller, build).await?;
        serde_json::from_str(&text).map_err(|e| AmazonError::Decode(e.to_string()))
    }

    /// [`Self::send`], returning the 2xx answer's text as it came.
    async fn send_for_text(
        &self,
        caller: Caller,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<String, AmazonError> {
        http::call(
            self.app.retry,
            &self.app.pauses,
            &caller,
            &*self.app.observer,
            AmazonError::retry,
            || {
                let request = build();
                async move {
                    match request.send().await {
                        Err(e) => Err(AmazonError::Transport(e)),
                        Ok(res) => classify(res).await,
                    }
                }
            },
        )
        .await
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: &SecretString,
        scope: Option<&str>,
    ) -> RequestBuilder {
        let mut req = self
            .app
            .http
            .request(method, self.url(path))
            .bearer_auth(token.expose_secret())
            .header("Amazon-Advertising-API-ClientId", &self.app.client_id)
            .header("Accept", "application/json");
        if let Some(scope) = scope {
            req = req.header("Amazon-Advertising-API-Scope", scope);
        }
        req
    }

    pub async fn profiles(&self, token: &SecretString) -> Result<Vec<wire::Profile>, AmazonError> {
        let body = self
            .send(self.caller(token, None), || {
                self.request(Method::GET, "/v2/profiles", token, None)
            })
            .await?;
        serde_json::from_value(body).map_err(|e| AmazonError::Decode(format!("profiles: {e}")))
    }

    pub async fn advertisers(
        &self,
        token: &SecretString,
        profile_id: &str,
    ) -> Result<Vec<wire::Advertiser>, AmazonError> {
        let body = self
            .send(self.caller(token, Some(profile_id)), || {
                self.request(
                    Method::GET,
                    "/attribution/advertisers",
                    token,
                    Some(profile_id),
                )
            })
            .await?;
        wire::advertisers(body).map_err(|e| AmazonError::Decode(format!("advertisers: {e}")))
    }

    pub async fn publishers(
        &self,
        token: &SecretString,
        profile_id: &str,
    ) -> Result<Vec<wire::Publisher>, AmazonError> {
        let body = self
            .send(self.caller(token, Some(profile_id)), || {
                self.request(
                    Method::GET,
                    "/attribution/publishers",
                    token,
                    Some(profile_id),
                )
            })
            .await?;
        wire::publishers(body).map_err(|e| AmazonError::Decode(format!("publishers: {e}")))
    }

    /// The non-macro template tag of (advertiser, publisher). Calling it also switches Amazon's
    /// measurement on for the profile.
    pub async fn template_tag(
        &self,
        token: &SecretString,
        profile_id: &str,
        advertiser_id: &str,
        publisher_id: &str,
    ) -> Result<String, AmazonError> {
        let body = self
            .send(self.caller(token, Some(profile_id)), || {
                self.request(
                    Method::GET,
                    "/attribution/tags/nonMacroTemplateTag",
                    token,
                    Some(profile_id),
                )
                .query(&[
                    ("publisherIds", publisher_id),
                    ("advertiserIds", advertiser_id),
                ])
            })
            .await?;
        wire::tag_for(&body, advertiser_id, publisher_id).ok_or_else(|| {
            AmazonError::Decode(format!(
                "no template tag for advertiser {advertiser_id} and publisher {publisher_id}"
            ))
        })
    }

    /// One page of `POST /attribution/report`, as text: `report::read_page_rows` reads it
    /// without a `Value` tree of its 5,000 rows.
    pub async fn report_page(
        &self,
        token: &SecretString,
        profile_id: &str,
        body: &Value,
    ) -> Result<String, AmazonError> {
        self.send_for_text(self.caller(token, Some(profile_id)), || {
            self.request(Method::POST, "/attribution/report", token, Some(profile_id))
                .json(body)
        })
        .await
    }
}

async fn classify(res: reqwest::Response) -> Result<String, AmazonError> {
    let status = res.status();
    let after = retry_after(res.headers(), SystemTime::now());
    let text = res.text().await.map_err(AmazonError::Transport)?;
    if status.is_success() {
        return Ok(text);
    }
    let detail = wire::error_detail(&text);
    Err(match status {
        StatusCode::UNAUTHORIZED => AmazonError::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => AmazonError::Throttled { retry_after: after },
        StatusCode::FORBIDDEN => AmazonError::NotEnabled(detail),
        StatusCode::BAD_REQUEST
            if detail
                .to_ascii_lowercase()
                .contains("not authorized to use amazon attribution") =>
        {
            AmazonError::NotEnabled(detail)
        }
        s if s.is_server_error() => AmazonError::Server { status: s.as_u16() },
        s => AmazonError::Rejected {
            status: s.as_u16(),
            detail,
        },
    })
}
