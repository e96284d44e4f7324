//! ISO 4217 currencies and their minor-unit exponents (JPY 0, USD 2, KWD 3 …).
use std::fmt;

/// Active ISO 4217 codes (list one, 2026) with a minor unit. Funds and metals without one are left out.
const CODES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV \
BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD \
EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD \
JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU \
MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB \
RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD \
TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

const EXPONENT_0: &str = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
const EXPONENT_3: &str = "BHD IQD JOD KWD LYD OMR TND";
const EXPONENT_4: &str = "CLF UYW";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown ISO 4217 currency {0:?}")]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let upper = code.trim().to_ascii_uppercase();
        let known = upper.len() == 3 && CODES.split_ascii_whitespace().any(|c| c == upper);
        if !known {
            return Err(UnknownCurrency(code.to_owned()));
        }
        let b = upper.as_bytes();
        Ok(Self([b[0], b[1], b[2]]))
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// Digits after the decimal point in the currency's minor unit.
    pub fn exponent(&self) -> u32 {
        let code = self.code();
        let in_list = |list: &str| list.split_ascii_whitespace().any(|c| c == code);
        if in_list(EXPONENT_0) {
            0
        } else if in_list(EXPONENT_3) {
            3
        } else if in_list(EXPONENT_4) {
            4
        } else {
            2
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::parse("USD").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("jpy").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("CLF").unwrap().exponent(), 4);
    }

    #[test]
    fn unknown_codes_are_refused() {
        for bad in ["", "US", "USDX", "XXX", "ABC"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }
}
