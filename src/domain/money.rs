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
    #[error("{0:?} is not a whole number")]
    NotACount(String),
}

/// `10^exponent` as a decimal.
pub fn scale(exponent: u32) -> Decimal {
    Decimal::from(10i64.pow(exponent))
}

/// Parses number text as Amazon and the program write it: an optional sign, digits with at most
/// one decimal point, an optional exponent (`"191.95999999999998"`, `"30"`, `"1.5E2"`), blanks
/// around it ignored. Anything else is no number: `""` (never zero, DESIGN §4.3), `"5_0.00"` and
/// `"1__0"` (which `rust_decimal` alone reads as 50 and 10), `"0x10"`, `"NaN"`.
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let t = text.trim();
    if !is_number_text(t) {
        return Err(MoneyError::NotANumber(text.to_owned()));
    }
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| MoneyError::NotANumber(text.to_owned()))
}

/// `[+-]digits[.digits][(e|E)[+-]digits]`, with digits on at least one side of the point.
fn is_number_text(t: &str) -> bool {
    fn unsigned(s: &str) -> &str {
        s.strip_prefix(['+', '-']).unwrap_or(s)
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], Some(&t[at + 1..])),
        None => (t, None),
    };
    let mantissa = unsigned(mantissa);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    (!whole.is_empty() || !fraction.is_empty())
        && digits(whole)
        && digits(fraction)
        && exponent.is_none_or(|e| {
            let e = unsigned(e);
            !e.is_empty() && digits(e)
        })
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

/// A count (clicks, purchases, units) from Amazon's text: a whole number (`"3"`, `"3.0"`,
/// `"1e3"`). Half a purchase is no count Amazon gives: an error, never rounded into a real one.
pub fn to_count(text: &str) -> Result<i64, MoneyError> {
    let value = parse_decimal(text)?;
    if !value.fract().is_zero() {
        return Err(MoneyError::NotACount(text.to_owned()));
    }
    round(value)
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
            ("1.5E2", 2, 15000),
            ("25.8799991607666", 2, 2588),
        ] {
            assert_eq!(to_minor(text, exp), Ok(minor), "{text} exp {exp}");
        }
        assert!(to_minor("abc", 2).is_err());
        assert!(to_minor("1e40", 2).is_err());
    }

    #[test]
    fn only_number_text_is_a_number() {
        for text in [
            " 5 ", "+5", "-0.5", ".5", "5.", "1e3", "1E+3", "2.5e-1", "007",
        ] {
            assert!(parse_decimal(text).is_ok(), "{text:?}");
        }
        for text in [
            "", " ", "5_0.00", "1__0", "_1", "1.2.3", ".", "-", "+-1", "1e", "1e+", "e3", "0x10",
            "NaN", "inf", "1,000", "1 000", "５", "1e3.5", "--1",
        ] {
            assert_eq!(
                parse_decimal(text),
                Err(MoneyError::NotANumber(text.into())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_count_is_a_whole_number() {
        for (text, n) in [("3", 3), ("3.0", 3), ("1e3", 1000), ("0", 0)] {
            assert_eq!(to_count(text), Ok(n), "{text}");
        }
        for text in ["0.5", "2.5", "1e-1", "3.000001"] {
            assert_eq!(to_count(text), Err(MoneyError::NotACount(text.into())));
        }
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
