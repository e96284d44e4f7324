//! The affiliate program's admin API (GoAffPro-compatible, DESIGN §4.4): what the app reads and
//! writes there. Every call carries the store's access token; none of it is logged. A 429 pauses
//! every call made with the same token to the same host for its `Retry-After`. Every request
//! waits for its host's turn (`[program] max_requests_per_sec`, lowered on 429: [`Pacer`]).
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::{
    clients::{
        http::{
            self, CallObserver, Caller, Pauses, Retry, RetryPolicy, SharedObserver, Unobserved,
            retry_after,
        },
        pace::Pacer,
        resolve::{self, GuardedResolver, SharedLookup, SystemLookup},
    },
    config::ProgramSettings,
    domain::hosts::{HostPolicy, HostRefused},
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
    #[error("the program's API URL is not a URL: {0}")]
    InvalidUrl(#[from] url::ParseError),
    /// Refused before connecting (DESIGN §7): the same URL or name is refused the same way.
    #[error("the program's API address is refused: {0}")]
    Refused(#[from] HostRefused),
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
            Self::Decode(_) | Self::InvalidUrl(_) | Self::Refused(_) => {
                Retry::Never { status: None }
            }
        }
    }

    /// A failed send: the guard's refusal when that is what stopped it, else the network.
    pub fn transport(e: reqwest::Error) -> Self {
        match resolve::refusal(&e) {
            Some(refused) => Self::Refused(refused),
            None => Self::Transport(e),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.retry().is_worth_it()
    }
}

/// The program's admin API for every store: one HTTP client (`[program]` timeouts), the default
/// base URL, the retry policy, the pauses 429s put on this instance's calls (per host and token)
/// and the pace of each host (shared by every store's calls). Its calls reach private addresses
/// only at the hosts its policy allows (DESIGN §7).
#[derive(Debug)]
pub struct ProgramApp {
    http: reqwest::Client,
    default_api: Url,
    retry: RetryPolicy,
    pauses: Pauses,
    pacer: Pacer,
    hosts: Arc<HostPolicy>,
    /// Hears how every try at a program ended (the service's metrics).
    observer: SharedObserver,
}

impl ProgramApp {
    /// With `program.allowed_private_hosts` and the system's resolver.
    pub fn from_settings(p: &ProgramSettings) -> anyhow::Result<Self> {
        let hosts = HostPolicy::allowing(&p.allowed_private_hosts);
        Self::guarded(p, hosts, Arc::new(SystemLookup))
    }

    /// With the hosts allowed at private addresses (`Settings::program_hosts`) and the lookup
    /// names are resolved with (the system's; a fixed map in tests), through the guard.
    pub fn guarded(
        p: &ProgramSettings,
        hosts: HostPolicy,
        lookup: SharedLookup,
    ) -> anyhow::Result<Self> {
        let hosts = Arc::new(hosts);
        let resolver = GuardedResolver::new(lookup, hosts.clone());
        let http = http::builder(Duration::from_secs(p.request_timeout_secs))
            .dns_resolver(Arc::new(resolver))
            .build()?;
        Ok(Self {
            http,
            default_api: p.api_url.clone(),
            retry: http::retry_policy(p.http()),
            pauses: Pauses::default(),
            pacer: Pacer::new(p.max_requests_per_sec),
            hosts,
            observer: Arc::new(Unobserved),
        })
    }

    /// The same app, with every try at a program told to `observer`.
    #[must_use]
    pub fn observed_by(mut self, observer: SharedObserver) -> Self {
        self.observer = observer;
        self
    }

    /// The pace of each program host this instance calls.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// The hosts allowed at private addresses, as installs are checked against them.
    pub fn hosts(&self) -> &HostPolicy {
        &self.hosts
    }

    /// A client for one store's program: its own API URL (`None`: the default) and token. A URL
    /// the host policy refuses gets no client: IP literals never reach the guarded resolver.
    pub fn client(
        &self,
        api_url: Option<&str>,
        token: SecretString,
    ) -> Result<ProgramClient<'_>, ProgramError> {
        let base = match api_url {
            Some(url) => Url::parse(url)?,
            None => self.default_api.clone(),
        };
        self.hosts.check_url(&base)?;
        Ok(ProgramClient::new(
            &self.http,
            (&self.pauses, &self.pacer, &*self.observer),
            base,
            token,
            self.retry,
        ))
    }

    /// As [`ProgramApp::client`], trying a call again inline only after a 429 (which refused it
    /// before anything was done) whose `Retry-After` is within the cap, once the pause and the
    /// pace allow, up to `retry_attempts` tries: a job's schedule retries every other failure.
    pub fn client_once(
        &self,
        api_url: Option<&str>,
        token: SecretString,
    ) -> Result<ProgramClient<'_>, ProgramError> {
        let mut client = self.client(api_url, token)?;
        client.retry.later = false;
        Ok(client)
    }
}

