//! Amazon Ads regions (reference §1): each has its own Login with Amazon and API hosts.
use std::{fmt, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Na,
    Eu,
    Fe,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Na, Region::Eu, Region::Fe];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Na => "NA",
            Self::Eu => "EU",
            Self::Fe => "FE",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Na => "North America (US, CA, MX, BR)",
            Self::Eu => "Europe, Middle East, India",
            Self::Fe => "Far East (JP, AU, SG)",
        }
    }
}

impl FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NA" => Ok(Self::Na),
            "EU" => Ok(Self::Eu),
            "FE" => Ok(Self::Fe),
            other => Err(format!("unknown Amazon region {other:?} (NA, EU or FE)")),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
