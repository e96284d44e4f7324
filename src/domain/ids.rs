//! Identifier newtypes, validated where they enter the system.
use std::fmt;

use serde::{Deserialize, Serialize};

/// A platform store id (`st_1001`): 1–64 characters of `[A-Za-z0-9_-]`. It appears in URLs, order
/// numbers and Amazon campaign ids, so nothing else is allowed in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct StoreId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("store id must be 1-64 characters of letters, digits, '_' or '-'")]
pub struct InvalidStoreId;

impl StoreId {
    pub fn parse(s: &str) -> Result<Self, InvalidStoreId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(s.to_owned())).ok_or(InvalidStoreId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StoreId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An affiliate id of the program (a positive integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AffiliateId(i64);

impl AffiliateId {
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for AffiliateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for AffiliateId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Programs send ids as numbers; some send numeric strings.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Str(String),
        }
        let id = match Raw::deserialize(d)? {
            Raw::Num(n) => n,
            Raw::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| serde::de::Error::custom("affiliate id must be a positive integer"))?,
        };
        Self::new(id)
            .ok_or_else(|| serde::de::Error::custom("affiliate id must be a positive integer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_admit_only_safe_characters() {
        assert!(StoreId::parse("st_1001").is_ok());
        assert!(StoreId::parse("A-b_9").is_ok());
        for bad in ["", "st 1", "st/1", "st.1", "st&1", &"x".repeat(65)] {
            assert_eq!(StoreId::parse(bad), Err(InvalidStoreId), "{bad:?}");
        }
    }

    #[test]
    fn affiliate_ids_are_positive_numbers_or_numeric_strings() {
        let id: AffiliateId = serde_json::from_str("123").unwrap();
        assert_eq!(id.get(), 123);
        let id: AffiliateId = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(id.get(), 42);
        assert!(serde_json::from_str::<AffiliateId>("0").is_err());
        assert!(serde_json::from_str::<AffiliateId>("-3").is_err());
        assert!(serde_json::from_str::<AffiliateId>("\"abc\"").is_err());
    }
}
