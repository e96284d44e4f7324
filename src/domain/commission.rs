//! The program's default commission, as the platform last told us, and the arithmetic that turns
//! a day's figures into a commission (DESIGN §5): integer minor units in, one rounding (half away
//! from zero) out. Sales were already rounded to minor units when they were read.
use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::domain::{
    currency::Currency,
    money::{Money, MoneyError, round, scale},
};

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
        let value = super::money::parse_decimal(value)
            .map_err(|_| InvalidCommission(format!("value {value:?} is not a decimal number")))?;
        Self::new(kind.parse()?, value)
    }
}

/// Why no commission can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommissionError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A flat amount is in the program's currency; the sales are in the marketplace's. They do
    /// not mix (DESIGN §5).
    #[error(
        "the default commission is a flat {program} amount per purchase, but this Amazon \
         marketplace sells in {marketplace}: currencies never mix, so nothing is pushed. Switch the \
         program's default commission to a percentage, or connect a marketplace that sells in {program}"
    )]
    CurrencyMismatch {
        program: Currency,
        marketplace: Currency,
    },
}

impl DefaultCommission {
    /// Whether this commission can apply to sales in `marketplace` for a program in `program`:
    /// a percentage works in any currency; a flat amount only in its own (DESIGN §5).
    pub fn check_currencies(
        &self,
        program: Currency,
        marketplace: Currency,
    ) -> Result<(), CommissionError> {
        if self.kind == CommissionKind::Flat && program != marketplace {
            return Err(CommissionError::CurrencyMismatch {
                program,
                marketplace,
            });
        }
        Ok(())
    }

    /// The commission on a day's `sales` and `purchases`, in the sales' currency, rounded once
    /// half away from zero. `program` is the currency of a flat amount.
    pub fn commission(
        &self,
        sales: Money,
        purchases: i64,
        program: Currency,
    ) -> Result<Money, CommissionError> {
        self.check_currencies(program, sales.currency())?;
        let minor = self.commission_minor(sales.minor(), purchases, sales.currency().exponent())?;
        Ok(Money::new(minor, sales.currency()))
    }

