//! Money as integer minor units. Amazon's decimal text is converted once, rounding half away from
//! zero; amounts leave the app as exact decimal text made from the integers.
use std::{fmt, str::FromStr};

use rust_decimal::{Decimal, RoundingStrategy};

use super::currency::Currency;

/// An amount: integer minor units of one currency (DESIGN §5). Amounts of different currencies
/// never add up: arithmetic is only defined within one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Amazon's decimal text in `currency`: `"1234.5"` JPY → 1235 JPY (DESIGN §5).
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        Ok(Self::new(to_minor(text, currency.exponent())?, currency))
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Exact major-unit text with the currency's decimals, without the code: `"191.96"`.
    pub fn major(self) -> String {
        format_minor(self.minor, self.currency.exponent())
    }
}

/// `"191.96 USD"`, `"1235 JPY"`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major(), self.currency)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("{0} does not fit in minor units")]
    Overflow(String),
}

/// `10^exponent` as a decimal.
pub fn scale(exponent: u32) -> Decimal {
    Decimal::from(10i64.pow(exponent))
}

/// Parses Amazon's number text (`"191.95999999999998"`, `"30"`, `"1.5E2"`, `""` = 0).
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Decimal::ZERO);
    }
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| MoneyError::NotANumber(text.to_owned()))
}

/// Rounds half away from zero to an integer.
pub fn round(value: Decimal) -> Result<i64, MoneyError> {
    let rounded = value.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(rounded).map_err(|_| MoneyError::Overflow(value.to_string()))
}

/// Major-unit text to minor units: `"191.95999999999998"` USD → 19196.
pub fn to_minor(text: &str, exponent: u32) -> Result<i64, MoneyError> {
    let value = parse_decimal(text)?;
    round(
        value
            .checked_mul(scale(exponent))
            .ok_or_else(|| MoneyError::Overflow(text.to_owned()))?,
    )
}

/// A count (clicks, purchases, units) from Amazon's text; fractional text is rounded.
pub fn to_count(text: &str) -> Result<i64, MoneyError> {
    round(parse_decimal(text)?)
}

/// Minor units as major-unit text with exactly the currency's decimals: 19196 → "191.96",
/// 1920 JPY → "1920", 5 KWD-fils → "0.005".
pub fn format_minor(minor: i64, exponent: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10u64.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_strings_round_half_away_from_zero_to_minor_units() {
        for (text, exp, minor) in [
            ("191.95999999999998", 2, 19196),
            ("14.280000000000001", 2, 1428),
            ("0.005", 2, 1),
            ("0.004999", 2, 0),
            ("2.675", 2, 268),
            ("-2.675", 2, -268),
            ("1234.5", 0, 1235),
            ("1234.49", 0, 1234),
            ("1.0005", 3, 1001),
            ("1.0004", 3, 1000),
            ("30", 2, 3000),
            ("", 2, 0),
            ("1.5E2", 2, 15000),
            ("25.8799991607666", 2, 2588),
        ] {
            assert_eq!(to_minor(text, exp), Ok(minor), "{text} exp {exp}");
        }
        assert!(to_minor("abc", 2).is_err());
        assert!(to_minor("1e40", 2).is_err());
    }

    #[test]
    fn money_carries_its_currency_and_its_exponent() {
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::parse("1234.5", jpy).unwrap().to_string(), "1235 JPY");
        assert_eq!(Money::parse("1.0005", kwd).unwrap().minor(), 1001);
        assert_eq!(
            Money::parse("1.0005", kwd).unwrap().to_string(),
            "1.001 KWD"
        );
    }

    #[test]
    fn minor_units_format_with_exactly_the_currencys_decimals() {
        assert_eq!(format_minor(19196, 2), "191.96");
        assert_eq!(format_minor(1920, 2), "19.20");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(1920, 0), "1920");
        assert_eq!(format_minor(5, 3), "0.005");
        assert_eq!(format_minor(-150, 2), "-1.50");
    }
}
