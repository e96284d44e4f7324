//! The platform's event payloads (DESIGN §4.1), parsed only after the signature passed.
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

pub use crate::domain::affiliate::Affiliate;
use crate::domain::{
    commission::DefaultCommission,
    currency::Currency,
    hosts::HostPolicy,
    ids::{AffiliateId, StoreId},
};

#[derive(Debug)]
pub enum Event {
    Installed(Installed),
    Uninstalled {
        store_id: StoreId,
    },
    AffiliateUpserted {
        store_id: StoreId,
        affiliate: Affiliate,
    },
    AffiliateDeleted {
        store_id: StoreId,
        affiliate_id: AffiliateId,
    },
    CommissionUpdated {
        store_id: StoreId,
        commission: DefaultCommission,
    },
    Redact {
        store_id: StoreId,
    },
    /// Recorded and acknowledged, nothing else.
    Unknown {
        event_type: String,
    },
}

impl Event {
    pub fn store_id(&self) -> Option<&StoreId> {
        match self {
            Self::Installed(i) => Some(&i.store.id),
            Self::Uninstalled { store_id }
            | Self::AffiliateUpserted { store_id, .. }
            | Self::AffiliateDeleted { store_id, .. }
            | Self::CommissionUpdated { store_id, .. }
            | Self::Redact { store_id } => Some(store_id),
            Self::Unknown { .. } => None,
        }
    }
}

#[derive(Debug)]
pub struct Installed {
    pub store: StoreInfo,
    pub access_token: SecretString,
    pub api_url: Option<Url>,
    pub commission: DefaultCommission,
}

#[derive(Debug)]
pub struct StoreInfo {
    pub id: StoreId,
    pub name: String,
    pub url: String,
    pub currency: Currency,
}

/// Why a signed body was refused (400): nothing is stored or changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPayload(pub String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct StoreRef {
    id: StoreId,
}

#[derive(Deserialize)]
struct StoreOnly {
    store: StoreRef,
}

#[derive(Deserialize)]
struct InstalledData {
    store: RawStore,
    program: RawProgram,
}

#[derive(Deserialize)]
struct RawStore {
    id: StoreId,
    name: String,
    url: String,
    currency: String,
}

#[derive(Deserialize)]
struct RawProgram {
    access_token: SecretString,
    #[serde(default)]
    api_url: Option<String>,
    default_commission: DefaultCommission,
}

#[derive(Deserialize)]
struct AffiliateData {
    store_id: StoreId,
    affiliate: Affiliate,
}

#[derive(Deserialize)]
struct AffiliateDeletedData {
    store_id: StoreId,
    affiliate: AffiliateRef,
}

#[derive(Deserialize)]
struct AffiliateRef {
    id: AffiliateId,
}

#[derive(Deserialize)]
struct CommissionData {
    store_id: StoreId,
    default_commission: DefaultCommission,
}

/// The event's type as sent, and the event. An install's `program.api_url` must pass `hosts`
/// (DESIGN §7): what can be decided without DNS is decided here, before anything is stored.
pub fn parse(body: &[u8], hosts: &HostPolicy) -> Result<(String, Event), MalformedPayload> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| MalformedPayload(format!("body is not a webhook event: {e}")))?;
    let data = envelope.data;
    let event_type = envelope.event_type;
    // Text that is stored must be storable everywhere: PostgreSQL refuses NUL in text, and a
    // delivery it can never commit would be answered 503 and retried forever.
    if event_type.contains('\0') {
        return Err(MalformedPayload("type contains a NUL character".into()));
    }
    let bad = |e: serde_json::Error| MalformedPayload(format!("{event_type} payload: {e}"));
    let known = [
        "app.installed",
        "app.uninstalled",
        "store.redact",
        "affiliate.created",
        "affiliate.updated",
        "affiliate.deleted",
        "program.commission_updated",
    ];
    if known.contains(&event_type.as_str()) && has_nul(&data) {
        return Err(MalformedPayload(format!(
            "{event_type} payload: text contains a NUL character"
        )));
    }
    let event = match event_type.as_str() {
        "app.installed" => {
            let d: InstalledData = serde_json::from_value(data).map_err(bad)?;
            Event::Installed(
                installed(d, hosts)
                    .map_err(|m| MalformedPayload(format!("{event_type} payload: {m}")))?,
            )
        }
        "app.uninstalled" => {
            let d: StoreOnly = serde_json::from_value(data).map_err(bad)?;
            Event::Uninstalled {
                store_id: d.store.id,
            }
        }
        "store.redact" => {
            let d: StoreOnly = serde_json::from_value(data).map_err(bad)?;
            Event::Redact {
                store_id: d.store.id,
            }
        }
        "affiliate.created" | "affiliate.updated" => {
            let d: AffiliateData = serde_json::from_value(data).map_err(bad)?;
            Event::AffiliateUpserted {
                store_id: d.store_id,
                affiliate: d.affiliate,
            }
        }
        "affiliate.deleted" => {
            let d: AffiliateDeletedData = serde_json::from_value(data).map_err(bad)?;
            Event::AffiliateDeleted {
                store_id: d.store_id,
                affiliate_id: d.affiliate.id,
            }
        }
        "program.commission_updated" => {
            let d: CommissionData = serde_json::from_value(data).map_err(bad)?;
            Event::CommissionUpdated {
                store_id: d.store_id,
                commission: d.default_commission,
            }
        }
        _ => Event::Unknown {
            event_type: event_type.clone(),
        },
    };
    Ok((event_type, event))
}

/// Whether any string or key in `v` holds a NUL character.
fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

