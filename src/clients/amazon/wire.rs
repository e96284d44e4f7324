//! Amazon's wire formats, read leniently: field-name variants, numbers as strings or numbers,
//! null ids (reference §3–4). Nothing here is trusted to be the documented shape.
use serde::Deserialize;
use serde_json::Value;

pub use crate::clients::lenient::{opt_text, text};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(deserialize_with = "text")]
    pub profile_id: String,
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub account_info: AccountInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    #[serde(default)]
    pub marketplace_string_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sub_type: Option<String>,
}

impl Profile {
    /// Legacy Attribution-only profiles are to be ignored by new integrations.
    pub fn is_legacy_attribution(&self) -> bool {
        self.account_info
            .sub_type
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("AMAZON_ATTRIBUTION"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Advertiser {
    #[serde(deserialize_with = "opt_text", default)]
    pub advertiser_id: Option<String>,
    #[serde(default)]
    pub advertiser_name: Option<String>,
}

/// `{"advertisers": [...]}` or a bare array.
pub fn advertisers(body: Value) -> Result<Vec<Advertiser>, serde_json::Error> {
    let list = match body {
        Value::Object(mut map) => map.remove("advertisers").unwrap_or(Value::Array(vec![])),
        other => other,
    };
    serde_json::from_value(list)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publisher {
    #[serde(deserialize_with = "text")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub macro_enabled: Option<bool>,
}

/// `publishers`, `publisher` or a bare array (the spec and the live service disagree).
pub fn publishers(body: Value) -> Result<Vec<Publisher>, serde_json::Error> {
    let list = match body {
        Value::Object(mut map) => map
            .remove("publishers")
            .or_else(|| map.remove("publisher"))
            .unwrap_or(Value::Array(vec![])),
        other => other,
    };
    serde_json::from_value(list)
}

/// The tag for (advertiser, publisher) out of `{adv: {pub: tag}}`, wrapped in
/// `advertiserAttributionTagMap` or not.
pub fn tag_for(body: &Value, advertiser_id: &str, publisher_id: &str) -> Option<String> {
    let map = body.get("advertiserAttributionTagMap").unwrap_or(body);
    map.get(advertiser_id)?
        .get(publisher_id)?
        .as_str()
        .map(str::to_owned)
}

/// The human text of an Amazon error body: `details` (MaaSError) or `message`.
pub fn error_detail(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            ["details", "message", "error_description", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn profiles_accept_numbers_or_strings_and_spot_legacy_ones() {
        let p: Vec<Profile> = serde_json::from_value(json!([
            {"profileId": 3312910465837761i64, "countryCode": "US", "dailyBudget": 9.99999999E8,
             "accountInfo": {"marketplaceStringId": "ATVPDKIKX0DER", "id": "A3L", "type": "seller", "name": "Store"}},
            {"profileId": "42", "accountInfo": {"subType": "AMAZON_ATTRIBUTION"}}
        ]))
        .unwrap();
        assert_eq!(p[0].profile_id, "3312910465837761");
        assert!(!p[0].is_legacy_attribution());
        assert!(p[1].is_legacy_attribution());
    }

    #[test]
    fn every_publisher_and_advertiser_shape_is_read() {
        for body in [
            json!({"publishers": [{"id": "12", "name": "Email - Other"}]}),
            json!({"publisher": [{"id": 12, "name": "Email - Other"}]}),
            json!([{"id": "12"}]),
        ] {
            assert_eq!(publishers(body).unwrap()[0].id, "12");
        }
        let a = advertisers(
            json!({"advertisers": [{"advertiserId": 1964981050701i64, "advertiserName": "L"}]}),
        )
        .unwrap();
        assert_eq!(a[0].advertiser_id.as_deref(), Some("1964981050701"));
        let a = advertisers(json!([{"advertiserId": null}])).unwrap();
        assert_eq!(a[0].advertiser_id, None);
    }

    #[test]
    fn tag_maps_with_or_without_the_wrapper() {
        let bare = json!({"A1": {"12": "?maas=x"}});
        let wrapped = json!({"advertiserAttributionTagMap": {"A1": {"12": "?maas=x"}}});
        assert_eq!(tag_for(&bare, "A1", "12").as_deref(), Some("?maas=x"));
        assert_eq!(tag_for(&wrapped, "A1", "12").as_deref(), Some("?maas=x"));
        assert_eq!(tag_for(&bare, "A1", "9"), None);
    }

    #[test]
    fn error_bodies_give_details_or_message() {
        assert_eq!(error_detail(r#"{"code":"400","details":"bad"}"#), "bad");
        assert_eq!(
            error_detail(r#"{"message":"This profileID is not authorized"}"#),
            "This profileID is not authorized"
        );
        assert_eq!(error_detail("oops"), "oops");
    }
}
