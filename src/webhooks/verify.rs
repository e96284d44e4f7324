//! Standard Webhooks verification (HMAC-SHA256, `v1`), shared by platform webhooks and load links.
//! Keys come from `[platform] webhook_secrets`; any of them may have signed (rotation).
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;

use crate::config::{ConfigError, decode_webhook_secret};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("invalid {0} header")]
    InvalidHeader(&'static str),
    #[error("timestamp is outside the accepted tolerance")]
    Expired,
    #[error("no signature matches")]
    BadSignature,
}

pub struct Verifier {
    keys: Vec<Vec<u8>>,
    tolerance_secs: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Verifier {{ keys: [REDACTED; {}], tolerance_secs: {} }}",
            self.keys.len(),
            self.tolerance_secs
        )
    }
}

/// The three Standard Webhooks headers, as received (any may be absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl Verifier {
    pub fn new(secrets: &[SecretString], tolerance_secs: u64) -> Result<Self, ConfigError> {
        let keys = secrets
            .iter()
            .map(decode_webhook_secret)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            tolerance_secs,
        })
    }

    /// Checks a webhook delivery against `now` (unix seconds). Only the raw bytes are signed, so
    /// nothing is parsed before this passes.
    pub fn verify_webhook(
        &self,
        headers: SignedHeaders<'_>,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let id = headers.id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
        let timestamp = headers
            .timestamp
            .ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
        let signature = headers
            .signature
            .ok_or(VerifyError::MissingHeader("webhook-signature"))?;
        if id.is_empty()
            || id.len() > 255
            || id.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(VerifyError::InvalidHeader("webhook-id"));
        }
        self.check_timestamp(timestamp, now, "webhook-timestamp")?;
        self.check_signature(signature, &[id.as_bytes(), timestamp.as_bytes(), body])
    }

    /// Checks a load link: `signature` = `v1,` + base64(HMAC-SHA256(key, "{store_id}.{timestamp}")).
    pub fn verify_load_link(
        &self,
        store_id: &str,
        timestamp: &str,
        signature: &str,
        now: i64,
    ) -> Result<(), VerifyError> {
        self.check_timestamp(timestamp, now, "timestamp")?;
        self.check_signature(signature, &[store_id.as_bytes(), timestamp.as_bytes()])
    }

    /// Signs with the first key: what a platform sends. Used by the sandbox and by tests.
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.keys[0]).expect("HMAC takes any key length");
        feed(&mut mac, parts);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// Unsigned decimal seconds only. Hostile values (negative, huge, not a number) are refused;
    /// the rest are compared with `now` exactly, in 128 bits (never overflowing, whatever `now`).
    fn check_timestamp(
        &self,
        raw: &str,
        now: i64,
        header: &'static str,
    ) -> Result<(), VerifyError> {
        if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::InvalidHeader(header));
        }
        let ts: u64 = raw
            .parse()
            .map_err(|_| VerifyError::InvalidHeader(header))?;
        if (i128::from(ts) - i128::from(now)).unsigned_abs() > u128::from(self.tolerance_secs) {
            return Err(VerifyError::Expired);
        }
        Ok(())
    }

    fn check_signature(&self, header: &str, parts: &[&[u8]]) -> Result<(), VerifyError> {
        let candidates: Vec<Vec<u8>> = header
            .split(' ')
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .filter_map(|(_, sig)| B64.decode(sig).ok())
            .collect();
        for key in &self.keys {
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
            feed(&mut mac, parts);
            // `verify_slice` compares in constant time; every candidate is checked so the time
            // does not depend on which one matched.
            let matched = candidates
                .iter()
                .fold(false, |acc, c| acc | mac.clone().verify_slice(c).is_ok());
            if matched {
                return Ok(());
            }
        }
        Err(VerifyError::BadSignature)
    }
}

