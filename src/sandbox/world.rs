//! The sandbox's world: demo data derived from the seed (ids, rosters, figures use `mix`), and the
//! state that requests change, persisted as one JSON file.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A stable 64-bit hash of the seed and some labels. std's hasher may change between Rust
/// releases, which would change the demo data; SHA-256 never does.
pub fn mix(seed: u64, parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The Amazon account of the sandbox: the same seed always gives the same ids.
#[derive(Debug, Clone)]
pub struct Ids {
    pub profile_id: i64,
    pub legacy_profile_id: i64,
    pub advertiser_id: String,
    pub account_id: String,
}

impl Ids {
    pub fn new(seed: u64) -> Self {
        // 16-digit ids as seen live, hence i64 on the client side.
        let sixteen = |label| 1_000_000_000_000_000 + (mix(seed, &[label]) % 9_000_000_000_000_000);
        let sixteen = |label| i64::try_from(sixteen(label)).expect("fits in i64");
        let account: String = (0..13)
            .map(|i| {
                let n = mix(seed, &["account", &i.to_string()]) % 36;
                char::from_digit(n as u32, 36)
                    .expect("base 36")
                    .to_ascii_uppercase()
            })
            .collect();
        Self {
            profile_id: sixteen("profile"),
            legacy_profile_id: sixteen("legacy-profile"),
            advertiser_id: (1_000_000_000_000 + mix(seed, &["advertiser"]) % 9_000_000_000_000)
                .to_string(),
            account_id: format!("A{account}"),
        }
    }
}

/// The marketplace day (America/Los_Angeles) of an instant, by the tz database.
pub fn la_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&chrono_tz::America::Los_Angeles)
        .date_naive()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: Option<String>,
    pub method: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub client_id: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessGrant {
    pub client_id: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affiliate {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub ref_code: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoStore {
    pub id: String,
    pub number: u32,
    pub name: String,
    pub url: String,
    pub currency: String,
    /// The program access token; `None` once uninstalled (the platform revokes it).
    pub access_token: Option<String>,
    pub installed: bool,
    /// What the app answered to the last webhook, for the control room.
    pub last_delivery: String,
    pub affiliates: Vec<Affiliate>,
}

/// A tagged link Amazon has seen clicked: from then on it has a campaign/ad group/creative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    pub advertiser_id: String,
    pub publisher_id: String,
    pub campaign_id: String,
    pub ad_group_id: String,
    pub creative_id: String,
    pub first_at: DateTime<Utc>,
    /// Marketplace day of the first click; figures start 45 days before it.
    pub first_day: NaiveDate,
    pub seen: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Down,
    Up,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restatement {
    pub date: NaiveDate,
    pub direction: Direction,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub status: u16,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// An order in the affiliate program; amounts in minor units of `currency`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub id: i64,
    pub store_id: String,
    pub number: String,
    pub affiliate_id: Option<i64>,
    pub total: i64,
    pub subtotal: i64,
    pub commission: i64,
    pub currency: String,
    pub date: Option<String>,
    pub status: String,
    pub source: Option<String>,
    pub meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every PATCH received, also those that changed nothing (the affiliate got an e-mail anyway).
    pub history: Vec<OrderUpdate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub at: DateTime<Utc>,
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub codes: BTreeMap<String, AuthCode>,
    pub refresh_tokens: BTreeMap<String, RefreshGrant>,
    pub access_tokens: BTreeMap<String, AccessGrant>,
    /// Advertisers whose measurement a tag call switched on (Amazon's hidden side effect).
    pub measurement: BTreeSet<String>,
    pub clicks: Vec<Click>,
    pub restatements: Vec<Restatement>,
    pub stores: Vec<DemoStore>,
    pub orders: Vec<Order>,
    pub next_order_id: i64,
    /// Test hooks, deliberately not persisted.
    #[serde(skip)]
    pub report_faults: VecDeque<Fault>,
}

impl State {
    /// Drops what can never be used again, so the file does not grow without bound.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.codes.retain(|_, c| c.expires_at > now);
        self.access_tokens.retain(|_, a| a.expires_at > now);
    }

    pub fn store_by_token(&self, token: &str) -> Option<&DemoStore> {
        self.stores
            .iter()
            .find(|s| s.access_token.as_deref() == Some(token))
    }
}

pub fn load(path: &Path) -> io::Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e),
    }
}

