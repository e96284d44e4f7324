//! Amazon: Login with Amazon (`lwa`), the Ads API (`ads`), the report's pages (`report`, read
//! through `page`) and the lenient wire types (`wire`). Built from `[amazon]`; it knows nothing of the sandbox.
pub mod ads;
pub mod lwa;
pub mod page;
pub mod report;
pub mod wire;

use std::fmt;

use secrecy::SecretString;
use url::Url;

pub use crate::domain::region::Region;
use crate::{
    clients::http::{self, Pauses, RetryPolicy, SharedObserver, Unobserved},
    config::AmazonSettings,
};

/// Amazon's own URLs per region (reference §1–2).
impl Defaults for Region {
    fn default_authorize(self) -> &'static str {
        match self {
            Self::Na => "https://www.amazon.com/ap/oa",
            Self::Eu => "https://eu.account.amazon.com/ap/oa",
            Self::Fe => "https://apac.account.amazon.com/ap/oa",
        }
    }

    fn default_token(self) -> &'static str {
        match self {
            Self::Na => "https://api.amazon.com/auth/o2/token",
            Self::Eu => "https://api.amazon.co.uk/auth/o2/token",
            Self::Fe => "https://api.amazon.co.jp/auth/o2/token",
        }
    }

    fn default_api(self) -> &'static str {
        match self {
            Self::Na => "https://advertising-api.amazon.com",
            Self::Eu => "https://advertising-api-eu.amazon.com",
            Self::Fe => "https://advertising-api-fe.amazon.com",
        }
    }
}

trait Defaults {
    fn default_authorize(self) -> &'static str;
    fn default_token(self) -> &'static str;
    fn default_api(self) -> &'static str;
}

/// The three Amazon URLs of a region.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub api: Url,
}

/// Everything needed to talk to Amazon on behalf of any store.
pub struct AmazonApp {
    pub client_id: String,
    pub client_secret: SecretString,
    pub publisher_id: String,
    pub redirect_uri: Url,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
    /// The pauses 429s put on this instance's calls to Amazon (per host and profile or token).
    pub pauses: Pauses,
    /// Hears how every try at Amazon ended (the service's metrics).
    pub observer: SharedObserver,
    authorize: Option<Url>,
    token: Option<Url>,
    api: Option<Url>,
}

impl fmt::Debug for AmazonApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmazonApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("publisher_id", &self.publisher_id)
            .finish_non_exhaustive()
    }
}

/// Who the app is at Login with Amazon and where Amazon is, when the configuration names no
/// client of its own (the sandbox plays Amazon then).
pub struct Fallback {
    pub client_id: String,
    pub client_secret: SecretString,
    pub authorize: Url,
    pub token: Url,
    pub api: Url,
}

impl AmazonApp {
    /// From `[amazon]`; `fallback` applies when `client_id` is empty. `redirect_uri` is this
    /// service's `/oauth/amazon/callback`.
    pub fn from_settings(
        a: &AmazonSettings,
        redirect_uri: Url,
        fallback: Option<Fallback>,
    ) -> anyhow::Result<Self> {
        let fallback = fallback.filter(|_| a.client_id.is_empty());
        let (client_id, client_secret) = match &fallback {
            Some(f) => (f.client_id.clone(), f.client_secret.clone()),
            None => (a.client_id.clone(), a.client_secret.clone()),
        };
        let (http, retry) = http::policy(a.http())?;
        let pick = |set: &Option<Url>, fb: Option<&Url>| set.clone().or_else(|| fb.cloned());
        Ok(Self {
            client_id,
            client_secret,
            publisher_id: a.publisher_id.clone(),
            redirect_uri,
            http,
            retry,
            pauses: Pauses::default(),
            observer: std::sync::Arc::new(Unobserved),
            authorize: pick(&a.authorize_url, fallback.as_ref().map(|f| &f.authorize)),
            token: pick(&a.token_url, fallback.as_ref().map(|f| &f.token)),
            api: pick(&a.api_url, fallback.as_ref().map(|f| &f.api)),
        })
    }

    /// The same app, with every try at Amazon told to `observer`.
    #[must_use]
    pub fn observed_by(mut self, observer: SharedObserver) -> Self {
        self.observer = observer;
        self
    }

    pub fn is_configured(&self) -> bool {
        !self.client_id.is_empty()
    }

    /// The region's URLs, or the configured replacements.
    pub fn endpoints(&self, region: Region) -> Endpoints {
        let pick = |set: &Option<Url>, default: &str| {
            set.clone()
                .unwrap_or_else(|| Url::parse(default).expect("built-in Amazon URLs parse"))
        };
        Endpoints {
            authorize: pick(&self.authorize, region.default_authorize()),
            token: pick(&self.token, region.default_token()),
            api: pick(&self.api, region.default_api()),
        }
    }

    pub fn ads(&self, region: Region) -> ads::AdsClient<'_> {
        ads::AdsClient::new(self, self.endpoints(region).api)
    }
}
