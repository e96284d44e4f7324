//! Typed configuration: the committed `app.toml` (compiled in as the defaults), an optional file given
//! with `--config`, then `APP__SECTION__KEY` environment variables. Validated once, at start.
use std::{fmt, ops::RangeInclusive, path::PathBuf, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use chrono::NaiveTime;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use url::Url;

/// The committed defaults. A deployment's own file and the environment override them key by key.
pub const DEFAULTS: &str = include_str!("../app.toml");

/// What is wrong with the settings. The message masks credentials of any URL it quotes
/// ([`redact_credentials`]), so it may be printed and logged (DESIGN §7).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {}", redact_credentials(&.0.to_string()))]
    Load(#[from] config::ConfigError),
    #[error("configuration: `{key}` {}", redact_credentials(problem))]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub security: SecuritySettings,
    pub platform: PlatformSettings,
    pub amazon: AmazonSettings,
    pub program: ProgramSettings,
    pub sync: SyncSettings,
    pub workers: WorkerSettings,
    pub jobs: JobSettings,
    pub sandbox: SandboxSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub public_url: Url,
    pub shutdown_timeout_secs: u64,
    pub body_limit_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

impl DatabaseSettings {
    pub fn is_sqlite(&self) -> bool {
        self.url.expose_secret().starts_with("sqlite:")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub encryption_key: SecretString,
    pub key_file: PathBuf,
    pub session_ttl_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    #[serde(deserialize_with = "secret_list")]
    pub webhook_secrets: Vec<SecretString>,
    pub webhook_tolerance_secs: u64,
    pub webhook_body_limit_bytes: usize,
    pub retention_days: u32,
    /// The origin (`https://host[:port]`) of the platform's admin, the only page that may frame
    /// the merchant pages (CSP `frame-ancestors`, DESIGN §7); `None`: no page may.
    #[serde(deserialize_with = "optional_url")]
    pub admin_origin: Option<Url>,
}

impl PlatformSettings {
    /// The CSP `frame-ancestors` source list: the admin origin, or `'none'`.
    pub fn frame_ancestors(&self) -> String {
        match &self.admin_origin {
            Some(origin) => origin.origin().ascii_serialization(),
            None => "'none'".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    pub publisher_id: String,
    #[serde(deserialize_with = "optional_url")]
    pub authorize_url: Option<Url>,
    #[serde(deserialize_with = "optional_url")]
    pub token_url: Option<Url>,
    #[serde(deserialize_with = "optional_url")]
    pub api_url: Option<Url>,
    pub request_timeout_secs: u64,
    pub retry_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
}

/// The [`HttpSettings`] of a section that carries its four keys (`[amazon]`, `[program]`).
macro_rules! http_settings_of {
    ($section:expr) => {
        HttpSettings {
            request_timeout_secs: $section.request_timeout_secs,
            retry_attempts: $section.retry_attempts,
            retry_base_ms: $section.retry_base_ms,
            retry_cap_ms: $section.retry_cap_ms,
        }
    };
}

impl AmazonSettings {
    /// Timeout and retries of calls to Amazon.
    pub fn http(&self) -> HttpSettings {
        http_settings_of!(self)
    }
}

/// How one upstream is called: the same keys under `[amazon]` and `[program]` (not flattened
/// into them: the environment's strings would no longer read as numbers).
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// Each call gives up after this many seconds.
    pub request_timeout_secs: u64,
    /// Tries in all for 429, 5xx and unreachable answers.
    pub retry_attempts: u32,
    /// The first wait, doubled each time (±20 %), never above `retry_cap_ms`.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
}

impl HttpSettings {
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{section}.{k}");
        within(
            &key("request_timeout_secs"),
            self.request_timeout_secs,
            1..=600,
        )?;
        within(&key("retry_attempts"), self.retry_attempts, 1..=20)?;
        if self.retry_base_ms > self.retry_cap_ms {
            return Err(invalid(
                key("retry_base_ms"),
                format!("must not exceed {section}.retry_cap_ms"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSettings {
    pub api_url: Url,
    /// Hosts (names or IP addresses) program calls may reach at loopback, link-local or private
    /// addresses, and over plain http; every other host must be public (DESIGN §7).
    #[serde(deserialize_with = "text_list")]
    pub allowed_private_hosts: Vec<String>,
    pub request_timeout_secs: u64,
    pub retry_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// Requests a second to each program host from this instance (all workers and stores
    /// together), lowered for a while after a 429 (DESIGN §4.4).
    pub max_requests_per_sec: u32,
}

impl ProgramSettings {
    /// Timeout and retries of calls to the program's API.
    pub fn http(&self) -> HttpSettings {
        http_settings_of!(self)
    }
}

impl Settings {
    /// The hosts program calls may reach at private addresses: `program.allowed_private_hosts`,
    /// plus this server's own (loopback) host while the sandbox, which plays the program here,
    /// is on — so that a first run needs no configuration.
    pub fn program_hosts(&self) -> crate::domain::hosts::HostPolicy {
        let mut hosts =
            crate::domain::hosts::HostPolicy::allowing(&self.program.allowed_private_hosts);
        if self.sandbox.enabled
            && let Some(own) = self.server.public_url.host_str()
        {
            hosts.allow(own);
        }
        hosts
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    pub daily_at: String,
    pub push_after_days: u32,
    /// Hours a day that vanished from the report must stay absent before it is zeroed.
    pub confirm_absence_hours: u32,
    /// Above this share of the store's pushed commission in the window, one sync's decreases
    /// are held for the merchant (0 to 1; 1 holds nothing).
    #[serde(with = "rust_decimal::serde::str")]
    pub hold_decrease_share: rust_decimal::Decimal,
    /// Report rows a sync holds in memory; a larger report is staged in the database as it is
    /// read, and taken a span of affiliates at a time (0 stages every report).
    pub held_rows: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub enabled: bool,
    pub sweep_interval_minutes: u64,
    pub roster_interval_minutes: u64,
}

impl WorkerSettings {
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_minutes * 60)
    }

    pub fn roster_interval(&self) -> Duration {
        Duration::from_secs(self.roster_interval_minutes * 60)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    #[serde(deserialize_with = "number_list")]
    pub retry_schedule_secs: Vec<u64>,
    pub overload_floor_secs: u64,
    pub lease_secs: u64,
    /// How often a running job renews its lease (at most a third of `lease_secs`).
    pub heartbeat_secs: u64,
    pub poll_interval_ms: u64,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub enabled: bool,
    /// Same seed, same demo data.
    pub seed: u64,
    /// Keep the sandbox's state (demo stores, orders, clicks) across restarts, in the data folder.
    pub persist: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Whether `level` is a level or comma-separated `[target=]level` directives. A bare word that is
/// no level is a valid filter too (a target, at every level), which would silently turn every
/// other log line off: `loud` is refused.
fn is_log_level(level: &str) -> bool {
    use std::str::FromStr;
    use tracing_subscriber::filter::LevelFilter;
    // `""` splits into one empty directive, refused like any other.
    level.split(',').all(|directive| {
        let level = match directive.rsplit_once('=') {
            Some((target, _)) if target.trim().is_empty() => return false,
            Some((_, level)) => level,
            None => directive,
        };
        let level = level.trim();
        !level.is_empty() && LevelFilter::from_str(level).is_ok()
    })
}

impl Settings {
    /// Defaults, then `file` (when given; it must exist), then the process environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let file = match file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                invalid("--config", format!("cannot read {}: {e}", path.display()))
            })?),
            None => None,
        };
        Self::from_sources(file.as_deref(), std::env::vars())
    }

    /// Pure form of [`Settings::load`], for tests: an optional TOML text and environment pairs.
    pub fn from_sources(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        use config::{Environment, File, FileFormat};
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("APP__"))
            .collect();
        let mut builder =
            config::Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(text) = file {
            builder = builder.add_source(File::from_str(text, FileFormat::Toml));
        }
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }
        if !matches!(self.server.public_url.scheme(), "http" | "https") {
            return Err(invalid("server.public_url", "must be an http(s) URL"));
        }
        at_least(
            "server.body_limit_bytes",
            self.server.body_limit_bytes,
            1024,
        )?;
        let db = self.database.url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        at_least("database.max_connections", self.database.max_connections, 1)?;
        if !self.security.encryption_key.expose_secret().is_empty() {
            decode_key(&self.security.encryption_key)?;
        } else if !self.database.is_sqlite() {
            return Err(invalid(
                "security.encryption_key",
                "is required with PostgreSQL (base64 of 32 bytes; e.g. `openssl rand -base64 32`)",
            ));
        }
        at_least(
            "security.session_ttl_minutes",
            self.security.session_ttl_minutes,
            1,
        )?;
        for secret in &self.platform.webhook_secrets {
            decode_webhook_secret(secret)?;
        }
        if self.platform.webhook_secrets.is_empty() && !self.sandbox.enabled {
            return Err(invalid(
                "platform.webhook_secrets",
                "must list at least one whsec_ secret when the sandbox is off",
            ));
        }
        within(
            "platform.webhook_tolerance_secs",
            self.platform.webhook_tolerance_secs,
            1..=86_400,
        )?;
        at_least(
            "platform.webhook_body_limit_bytes",
            self.platform.webhook_body_limit_bytes,
            1024,
        )?;
        if let Some(origin) = &self.platform.admin_origin {
            let bare = origin.path() == "/"
                && origin.query().is_none()
                && origin.fragment().is_none()
                && origin.username().is_empty()
                && origin.password().is_none();
            if !(matches!(origin.scheme(), "http" | "https") && origin.has_host() && bare) {
                return Err(invalid(
                    "platform.admin_origin",
                    "must be an origin such as https://admin.example.com (scheme, host and port only)",
                ));
            }
        }
        if self.amazon.publisher_id.trim().is_empty() {
            return Err(invalid("amazon.publisher_id", "must not be empty"));
        }
        self.amazon.http().validate("amazon")?;
        self.program.http().validate("program")?;
        within(
            "program.max_requests_per_sec",
            self.program.max_requests_per_sec,
            1..=1000,
        )?;
        if let Some(bad) = self
            .program
            .allowed_private_hosts
            .iter()
            .find(|h| crate::domain::hosts::normalize(h).is_none())
        {
            return Err(invalid(
                "program.allowed_private_hosts",
                format!("{bad:?} is not a host name or an IP address"),
            ));
        }
        self.program_hosts()
            .check_url(&self.program.api_url)
            .map_err(|e| invalid("program.api_url", e.to_string()))?;
        if self.sandbox.enabled
            && !(is_loopback(&self.server.host)
                && self.server.public_url.host_str().is_some_and(is_loopback))
        {
            return Err(invalid(
                "sandbox.enabled",
                "the sandbox (which lets anyone install demo stores) only serves this machine: \
                 server.host and server.public_url must be loopback addresses; set APP__SANDBOX__ENABLED=false",
            ));
        }
        if self.sandbox.enabled && !self.amazon.client_secret.expose_secret().is_empty() {
            return Err(invalid(
                "sandbox.enabled",
                "the sandbox refuses to run with real Amazon credentials (amazon.client_secret is set); \
                 set APP__SANDBOX__ENABLED=false",
            ));
        }
        self.sync.parse_daily_at()?;
        within("sync.push_after_days", self.sync.push_after_days, 0..=60)?;
        if self.sync.confirm_absence_hours > 24 * 60 {
            return Err(invalid(
                "sync.confirm_absence_hours",
                "must be between 0 and 1440 (60 days)",
            ));
        }
        let share = self.sync.hold_decrease_share;
        if share.is_sign_negative() || share > rust_decimal::Decimal::ONE {
            return Err(invalid(
                "sync.hold_decrease_share",
                "must be between 0 and 1",
            ));
        }
        at_least(
            "workers.roster_interval_minutes",
            self.workers.roster_interval_minutes,
            1,
        )?;
        at_least(
            "workers.sweep_interval_minutes",
            self.workers.sweep_interval_minutes,
            1,
        )?;
        if self.jobs.retry_schedule_secs.is_empty() {
            return Err(invalid(
                "jobs.retry_schedule_secs",
                "must list at least one wait",
            ));
        }
        at_least("jobs.heartbeat_secs", self.jobs.heartbeat_secs, 1)?;
        // The heartbeat, not the lease, covers a slow call: a lease of three beats survives one
        // renewal that comes late (a busy database) without the job being taken twice.
        if self.jobs.lease_secs < self.jobs.heartbeat_secs.saturating_mul(3) {
            return Err(invalid(
                "jobs.lease_secs",
                "must be at least three times jobs.heartbeat_secs, \
                 or a job whose renewal comes late is taken twice",
            ));
        }
        within("jobs.concurrency", self.jobs.concurrency, 1..=64)?;
        at_least("jobs.poll_interval_ms", self.jobs.poll_interval_ms, 1)?;
        if !is_log_level(&self.log.level) {
            return Err(invalid(
                "log.level",
                "must be a level (trace, debug, info, warn, error, off) or a list of them by \
                 target, as in `info,attribution_bridge::flows=debug`",
            ));
        }
        Ok(())
    }
}

impl SyncSettings {
    fn parse_daily_at(&self) -> Result<NaiveTime, ConfigError> {
        NaiveTime::parse_from_str(&self.daily_at, "%H:%M")
            .map_err(|_| invalid("sync.daily_at", "must be \"HH:MM\" (24-hour)"))
    }

    /// `daily_at` as a time of day; it was validated when the settings were loaded.
    pub fn daily_at_time(&self) -> NaiveTime {
        self.parse_daily_at().unwrap_or(NaiveTime::MIN)
    }
}

/// Refuses `key` with "must be at least {min}" when `value` is below `min`.
fn at_least<T: PartialOrd + fmt::Display>(key: &str, value: T, min: T) -> Result<(), ConfigError> {
    if value < min {
        return Err(invalid(key, format!("must be at least {min}")));
    }
    Ok(())
}

/// Refuses `key` with "must be between {start} and {end}" when `value` is outside `range`.
fn within<T: PartialOrd + fmt::Display>(
    key: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if !range.contains(&value) {
        let (start, end) = range.into_inner();
        return Err(invalid(key, format!("must be between {start} and {end}")));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The 32-byte AEAD key from its base64 form.
pub fn decode_key(key: &SecretString) -> Result<[u8; 32], ConfigError> {
    let bytes = B64
        .decode(key.expose_secret().trim())
        .map_err(|_| invalid("security.encryption_key", "is not valid base64"))?;
    bytes
        .try_into()
        .map_err(|_| invalid("security.encryption_key", "must decode to exactly 32 bytes"))
}

/// The HMAC key of a Standard Webhooks secret: base64 after an optional `whsec_` prefix.
pub fn decode_webhook_secret(secret: &SecretString) -> Result<Vec<u8>, ConfigError> {
    let raw = secret.expose_secret().trim();
    let raw = raw.strip_prefix("whsec_").unwrap_or(raw);
    let key = B64.decode(raw).map_err(|_| {
        invalid(
            "platform.webhook_secrets",
            "each secret must be whsec_ followed by base64",
        )
    })?;
    if key.is_empty() {
        return Err(invalid("platform.webhook_secrets", "a secret is empty"));
    }
    Ok(key)
}

/// `text` with the password of every `scheme://user:password@host` it quotes replaced by `***`;
/// for error messages that repeat a configured URL. Masks generously: from the first `:` after
/// `://` to the last `@` before the next blank or quote.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(tail.len());
        let userinfo = tail[..end]
            .rfind('@')
            .and_then(|at| tail[..at].find(':').map(|colon| (colon, at)));
        match userinfo {
            Some((colon, at)) => {
                out.push_str(&tail[..=colon]);
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// A list from TOML, or one string from the environment with entries separated by commas or spaces.
fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(text_list(d)?.into_iter().map(SecretString::from).collect())
}

/// A list from TOML, or one string from the environment with entries separated by commas or spaces.
fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split([',', ' ']).map(str::to_owned).collect::<Vec<_>>(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A list from TOML, or comma-separated numbers from the environment.
fn number_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Num(u64),
        Str(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<Item>),
    }
    let items: Vec<String> = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        OneOrMany::Many(v) => v
            .into_iter()
            .map(|i| match i {
                Item::Num(n) => n.to_string(),
                Item::Str(s) => s,
            })
            .collect(),
    };
    items
        .iter()
        .map(|s| {
            s.parse().map_err(|_| {
                serde::de::Error::custom(format!("{s:?} is not a whole number of seconds"))
            })
        })
        .collect()
}

/// An empty string means "not set".
fn optional_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    Url::parse(s.trim())
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid URL {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn problem(result: Result<Settings, ConfigError>) -> String {
        result.expect_err("should be refused").to_string()
    }

    #[test]
    fn a_log_level_is_levels_not_any_filter() {
        for ok in [
            "info",
            "WARN",
            "off",
            "warn,attribution_bridge::flows::sync=info",
            " debug ",
        ] {
            assert!(is_log_level(ok), "{ok}");
        }
        for bad in ["", "loud", "info,", "=debug", "sqlx=noisy", "info,loud"] {
            assert!(!is_log_level(bad), "{bad}");
        }
    }

    #[test]
    fn the_committed_defaults_run_as_they_are() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(s.server.port, 8080);
        assert!(s.database.is_sqlite());
        assert!(s.sandbox.enabled);
        assert_eq!(s.amazon.publisher_id, "12");
        assert_eq!(s.platform.webhook_tolerance_secs, 300);
        assert_eq!(
            s.sync.daily_at_time(),
            NaiveTime::from_hms_opt(6, 0, 0).unwrap()
        );
        assert!(s.amazon.api_url.is_none());
    }

    #[test]
    fn the_program_pace_is_ten_a_second_unless_set_within_its_range() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(s.program.max_requests_per_sec, 10);
        let set = |v: &str| {
            Settings::from_sources(None, env(&[("APP__PROGRAM__MAX_REQUESTS_PER_SEC", v)]))
        };
        assert_eq!(set("1000").unwrap().program.max_requests_per_sec, 1000);
        for bad in ["0", "1001"] {
            assert_eq!(
                problem(set(bad)),
                "configuration: `program.max_requests_per_sec` must be between 1 and 1000",
                "{bad}"
            );
        }
        assert!(problem(set("-1")).contains("max_requests_per_sec"));
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let file = "[server]\nport = 7000\nhost = \"::1\"\n";
        let s = Settings::from_sources(
            Some(file),
            env(&[("APP__SERVER__PORT", "9000"), ("UNRELATED", "x")]),
        )
        .unwrap();
        assert_eq!((s.server.port, s.server.host.as_str()), (9000, "::1"));
    }

    #[test]
    fn webhook_secrets_come_as_a_list_or_comma_separated() {
        let a = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let b = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let s = Settings::from_sources(
            None,
            env(&[("APP__PLATFORM__WEBHOOK_SECRETS", &format!("{a},{b}"))]),
        )
        .unwrap();
        assert_eq!(s.platform.webhook_secrets.len(), 2);
        let s =
            Settings::from_sources(None, env(&[("APP__PLATFORM__WEBHOOK_SECRETS", a)])).unwrap();
        assert_eq!(s.platform.webhook_secrets.len(), 1);
        let file = format!("[platform]\nwebhook_secrets = [\"{a}\", \"{b}\"]\n");
        let s = Settings::from_sources(Some(&file), env(&[])).unwrap();
        assert_eq!(s.platform.webhook_secrets.len(), 2);
    }

    #[test]
    fn bad_keys_and_values_name_themselves() {
        for (key, value, named) in [
            ("APP__SERVER__PROT", "1", "prot"),
            ("APP__SERVER__PORT", "x", "server.port"),
            ("APP__SYNC__DAILY_AT", "6am", "sync.daily_at"),
            (
                "APP__PLATFORM__WEBHOOK_SECRETS",
                "whsec_???",
                "platform.webhook_secrets",
            ),
            ("APP__SECURITY__ENCRYPTION_KEY", "c2hvcnQ=", "32 bytes"),
            ("APP__LOG__FORMAT", "xml", "format"),
        ] {
            let refused = problem(Settings::from_sources(None, env(&[(key, value)])));
            assert!(refused.contains(named), "{key}={value}: {refused}");
        }
    }

    #[test]
    fn postgres_requires_an_encryption_key() {
        let pg = ("APP__DATABASE__URL", "postgres://u@localhost/db");
        assert!(
            problem(Settings::from_sources(None, env(&[pg]))).contains("security.encryption_key")
        );
        let key = (
            "APP__SECURITY__ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        assert!(Settings::from_sources(None, env(&[pg, key])).is_ok());
    }

    #[test]
    fn leases_are_short_and_need_a_heartbeat_three_times_as_frequent() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!((s.jobs.lease_secs, s.jobs.heartbeat_secs), (30, 10));
        // A lease shorter than a slow call is fine: the heartbeat renews it during the call.
        let s = Settings::from_sources(
            None,
            env(&[
                ("APP__JOBS__LEASE_SECS", "3"),
                ("APP__JOBS__HEARTBEAT_SECS", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.jobs.lease_secs, 3);
        for (lease, beat, named) in [
            ("20", "10", "jobs.lease_secs"),
            ("30", "0", "jobs.heartbeat_secs"),
        ] {
            let refused = problem(Settings::from_sources(
                None,
                env(&[
                    ("APP__JOBS__LEASE_SECS", lease),
                    ("APP__JOBS__HEARTBEAT_SECS", beat),
                ]),
            ));
            assert!(refused.contains(named), "{refused}");
        }
    }

    #[test]
    fn the_sandbox_serves_this_machine_only() {
        for (k, v) in [
            ("APP__SERVER__HOST", "0.0.0.0"),
            ("APP__SERVER__PUBLIC_URL", "https://app.example.com"),
        ] {
            assert!(
                problem(Settings::from_sources(None, env(&[(k, v)]))).contains("loopback"),
                "{k}={v}"
            );
            let off = ("APP__SANDBOX__ENABLED", "false");
            let secrets = (
                "APP__PLATFORM__WEBHOOK_SECRETS",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            );
            assert!(Settings::from_sources(None, env(&[(k, v), off, secrets])).is_ok());
        }
        assert!(
            Settings::from_sources(
                None,
                env(&[
                    ("APP__SERVER__HOST", "::1"),
                    ("APP__SERVER__PUBLIC_URL", "http://localhost:8080")
                ])
            )
            .is_ok()
        );
    }

    #[test]
    fn the_sandbox_refuses_real_amazon_credentials_and_production_needs_secrets() {
        let secret = ("APP__AMAZON__CLIENT_SECRET", "real-secret");
        assert!(problem(Settings::from_sources(None, env(&[secret]))).contains("sandbox"));
        let off = ("APP__SANDBOX__ENABLED", "false");
        assert!(
            problem(Settings::from_sources(None, env(&[secret, off]))).contains("webhook_secrets")
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let s = Settings::from_sources(
            None,
            env(&[
                (
                    "APP__SECURITY__ENCRYPTION_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                (
                    "APP__PLATFORM__WEBHOOK_SECRETS",
                    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                ),
            ]),
        )
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("C2FVsBQIhrscChlQIMV"));
        assert!(!debug.contains("AAAAAAAAAAAAAAAA"));
    }

    #[test]
    fn the_database_password_shows_in_no_debug_output_nor_error() {
        let key = (
            "APP__SECURITY__ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        let pg = ("APP__DATABASE__URL", "postgres://app:s3cr3t-pw@db:5432/ab");
        let s = Settings::from_sources(None, env(&[key, pg])).unwrap();
        assert!(!format!("{s:?} {:?}", s.database).contains("s3cr3t-pw"));
        // A refused setting that quotes a URL masks its password.
        let url = ("APP__PROGRAM__API_URL", "https://u:s3cr3t-pw@[bad/v1");
        let refused = problem(Settings::from_sources(None, env(&[key, pg, url])));
        assert!(
            refused.contains("program.api_url") && !refused.contains("s3cr3t-pw"),
            "{refused}"
        );
    }

    #[test]
    fn credentials_in_quoted_urls_are_masked() {
        assert_eq!(
            redact_credentials("cannot open 'postgres://app:pa:s/s@db:5432/x?a=b' now"),
            "cannot open 'postgres://app:***@db:5432/x?a=b' now"
        );
        assert_eq!(
            redact_credentials("a https://h.example/p?q=1 and sqlite://data/a.db b"),
            "a https://h.example/p?q=1 and sqlite://data/a.db b"
        );
        assert_eq!(
            redact_credentials("x://u:1@a y://v:2@b"),
            "x://u:***@a y://v:***@b"
        );
    }

    #[test]
    fn the_admin_origin_is_an_origin_and_frames_the_pages() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(s.platform.frame_ancestors(), "'none'");
        let origin = ("APP__PLATFORM__ADMIN_ORIGIN", "https://admin.example.com");
        let s = Settings::from_sources(None, env(&[origin])).unwrap();
        assert_eq!(s.platform.frame_ancestors(), "https://admin.example.com");
        for bad in [
            "https://admin.example.com/settings",
            "javascript:alert(1)",
            "https://admin.example.com/?x=1",
        ] {
            let refused = problem(Settings::from_sources(
                None,
                env(&[("APP__PLATFORM__ADMIN_ORIGIN", bad)]),
            ));
            assert!(
                refused.contains("platform.admin_origin"),
                "{bad}: {refused}"
            );
        }
    }

    #[test]
    fn private_program_hosts_are_allowed_only_when_listed_or_the_sandbox_s_own() {
        let off = ("APP__SANDBOX__ENABLED", "false");
        let secrets = (
            "APP__PLATFORM__WEBHOOK_SECRETS",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        );
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert!(s.program.allowed_private_hosts.is_empty());
        assert!(
            s.program_hosts().allows("127.0.0.1"),
            "the sandbox plays the program on this server"
        );
        let s = Settings::from_sources(None, env(&[off, secrets])).unwrap();
        assert!(!s.program_hosts().allows("127.0.0.1"));

        let listed = (
            "APP__PROGRAM__ALLOWED_PRIVATE_HOSTS",
            "127.0.0.1, program.internal",
        );
        let s = Settings::from_sources(None, env(&[off, secrets, listed])).unwrap();
        assert_eq!(
            s.program.allowed_private_hosts,
            ["127.0.0.1", "program.internal"]
        );
        assert!(s.program_hosts().allows("PROGRAM.internal"));

        let junk = ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "http://x/");
        assert!(
            problem(Settings::from_sources(None, env(&[off, secrets, junk])))
                .contains("program.allowed_private_hosts")
        );
        let private = ("APP__PROGRAM__API_URL", "http://10.0.0.5/v1");
        assert!(
            problem(Settings::from_sources(None, env(&[off, secrets, private])))
                .contains("program.api_url")
        );
        let allowed = ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "10.0.0.5");
        assert!(Settings::from_sources(None, env(&[off, secrets, private, allowed])).is_ok());
    }
}
