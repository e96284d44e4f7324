//! An affiliate of the program, as the platform's webhooks and the roster describe it.
use serde::Deserialize;

use super::ids::AffiliateId;

#[derive(Debug, Clone, Deserialize)]
pub struct Affiliate {
    pub id: AffiliateId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ref_code: Option<String>,
    /// The program's own word (`approved`, `pending`, `blocked` …), shown as it is.
    #[serde(default = "default_status")]
    pub status: String,
}

fn default_status() -> String {
    "approved".to_owned()
}
