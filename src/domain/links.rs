//! Links: the template tag filled with the store's campaign, the affiliate's ad group and the
//! landing page's creative id, on a landing page of the profile's marketplace (reference §3.3–3.4).
use sha2::{Digest, Sha256};
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("{field} {value:?} {problem}")]
    BadValue {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("the template tag has no {0} parameter")]
    MissingParameter(&'static str),
    #[error("the template tag still has a placeholder after filling: {0}")]
    UnfilledPlaceholder(String),
    #[error("{0}")]
    BadLandingPage(String),
}

/// Characters Amazon forbids in `aa_*` values, even URL-escaped.
const FORBIDDEN: &[char] = &[
    '/', '&', '=', '#', '?', '+', '\'', '"', '%', '$', '’', '”', '‘', '“',
];

/// Checks a value against Amazon's rules: 1–255 characters, none of `/ & = # ? + ' " % $`, no spaces.
pub fn check_value(field: &'static str, value: &str) -> Result<(), LinkError> {
    let bad = |problem| {
        Err(LinkError::BadValue {
            field,
            value: value.to_owned(),
            problem,
        })
    };
    if value.is_empty() {
        return bad("is empty");
    }
    if value.chars().count() > 255 {
        return bad("is longer than 255 characters");
    }
    if value
        .chars()
        .any(|c| FORBIDDEN.contains(&c) || c.is_whitespace() || c.is_control())
    {
        return bad("contains a character Amazon forbids (/ & = # ? + ' \" % $ or a space)");
    }
    Ok(())
}

/// The store's `aa_campaignid`: fixed at install, unique per store.
pub fn campaign_id_for(store_id: &str) -> String {
    format!("ab_{store_id}")
}

/// The affiliate's `aa_adgroupid`.
pub fn ad_group_for(affiliate_id: i64) -> String {
    format!("a{affiliate_id}")
}

/// The affiliate whose ad group this is: only the exact spelling [`ad_group_for`] mints
/// (`a0243808` or `a+243832` is no affiliate's).
pub fn affiliate_of_ad_group(ad_group: &str) -> Option<i64> {
    let id: i64 = ad_group.strip_prefix('a')?.parse().ok()?;
    (ad_group == ad_group_for(id)).then_some(id)
}

/// Fills the template's `aa_campaignid`, `aa_adgroupid` and `aa_creativeid` placeholders
/// (`{insertCampaign}`, `{insertCampaignId}`, `{campaignId}` … whatever the spelling), and fails if
/// any `{…}` is left.
pub fn fill_template(
    template: &str,
    campaign: &str,
    ad_group: &str,
    creative: &str,
) -> Result<String, LinkError> {
    check_value("campaign id", campaign)?;
    check_value("ad group id", ad_group)?;
    check_value("creative id", creative)?;
    let query = template.trim().trim_start_matches('?');
    let mut seen = [false; 3];
    let filled: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "aa_campaignid" => Some((0, campaign)),
                "aa_adgroupid" => Some((1, ad_group)),
                "aa_creativeid" => Some((2, creative)),
                _ => None,
            };
            match slot {
                Some((i, new)) if value.starts_with('{') && value.ends_with('}') => {
                    seen[i] = true;
                    format!("{key}={new}")
                }
                Some((i, _)) => {
                    seen[i] = true;
                    pair.to_owned()
                }
                None => pair.to_owned(),
            }
        })
        .collect();
    for (i, name) in ["aa_campaignid", "aa_adgroupid", "aa_creativeid"]
        .iter()
        .enumerate()
    {
        if !seen[i] {
            return Err(LinkError::MissingParameter(name));
        }
    }
    let filled = format!("?{}", filled.join("&"));
    if let Some(start) = filled.find('{') {
        let rest = &filled[start..];
        let end = rest.find('}').map_or(rest.len(), |e| e + 1);
        return Err(LinkError::UnfilledPlaceholder(rest[..end].to_owned()));
    }
    if filled.contains('}') {
        return Err(LinkError::UnfilledPlaceholder("}".into()));
    }
    Ok(filled)
}