/// Write to a temporary file, then rename: a crash leaves the old state or the new, never half.
pub fn save(path: &Path, state: &State) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

const FIRST: [&str; 24] = [
    "Alice", "Bruno", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Nico", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wes", "Yara",
];
const LAST: [&str; 16] = [
    "Hart",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Reyes",
    "Kowalski",
    "Byrne",
    "Haddad",
    "Mehta",
    "Fischer",
    "Costa",
    "Nguyen",
    "Walsh",
];

/// Affiliate `index` (0-based) of demo store `store_no`. Ids are unique across stores because
/// each store has its own block of 100 000.
pub fn affiliate(seed: u64, store_no: u32, index: u32) -> Affiliate {
    let (n, i) = (store_no.to_string(), index.to_string());
    let h = mix(seed, &["affiliate", &n, &i]);
    let first = FIRST[(h % FIRST.len() as u64) as usize];
    let last = LAST[((h >> 16) % LAST.len() as u64) as usize];
    let base = i64::from(store_no) * 100_000 + (mix(seed, &["roster", &n]) % 50_000) as i64;
    // Steps of 37 with jitter below 37 keep ids increasing and distinct.
    let id = base + i64::from(index) * 37 + ((h >> 32) % 37) as i64;
    let ref_code = format!(
        "{}{}",
        first.to_lowercase(),
        100 + index * 13 + (h % 13) as u32
    );
    Affiliate {
        id,
        name: format!("{first} {last}"),
        email: format!("{ref_code}@affiliates.example"),
        ref_code,
        status: "approved".into(),
    }
}

pub fn roster(seed: u64, store_no: u32, count: u32) -> Vec<Affiliate> {
    (0..count).map(|i| affiliate(seed, store_no, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn marketplace_days_follow_los_angeles_time_across_dst() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Winter: UTC-8.
        assert_eq!(la_date(at("2026-01-10T07:59:00Z")), day("2026-01-09"));
        assert_eq!(la_date(at("2026-01-10T08:00:00Z")), day("2026-01-10"));
        // Summer: UTC-7.
        assert_eq!(la_date(at("2026-07-10T06:59:00Z")), day("2026-07-09"));
        assert_eq!(la_date(at("2026-07-10T07:00:00Z")), day("2026-07-10"));
        // DST 2026 starts 8 March 10:00 UTC and ends 1 November 09:00 UTC.
        assert_eq!(la_date(at("2026-03-08T09:59:00Z")), day("2026-03-08"));
        // The night after it starts, UTC-8 would still say the 8th.
        assert_eq!(la_date(at("2026-03-09T07:30:00Z")), day("2026-03-09"));
        assert_eq!(la_date(at("2026-11-01T07:30:00Z")), day("2026-11-01"));
        assert_eq!(
            la_date(Utc.with_ymd_and_hms(2026, 11, 2, 7, 30, 0).unwrap()),
            day("2026-11-01")
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_account_and_rosters() {
        let (a, b, c) = (Ids::new(7), Ids::new(7), Ids::new(8));
        assert_eq!(a.profile_id, b.profile_id);
        assert_eq!(a.advertiser_id, b.advertiser_id);
        assert_ne!(a.profile_id, c.profile_id);
        assert_eq!(a.profile_id.to_string().len(), 16);
        assert_eq!(a.advertiser_id.len(), 13);
        assert_eq!(roster(7, 1, 12), roster(7, 1, 12));
        let ids: BTreeSet<i64> = roster(7, 1, 12)
            .iter()
            .chain(&roster(7, 2, 12))
            .map(|a| a.id)
            .collect();
        assert_eq!(ids.len(), 24, "affiliate ids are distinct across stores");
        let codes: BTreeSet<String> = roster(7, 1, 12).into_iter().map(|a| a.ref_code).collect();
        assert_eq!(codes.len(), 12);
    }
}
