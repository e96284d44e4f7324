//! Amazon: Login with Amazon (`lwa`), the Ads API (`client`), cached access tokens (`tokens`), the
//! connect flow (`connect`) and the links minted from the template tag (`links`).
pub mod ads;
pub mod lwa;
pub mod report;
pub mod wire;

use std::{fmt, str::FromStr, time::Duration};

use secrecy::SecretString;
use url::Url;

use crate::{clients::http::RetryPolicy, config::Settings, sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Na,
    Eu,
    Fe,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Na, Region::Eu, Region::Fe];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Na => "NA",
            Self::Eu => "EU",
            Self::Fe => "FE",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Na => "North America (US, CA, MX, BR)",
            Self::Eu => "Europe, Middle East, India",
            Self::Fe => "Far East (JP, AU, SG)",
        }
    }

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

impl FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NA" => Ok(Self::Na),
            "EU" => Ok(Self::Eu),
            "FE" => Ok(Self::Fe),
            other => Err(format!("unknown Amazon region {other:?} (NA, EU or FE)")),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

impl AmazonApp {
    /// From configuration; with the sandbox on and no credentials, the sandbox's client and URLs.
    pub fn from_settings(
        settings: &Settings,
        sandbox: Option<&sandbox::Sandbox>,
    ) -> anyhow::Result<Self> {
        let a = &settings.amazon;
        let use_sandbox = sandbox.filter(|_| a.client_id.is_empty());
        let (client_id, client_secret) = match use_sandbox {
            Some(_) => (
                sandbox::CLIENT_ID.to_owned(),
                SecretString::from(sandbox::CLIENT_SECRET),
            ),
            None => (a.client_id.clone(), a.client_secret.clone()),
        };
        let redirect_uri = settings.server.public_url.join("/oauth/amazon/callback")?;
        Ok(Self {
            client_id,
            client_secret,
            publisher_id: a.publisher_id.clone(),
            redirect_uri,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(a.request_timeout_secs))
                // The program's token header would follow a redirect to any host; nothing we
                // call needs one.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("attribution-bridge/", env!("CARGO_PKG_VERSION")))
                .build()?,
            retry: a.retry(),
            authorize: a
                .authorize_url
                .clone()
                .or_else(|| use_sandbox.map(|s| s.authorize_url())),
            token: a
                .token_url
                .clone()
                .or_else(|| use_sandbox.map(|s| s.token_url())),
            api: a
                .api_url
                .clone()
                .or_else(|| use_sandbox.map(|s| s.api_url())),
        })
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
