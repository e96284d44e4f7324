//! The affiliate program's admin API (GoAffPro-compatible, DESIGN §4.4): what the app reads and
//! writes there. Every call carries the store's access token; none of it is logged.
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::{
    clients::http::{self, Retry, RetryPolicy, retry_after},
    config::ProgramSettings,
};

pub mod orders;

pub const PAGE_SIZE: usize = 250;
/// 250 × 2,000 = half a million affiliates: far beyond any program, and a stop for a runaway API.
pub const MAX_PAGES: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("the program refused the access token ({0})")]
    Unauthorized(u16),
    #[error("the program is throttling requests (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("the program answered {status}")]
    Server { status: u16 },
    #[error("the program refused the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("the program could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("the program's answer was not understood: {0}")]
    Decode(String),
}

impl ProgramError {
    /// Whether and how to try again (DESIGN §4.4: 408, 429, 5xx, timeouts and connection errors
    /// are retried; any other 4xx is permanent).
    pub fn retry(&self) -> Retry {
        match self {
            Self::Throttled { retry_after } => Retry::Throttled(*retry_after),
            Self::Server { status } => Retry::Later {
                status: Some(*status),
                overloaded: false,
            },
            Self::Transport(t) => Retry::transport(t),
            Self::Rejected { status: 408, .. } => Retry::Later {
                status: Some(408),
                overloaded: true,
            },
            Self::Rejected { status, .. } | Self::Unauthorized(status) => Retry::Never {
                status: Some(*status),
            },
            Self::Decode(_) => Retry::Never { status: None },
        }
    }

    pub fn is_transient(&self) -> bool {
        self.retry().is_worth_it()
    }
}

/// The program's admin API for every store: one HTTP client (`[program]` timeouts), the default
/// base URL and the retry policy.
#[derive(Debug)]
pub struct ProgramApp {
    http: reqwest::Client,
    default_api: Url,
    retry: RetryPolicy,
}

impl ProgramApp {
    pub fn from_settings(p: &ProgramSettings) -> anyhow::Result<Self> {
        let (http, retry) = http::policy(p.http())?;
        Ok(Self {
            http,
            default_api: p.api_url.clone(),
            retry,
        })
    }

    /// A client for one store's program: its own API URL (`None`: the default) and token.
    pub fn client(
        &self,
        api_url: Option<&str>,
        token: SecretString,
    ) -> Result<ProgramClient<'_>, url::ParseError> {
        let base = match api_url {
            Some(url) => Url::parse(url)?,
            None => self.default_api.clone(),
        };
        Ok(ProgramClient::new(&self.http, base, token, self.retry))
    }

    /// As [`ProgramApp::client`], trying each call once: a job's schedule does the retrying.
    pub fn client_once(
        &self,
        api_url: Option<&str>,
        token: SecretString,
    ) -> Result<ProgramClient<'_>, url::ParseError> {
        let mut client = self.client(api_url, token)?;
        client.retry.attempts = 1;
        Ok(client)
    }
}

pub struct ProgramClient<'a> {
    http: &'a reqwest::Client,
    base: Url,
    token: SecretString,
    retry: RetryPolicy,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RosterEntry {
    #[serde(deserialize_with = "crate::clients::lenient::opt_text", default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub ref_code: Option<String>,
    #[serde(default, deserialize_with = "crate::clients::lenient::opt_text")]
    pub status: Option<String>,
}

impl<'a> ProgramClient<'a> {
    pub fn new(
        http: &'a reqwest::Client,
        base: Url,
        token: SecretString,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            base,
            token,
            retry,
        }
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ProgramError> {
        let mut attempt = 1;
        loop {
            let sent = self
                .http
                .get(self.url(path))
                .header("x-goaffpro-access-token", self.token.expose_secret())
                .header("accept", "application/json")
                .query(query)
                .send()
                .await;
            let outcome = match sent {
                Err(e) => Err(ProgramError::Transport(e)),
                Ok(res) => classify(res).await,
            };
            match outcome {
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    let hint = match &e {
                        ProgramError::Throttled { retry_after } => *retry_after,
                        _ => None,
                    };
                    let wait = self.retry.delay(attempt, hint, &mut rand::rng());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Every affiliate, page by page. Stops at a short page, and also when a full page brings no
    /// affiliate not seen before: some programs keep answering full pages past the end.
    pub async fn affiliates(&self) -> Result<Vec<RosterEntry>, ProgramError> {
        let mut seen = std::collections::HashSet::new();
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let body = self
                .get(
                    "/admin/affiliates",
                    &[
                        ("fields", "id,name,ref_code,status".to_owned()),
                        ("limit", PAGE_SIZE.to_string()),
                        ("offset", (page * PAGE_SIZE).to_string()),
                    ],
                )
                .await?;
            let list = match body {
                Value::Object(mut map) => map.remove("affiliates").unwrap_or(Value::Array(vec![])),
                other => other,
            };
            let entries: Vec<RosterEntry> = serde_json::from_value(list)
                .map_err(|e| ProgramError::Decode(format!("affiliates: {e}")))?;
            let len = entries.len();
            let mut new = 0;
            for entry in entries {
                if entry.id.clone().is_some_and(|id| seen.insert(id)) {
                    new += 1;
                    all.push(entry);
                }
            }
            if len < PAGE_SIZE || new == 0 {
                return Ok(all);
            }
        }
        tracing::warn!(
            pages = MAX_PAGES,
            "affiliate roster paging stopped at the page limit"
        );
        Ok(all)
    }
}

pub(crate) async fn classify(res: reqwest::Response) -> Result<Value, ProgramError> {
    let status = res.status();
    let after = retry_after(res.headers());
    let text = res.text().await.map_err(ProgramError::Transport)?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| ProgramError::Decode(e.to_string()));
    }
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ProgramError::Unauthorized(status.as_u16())
        }
        StatusCode::TOO_MANY_REQUESTS => ProgramError::Throttled { retry_after: after },
        s if s.is_server_error() => ProgramError::Server { status: s.as_u16() },
        s => ProgramError::Rejected {
            status: s.as_u16(),
            detail: text.chars().take(500).collect(),
        },
    })
}