/// The landing page with the filled tag appended. Any `tag`/`ref_` the page carried is dropped:
/// it would break measurement.
pub fn link_url(landing: &str, filled_tag: &str) -> Result<String, LinkError> {
    let mut url =
        Url::parse(landing).map_err(|e| LinkError::BadLandingPage(format!("{landing}: {e}")))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "tag" | "ref_" | "ref" | "maas"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let mut out = url.to_string();
    let mut parts: Vec<String> = kept
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    parts.push(filled_tag.trim_start_matches('?').to_owned());
    out.push('?');
    out.push_str(&parts.join("&"));
    Ok(out)
}

/// The home page of an Amazon marketplace by the profile's country code.
pub fn marketplace_home(country_code: &str) -> Option<&'static str> {
    Some(match country_code.to_ascii_uppercase().as_str() {
        "US" => "https://www.amazon.com/",
        "CA" => "https://www.amazon.ca/",
        "MX" => "https://www.amazon.com.mx/",
        "BR" => "https://www.amazon.com.br/",
        "UK" | "GB" => "https://www.amazon.co.uk/",
        "DE" => "https://www.amazon.de/",
        "FR" => "https://www.amazon.fr/",
        "IT" => "https://www.amazon.it/",
        "ES" => "https://www.amazon.es/",
        "NL" => "https://www.amazon.nl/",
        "SE" => "https://www.amazon.se/",
        "PL" => "https://www.amazon.pl/",
        "BE" => "https://www.amazon.com.be/",
        "TR" => "https://www.amazon.com.tr/",
        "AE" => "https://www.amazon.ae/",
        "SA" => "https://www.amazon.sa/",
        "EG" => "https://www.amazon.eg/",
        "IN" => "https://www.amazon.in/",
        "JP" => "https://www.amazon.co.jp/",
        "AU" => "https://www.amazon.com.au/",
        "SG" => "https://www.amazon.sg/",
        _ => return None,
    })
}