pub struct ProgramClient<'a> {
    http: &'a reqwest::Client,
    pauses: &'a Pauses,
    pacer: &'a Pacer,
    observer: &'a dyn CallObserver,
    /// This store's token at this host: whose calls a 429 pauses.
    caller: Caller,
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
    /// A client of one program: the pauses its calls wait out, the pace they keep and who hears
    /// how they ended.
    pub fn new(
        http: &'a reqwest::Client,
        (pauses, pacer, observer): (&'a Pauses, &'a Pacer, &'a dyn CallObserver),
        base: Url,
        token: SecretString,
        retry: RetryPolicy,
    ) -> Self {
        let caller = Caller::new(&base, &format!("token:{}", token.expose_secret()));
        Self {
            http,
            pauses,
            pacer,
            observer,
            caller,
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

    /// Sends after the caller's pause and in the host's pace, tried again as the client's policy
    /// says (`later`: after 408, 5xx and network failures too, else only after a 429); returns
    /// the body of a 2xx answer. A 429 slows the host's pace down.
    pub(crate) async fn send(
        &self,
        later: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ProgramError> {
        let policy = RetryPolicy {
            later: later && self.retry.later,
            ..self.retry
        };
        let host = self.caller.host();
        http::call(
            policy,
            self.pauses,
            &self.caller,
            self.observer,
            ProgramError::retry,
            || {
                let request = build()
                    .header("x-goaffpro-access-token", self.token.expose_secret())
                    .header("accept", "application/json");
                async move {
                    // A turn taken while a 429 paused the caller is given up: the request waits
                    // out the pause and takes a new one.
                    loop {
                        self.pacer.wait(host, self.observer).await;
                        if self.pauses.until(&self.caller).is_none() {
                            break;
                        }
                        self.pauses.wait(&self.caller).await;
                    }
                    let answer = match request.send().await {
                        Err(e) => Err(ProgramError::transport(e)),
                        Ok(res) => classify(res).await,
                    };
                    if let Err(ProgramError::Throttled { .. }) = answer {
                        self.pacer.throttled(host, self.observer);
                    }
                    answer
                }
            },
        )
        .await
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ProgramError> {
        self.send(true, || self.http.get(self.url(path)).query(query))
            .await
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
            let entries: Vec<RosterEntry> = serde_json::from_value(list_in(body, "affiliates")?)
                .map_err(|e| ProgramError::Decode(format!("affiliates: {e}")))?;
            let len = entries.len();
            let mut new = 0;
            for entry in entries {
                match entry.id.as_ref().map(|id| seen.insert(id.clone())) {
                    Some(true) => {
                        new += 1;
                        all.push(entry);
                    }
                    Some(false) => {}
                    // Kept: the roster's reader must know that someone went unread.
                    None => all.push(entry),
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

/// The list an answer holds: `{"<key>": [...]}` or the bare list. Anything else (`{}`, an object
/// without the key, an empty answer) is not understood: read as "none", it would make the
/// program's affiliates or orders disappear.
pub(crate) fn list_in(body: Value, key: &str) -> Result<Value, ProgramError> {
    let list = match body {
        Value::Object(mut map) => map.remove(key),
        list @ Value::Array(_) => Some(list),
        _ => None,
    };
    list.filter(Value::is_array)
        .ok_or_else(|| ProgramError::Decode(format!("the answer has no `{key}` list")))
}

pub(crate) async fn classify(res: reqwest::Response) -> Result<Value, ProgramError> {
    let status = res.status();
    let after = retry_after(res.headers(), SystemTime::now());
    let text = res.text().await.map_err(ProgramError::Transport)?;
    if status.is_success() {
        // 2xx is success (DESIGN §4.4): an empty answer (204) says nothing more, which only a
        // call that reads the answer may find wanting.
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
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