fn installed(d: InstalledData, hosts: &HostPolicy) -> Result<Installed, String> {
    use secrecy::ExposeSecret;
    let currency = Currency::parse(&d.store.currency).map_err(|e| e.to_string())?;
    if d.store.name.trim().is_empty() {
        return Err("store.name must not be empty".into());
    }
    if d.program.access_token.expose_secret().trim().is_empty() {
        return Err("program.access_token must not be empty".into());
    }
    let api_url = match d.program.api_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            let url = Url::parse(raw).map_err(|e| format!("program.api_url: {e}"))?;
            // The program's token travels to this URL: https to a public host, unless the
            // operator allowed the host (the sandbox, local doubles, an internal program).
            hosts
                .check_url(&url)
                .map_err(|e| format!("program.api_url: {e}"))?;
            Some(url)
        }
    };
    let store_url = Url::parse(d.store.url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("store.url must be an http(s) URL")?;

    Ok(Installed {
        store: StoreInfo {
            id: d.store.id,
            name: d.store.name.trim().to_owned(),
            url: store_url.to_string(),

            currency,
        },
        access_token: d.program.access_token,
        api_url,
        commission: d.program.default_commission,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events as the app reads them with no host allowed at private addresses.
    fn parse(body: &[u8]) -> Result<(String, Event), MalformedPayload> {
        super::parse(body, &HostPolicy::default())
    }

    #[test]
    fn parses_every_known_event() {
        let install = br#"{"type":"app.installed","timestamp":"2026-11-20T10:00:00Z","data":{
          "store":{"id":"st_1001","name":"Acme Outdoors","url":"https://acme.example","currency":"USD"},
          "program":{"access_token":"gpat_x","default_commission":{"type":"percentage","value":"10"}}}}"#;
        assert!(
            matches!(parse(install).map(|p| p.1), Ok(Event::Installed(i)) if i.store.id.as_str() == "st_1001" && i.api_url.is_none())
        );
        let aff = br#"{"type":"affiliate.updated","data":{"store_id":"st_1","affiliate":{"id":123,"name":"Alice","ref_code":"alice","status":"approved"}}}"#;
        assert!(
            matches!(parse(aff).map(|p| p.1), Ok(Event::AffiliateUpserted { affiliate, .. }) if affiliate.id.get() == 123)
        );
        let del =
            br#"{"type":"affiliate.deleted","data":{"store_id":"st_1","affiliate":{"id":123}}}"#;
        assert!(matches!(
            parse(del).map(|p| p.1),
            Ok(Event::AffiliateDeleted { .. })
        ));
        let unknown = br#"{"type":"order.created","data":{}}"#;
        assert!(
            matches!(parse(unknown).map(|p| p.1), Ok(Event::Unknown { event_type }) if event_type == "order.created")
        );
    }

    #[test]
    fn urls_that_would_leak_the_token_or_run_script_are_refused() {
        let local = HostPolicy::allowing(["127.0.0.1"]);
        let install_with = |hosts: &HostPolicy, store_url: &str, api_url: &str| {
            let body = format!(
                r#"{{"type":"app.installed","data":{{"store":{{"id":"st_1","name":"A","url":"{store_url}","currency":"USD"}},
                "program":{{"access_token":"t","api_url":"{api_url}","default_commission":{{"type":"flat","value":"1"}}}}}}}}"#
            );
            super::parse(body.as_bytes(), hosts).map(|_| ())
        };
        let install = |store_url: &str, api_url: &str| {
            install_with(&HostPolicy::default(), store_url, api_url)
        };
        assert!(install("https://a.example", "https://api.goaffpro.com/v1").is_ok());
        assert!(
            install_with(&local, "https://a.example", "http://127.0.0.1:9000/v1").is_ok(),
            "local doubles and the sandbox, once allowed"
        );
        let refused = install("https://a.example", "http://127.0.0.1:9000/v1").unwrap_err();
        assert!(refused.to_string().contains("program.api_url"), "{refused}");
        assert!(install("https://a.example", "https://[fd00::1]/").is_err());
        assert!(install("https://a.example", "https://user:pw@api.example/").is_err());
        assert!(
            install("https://a.example", "http://api.goaffpro.com/v1").is_err(),
            "the token over plain http"
        );
        assert!(install("javascript:alert(1)", "https://api.goaffpro.com/v1").is_err());
    }

    #[test]
    fn malformed_payloads_are_refused() {
        for body in [
            &b"not json"[..],
            br#"{"data":{}}"#,
            br#"{"type":"app.uninstalled","data":{}}"#,
            br#"{"type":"app.uninstalled","data":{"store":{"id":"bad id"}}}"#,
            br#"{"type":"app.installed","data":{"store":{"id":"st_1","name":"A","url":"u","currency":"ZZZ"},"program":{"access_token":"t","default_commission":{"type":"flat","value":"1"}}}}"#,
            br#"{"type":"program.commission_updated","data":{"store_id":"st_1","default_commission":{"type":"recurring","value":"1"}}}"#,
            // Found by the fuzzer (tests/api/fuzz.rs): PostgreSQL cannot store a NUL, so such a
            // delivery was answered 503 and retried forever.
            br#"{"type":"\u0000","data":{}}"#,
            br#"{"type":"affiliate.created","data":{"store_id":"st_1","affiliate":{"id":1,"name":"A\u0000"}}}"#,
            br#"{"type":"app.installed","data":{"store":{"id":"st_1","name":"A\u0000","url":"https://a.example","currency":"USD"},"program":{"access_token":"t","default_commission":{"type":"flat","value":"1"}}}}"#,
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