/// `part0.part1.part2…`, the Standard Webhooks signed content.
fn feed(mac: &mut HmacSha256, parts: &[&[u8]]) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b".");
        }
        mac.update(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: &str = "1649367553";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    const NOW: i64 = 1_649_367_553;

    fn verifier(secrets: &[&str]) -> Verifier {
        let secrets: Vec<SecretString> = secrets.iter().map(|s| SecretString::from(*s)).collect();
        Verifier::new(&secrets, 300).unwrap()
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn official_test_vector_verifies_and_signs() {
        let v = verifier(&[SECRET]);
        assert_eq!(v.verify_webhook(headers(ID, TS, SIG), BODY, NOW), Ok(()));
        assert_eq!(v.sign(&[ID.as_bytes(), TS.as_bytes(), BODY]), SIG);
    }

    #[test]
    fn tampered_body_or_wrong_secret_fails() {
        let v = verifier(&[SECRET]);
        let tampered = br#"{"email":"test@example.com","username":"test_user2"}"#;
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), tampered, NOW),
            Err(VerifyError::BadSignature)
        );
        let other = verifier(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert_eq!(
            other.verify_webhook(headers(ID, TS, SIG), BODY, NOW),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn any_secret_of_a_rotation_and_any_signature_of_the_list_is_enough() {
        let v = verifier(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SECRET]);
        assert_eq!(v.verify_webhook(headers(ID, TS, SIG), BODY, NOW), Ok(()));
        let list = format!("v1,bm9wZQ== v2,whatever v1a,xyz {SIG}");
        assert_eq!(v.verify_webhook(headers(ID, TS, &list), BODY, NOW), Ok(()));
    }

    #[test]
    fn partial_or_malformed_signatures_fail() {
        let v = verifier(&[SECRET]);
        for sig in [
            "",
            "v1,",
            "v1",
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hDygAJ",
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ] {
            assert_eq!(
                v.verify_webhook(headers(ID, TS, sig), BODY, NOW),
                Err(VerifyError::BadSignature),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn missing_headers_are_named() {
        let v = verifier(&[SECRET]);
        let mut h = headers(ID, TS, SIG);
        h.id = None;
        assert_eq!(
            v.verify_webhook(h, BODY, NOW),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        let mut h = headers(ID, TS, SIG);
        h.timestamp = None;
        assert_eq!(
            v.verify_webhook(h, BODY, NOW),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        let mut h = headers(ID, TS, SIG);
        h.signature = None;
        assert_eq!(
            v.verify_webhook(h, BODY, NOW),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
    }

    #[test]
    fn timestamps_outside_tolerance_or_hostile_are_refused_without_overflow() {
        let v = verifier(&[SECRET]);
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), BODY, NOW + 300),
            Ok(())
        );
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), BODY, NOW - 300),
            Ok(())
        );
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), BODY, NOW + 301),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), BODY, NOW - 301),
            Err(VerifyError::Expired)
        );
        let i64_min = i64::MIN.to_string();
        let u64_max = u64::MAX.to_string();
        for (ts, want) in [
            (
                "-1649367553",
                VerifyError::InvalidHeader("webhook-timestamp"),
            ),
            ("abc", VerifyError::InvalidHeader("webhook-timestamp")),
            ("", VerifyError::InvalidHeader("webhook-timestamp")),
            (
                "1649367553.5",
                VerifyError::InvalidHeader("webhook-timestamp"),
            ),
            (
                i64_min.as_str(),
                VerifyError::InvalidHeader("webhook-timestamp"),
            ),
            (u64_max.as_str(), VerifyError::Expired),
            (
                "99999999999999999999999",
                VerifyError::InvalidHeader("webhook-timestamp"),
            ),
            ("0", VerifyError::Expired),
        ] {
            assert_eq!(
                v.verify_webhook(headers(ID, ts, SIG), BODY, NOW),
                Err(want),
                "{ts:?}"
            );
        }
        // A clock before 1970 (or a hostile `now`) is no overflow either.
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), BODY, i64::MIN),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            v.verify_webhook(headers(ID, TS, SIG), BODY, i64::MAX),
            Err(VerifyError::Expired)
        );
    }

    #[test]
    fn load_links_sign_store_and_timestamp() {
        let v = verifier(&[SECRET]);
        let sig = v.sign(&[b"st_1001", TS.as_bytes()]);
        assert_eq!(v.verify_load_link("st_1001", TS, &sig, NOW), Ok(()));
        assert_eq!(
            v.verify_load_link("st_1002", TS, &sig, NOW),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            v.verify_load_link("st_1001", TS, &sig, NOW + 301),
            Err(VerifyError::Expired)
        );
    }
}