/// A merchant's landing page, checked: an Amazon product (`/dp/ASIN`, `/gp/product/ASIN`) or Stores
/// page on the profile's marketplace. Returns (landing page id, canonical URL, ASIN).
pub fn parse_landing_page(
    raw: &str,
    country_code: &str,
) -> Result<(String, String, Option<String>), LinkError> {
    let bad = |m: String| Err(LinkError::BadLandingPage(m));
    let home = marketplace_home(country_code).ok_or_else(|| {
        LinkError::BadLandingPage(format!("no Amazon marketplace is known for {country_code}"))
    })?;
    let home = Url::parse(home).expect("built-in marketplace URLs parse");
    let url = match Url::parse(raw.trim()) {
        Ok(u) => u,
        Err(_) => return bad(format!("{raw:?} is not a URL")),
    };
    let market_host = home.host_str().unwrap_or_default();
    let host = url.host_str().unwrap_or_default();
    if url.scheme() != "https" || (host != market_host && format!("www.{host}") != market_host) {
        return bad(format!(
            "the landing page must be on https://{market_host}/ (the profile's marketplace)"
        ));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let asin = segments
        .windows(2)
        .find(|w| w[0] == "dp" || (w[0] == "product" && segments.contains(&"gp")))
        .map(|w| w[1].to_ascii_uppercase())
        .filter(|a| a.len() == 10 && a.chars().all(|c| c.is_ascii_alphanumeric()));
    if let Some(asin) = asin {
        let canonical = format!("https://{market_host}/dp/{asin}");
        return Ok((asin.clone(), canonical, Some(asin)));
    }
    if segments.first() == Some(&"stores") {
        let mut canonical = url.clone();
        canonical.set_query(None);
        canonical.set_fragment(None);
        let digest = hex::encode(Sha256::digest(canonical.as_str().as_bytes()));
        return Ok((
            format!("store-{}", &digest[..10]),
            canonical.to_string(),
            None,
        ));
    }
    bad("the landing page must be an Amazon product page (/dp/ASIN) or an Amazon Stores page (/stores/…)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "?maas=maas_adg_api_1964981050701_static_12_73&ref_=aa_maas&tag=maas&aa_campaignid={insertCampaign}&aa_adgroupid={insertAdGroupId}&aa_creativeid={insertCreativeId}";
    const SPEC: &str = "?maas=maas_adg_api_1_static_12_99&ref_=aa_maas&tag=maas&aa_campaignid={insertCampaignId}&aa_adgroupid={insertAdGroupId}&aa_creativeid={insertAdiD}";

    #[test]
    fn fills_every_placeholder_spelling() {
        for template in [
            LIVE,
            SPEC,
            "?maas=m&aa_campaignid={campaignId}&aa_adgroupid={adgroupId}&aa_creativeid={creativeId}",
        ] {
            let filled = fill_template(template, "ab_st_1001", "a123", "home").unwrap();
            assert!(
                filled.contains("aa_campaignid=ab_st_1001&aa_adgroupid=a123&aa_creativeid=home"),
                "{filled}"
            );
            assert!(!filled.contains('{'));
        }
        assert_eq!(
            fill_template(LIVE, "ab_st_1", "a1", "home").unwrap(),
            "?maas=maas_adg_api_1964981050701_static_12_73&ref_=aa_maas&tag=maas&aa_campaignid=ab_st_1&aa_adgroupid=a1&aa_creativeid=home"
        );
    }

    #[test]
    fn fails_loudly_on_a_leftover_placeholder_or_a_missing_parameter() {
        let odd = "?maas=m&aa_campaignid={insertCampaign}&aa_adgroupid={insertAdGroupId}&aa_creativeid={insertCreativeId}&extra={unknown}";
        assert_eq!(
            fill_template(odd, "c", "a1", "home"),
            Err(LinkError::UnfilledPlaceholder("{unknown}".into()))
        );
        let missing = "?maas=m&aa_campaignid={insertCampaign}&aa_adgroupid={insertAdGroupId}";
        assert_eq!(
            fill_template(missing, "c", "a1", "home"),
            Err(LinkError::MissingParameter("aa_creativeid"))
        );
    }

    #[test]
    fn values_with_forbidden_characters_are_rejected() {
        for bad in [
            "a/b", "a&b", "a=b", "a#b", "a?b", "a+b", "a'b", "a\"b", "a%b", "a$b", "a b", "a’b", "",
        ] {
            assert!(check_value("ad group id", bad).is_err(), "{bad:?}");
            assert!(fill_template(LIVE, bad, "a1", "home").is_err(), "{bad:?}");
        }
        assert!(check_value("x", &"a".repeat(255)).is_ok());
        assert!(check_value("x", &"a".repeat(256)).is_err());
        assert!(check_value("x", "ab_st-1001_a.9").is_ok());
    }

    #[test]
    fn link_urls_drop_existing_tags() {
        let tag = fill_template(LIVE, "ab_st_1", "a7", "B00MNV8E0C").unwrap();
        let url = link_url(
            "https://www.amazon.com/dp/B00MNV8E0C?tag=someone-20&th=1",
            &tag,
        )
        .unwrap();
        assert_eq!(
            url,
            format!("https://www.amazon.com/dp/B00MNV8E0C?th=1&{}", &tag[1..])
        );
        assert_eq!(url.matches("tag=").count(), 1);
    }

    #[test]
    fn landing_pages_must_be_product_or_stores_pages_of_the_marketplace() {
        let (id, url, asin) = parse_landing_page(
            "https://www.amazon.com/Some-Name/dp/b00mnv8e0c/ref=xyz?th=1",
            "US",
        )
        .unwrap();
        assert_eq!(
            (id.as_str(), url.as_str(), asin.as_deref()),
            (
                "B00MNV8E0C",
                "https://www.amazon.com/dp/B00MNV8E0C",
                Some("B00MNV8E0C")
            )
        );
        let (id, _, asin) = parse_landing_page(
            "https://www.amazon.com/stores/Brand/page/1234-ABCD?ref_=x",
            "US",
        )
        .unwrap();
        assert!(id.starts_with("store-") && asin.is_none());
        assert!(check_value("creative id", &id).is_ok());
        for bad in [
            "https://www.amazon.de/dp/B00MNV8E0C",
            "http://www.amazon.com/dp/B00MNV8E0C",
            "https://evil.example/dp/B00MNV8E0C",
            "https://www.amazon.com/gp/cart",
            "not a url",
        ] {
            assert!(parse_landing_page(bad, "US").is_err(), "{bad}");
        }
    }
}