    /// The commission in minor units for a day's sales (minor units) and purchases.
    /// `percentage`: sales × value / 100. `flat`: value × purchases. Rounded once.
    pub fn commission_minor(
        &self,
        sales_minor: i64,
        purchases: i64,
        exponent: u32,
    ) -> Result<i64, MoneyError> {
        let exact = match self.kind {
            CommissionKind::Percentage => Decimal::from(sales_minor)
                .checked_mul(self.value)
                .map(|v| v / Decimal::ONE_HUNDRED),
            CommissionKind::Flat => self
                .value
                .checked_mul(scale(exponent))
                .and_then(|v| v.checked_mul(Decimal::from(purchases))),
        };
        round(exact.ok_or_else(|| MoneyError::Overflow(format!("{sales_minor} / {purchases}")))?)
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

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn a_percentage_pays_in_the_marketplaces_currency_with_its_exponent() {
        let ten = DefaultCommission::from_columns("percentage", "10").unwrap();
        // USD program, Japanese marketplace: sales "1234.5" JPY → 1235 JPY, commission 124 JPY.
        let sales = Money::parse("1234.5", cur("JPY")).unwrap();
        let c = ten.commission(sales, 1, cur("USD")).unwrap();
        assert_eq!((c.minor(), c.currency()), (124, cur("JPY")));
        // KWD has three decimals: 12.3456 → 12.346 → 1.2346 → 1.235.
        let sales = Money::parse("12.3456", cur("KWD")).unwrap();
        assert_eq!(
            ten.commission(sales, 1, cur("USD")).unwrap().to_string(),
            "1.235 KWD"
        );
        let eur = Money::parse("19.99", cur("EUR")).unwrap();
        assert_eq!(
            ten.commission(eur, 1, cur("USD")).unwrap().to_string(),
            "2.00 EUR"
        );
    }

    #[test]
    fn a_flat_amount_never_crosses_currencies() {
        let flat = DefaultCommission::from_columns("flat", "2.50").unwrap();
        let usd = Money::parse("100", cur("USD")).unwrap();
        assert_eq!(
            flat.commission(usd, 3, cur("USD")).unwrap().to_string(),
            "7.50 USD"
        );
        for marketplace in ["EUR", "JPY", "KWD"] {
            let sales = Money::parse("100", cur(marketplace)).unwrap();
            assert_eq!(
                flat.commission(sales, 3, cur("USD")),
                Err(CommissionError::CurrencyMismatch {
                    program: cur("USD"),
                    marketplace: cur(marketplace)
                })
            );
        }
    }

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

    fn pct(v: &str) -> DefaultCommission {
        DefaultCommission::from_columns("percentage", v).unwrap()
    }

    fn flat(v: &str) -> DefaultCommission {
        DefaultCommission::from_columns("flat", v).unwrap()
    }

    #[test]
    fn the_design_example_and_rounding_tables() {
        use crate::domain::money::to_minor;
        // DESIGN §5: "191.95999999999998" USD → 19196 → 10 % → 1919.6 → 1920.
        let sales = to_minor("191.95999999999998", 2).unwrap();
        assert_eq!(pct("10").commission_minor(sales, 3, 2), Ok(1920));
        for (c, sales, purchases, exp, want) in [
            (pct("10"), 1995, 1, 2, 200),   // 199.5 → 200 (half away from zero)
            (pct("10"), 1994, 1, 2, 199),   // 199.4 → 199
            (pct("12.5"), 1004, 1, 2, 126), // 125.5 → 126
            (pct("12.5"), 1003, 1, 2, 125), // 125.375 → 125
            (pct("7"), 1235, 2, 0, 86),     // JPY: 86.45 → 86
            (pct("7"), 1250, 2, 0, 88),     // JPY: 87.5 → 88
            (pct("3"), 12345, 1, 3, 370),   // KWD: 370.35 → 370
            (pct("3"), 12350, 1, 3, 371),   // KWD: 370.5 → 371
            (pct("0"), 99999, 9, 2, 0),
            (pct("100"), 4321, 1, 2, 4321),
            (flat("2.50"), 0, 3, 2, 750),  // 2.50 × 3 purchases
            (flat("2.505"), 0, 1, 2, 251), // 250.5 → 251, rounded once
            (flat("2.505"), 0, 2, 2, 501), // 501.0: not 251 × 2
            (flat("150"), 0, 2, 0, 300),   // JPY
            (flat("0.125"), 0, 4, 3, 500), // KWD
            (flat("5"), 0, 0, 2, 0),
        ] {
            assert_eq!(
                c.commission_minor(sales, purchases, exp),
                Ok(want),
                "{c} on {sales}/{purchases} exp {exp}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn a_commission_is_within_half_a_minor_unit_of_the_exact_value(
            sales in 0i64..10_000_000_000,
            bp in 0u32..=10_000,
            exp in 0u32..=3,
        ) {
            let rate = Decimal::new(i64::from(bp), 2);
            let c = DefaultCommission::new(CommissionKind::Percentage, rate).unwrap();
            let got = c.commission_minor(sales, 0, exp).unwrap();
            let exact = Decimal::from(sales) * rate / Decimal::ONE_HUNDRED;
            proptest::prop_assert!((Decimal::from(got) - exact).abs() <= Decimal::new(5, 1));
        }

        #[test]
        fn reading_sales_is_within_half_a_minor_unit(cents in 0i64..1_000_000_000, noise in -9i64..=9, exp in 0u32..=3) {
            // Amazon's float artefacts: the exact value ± a few units in the 14th decimal.
            let exact = Decimal::new(cents, exp) + Decimal::new(noise, 14);
            let got = crate::domain::money::to_minor(&exact.to_string(), exp).unwrap();
            proptest::prop_assert_eq!(got, cents);
            let scaled = exact * crate::domain::money::scale(exp);
            proptest::prop_assert!((Decimal::from(got) - scaled).abs() <= Decimal::new(5, 1));
        }
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            r#"{"type":"recurring","value":"10"}"#,
            r#"{"type":"percentage","value":"-1"}"#,
            r#"{"type":"percentage","value":"101"}"#,
            r#"{"type":"flat","value":"two"}"#,
            r#"{"type":"flat"}"#,
            // Text `rust_decimal` alone would read as 10 or 2.5: no number (money::parse_decimal).
            r#"{"type":"percentage","value":"1_0"}"#,
            r#"{"type":"flat","value":"2__.5"}"#,
            r#"{"type":"flat","value":""}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
