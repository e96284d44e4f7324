//! The program's default commission, as the platform last told us. The arithmetic that turns
//! Amazon's figures into commissions joins this module with the daily sync.
use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommissionKind {
    /// `value` percent of the day's sales.
    Percentage,
    /// `value` (major units of the store currency) per purchase.
    Flat,
}

impl CommissionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Percentage => "percentage",
            Self::Flat => "flat",
        }
    }
}

impl FromStr for CommissionKind {
    type Err = InvalidCommission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "percentage" => Ok(Self::Percentage),
            "flat" => Ok(Self::Flat),
            other => Err(InvalidCommission(format!(
                "type must be \"percentage\" or \"flat\", not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultCommission {
    pub kind: CommissionKind,
    pub value: Decimal,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid default commission: {0}")]
pub struct InvalidCommission(pub String);

impl DefaultCommission {
    pub fn new(kind: CommissionKind, value: Decimal) -> Result<Self, InvalidCommission> {
        if value.is_sign_negative() {
            return Err(InvalidCommission("value must not be negative".into()));
        }
        if kind == CommissionKind::Percentage && value > Decimal::ONE_HUNDRED {
            return Err(InvalidCommission("a percentage must not exceed 100".into()));
        }
        Ok(Self { kind, value })
    }

    /// From the stored columns (`commission_type`, `commission_value`).
    pub fn from_columns(kind: &str, value: &str) -> Result<Self, InvalidCommission> {
        let value = Decimal::from_str(value)
            .map_err(|_| InvalidCommission(format!("value {value:?} is not a decimal number")))?;
        Self::new(kind.parse()?, value)
    }
}

impl fmt::Display for DefaultCommission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            CommissionKind::Percentage => write!(f, "{}% of sales", self.value.normalize()),
            CommissionKind::Flat => write!(f, "{} per purchase", self.value.normalize()),
        }
    }
}

impl<'de> Deserialize<'de> for DefaultCommission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Str(String),
            Num(serde_json::Number),
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: String,
            value: Number,
        }
        let raw = Raw::deserialize(d)?;
        let text = match raw.value {
            Number::Str(s) => s,
            Number::Num(n) => n.to_string(),
        };
        Self::from_columns(&raw.kind, text.trim()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<DefaultCommission, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn accepts_percentages_and_flat_amounts_as_strings_or_numbers() {
        let c = parse(r#"{"type":"percentage","value":"10"}"#).unwrap();
        assert_eq!(
            (c.kind, c.value),
            (CommissionKind::Percentage, Decimal::TEN)
        );
        let c = parse(r#"{"type":"flat","value":2.5}"#).unwrap();
        assert_eq!(c.kind, CommissionKind::Flat);
        assert_eq!(c.value, Decimal::from_str("2.5").unwrap());
        assert_eq!(c.to_string(), "2.5 per purchase");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            r#"{"type":"recurring","value":"10"}"#,
            r#"{"type":"percentage","value":"-1"}"#,
            r#"{"type":"percentage","value":"101"}"#,
            r#"{"type":"flat","value":"two"}"#,
            r#"{"type":"flat"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
