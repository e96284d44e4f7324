//! A store's links: one per (affiliate, landing page), minted from the connection's template tag,
//! updated as affiliates and landing pages come and go, retired (never deleted) when they leave.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

pub use crate::store::links::CurrentLink;
use crate::{
    domain::{
        ids::StoreId,
        links::{ad_group_for, campaign_id_for, fill_template, link_url, marketplace_home},
    },
    store::{
        affiliates, connections,
        links::{self, LandingPage},
        stores,
    },
};

/// The id of the main landing page while it is the marketplace's home page.
pub const HOME: &str = "home";

/// Brings the store's links in line with its affiliates and landing pages. Does nothing until the
/// store's Amazon account is connected. Returns how many links were created or changed.
pub async fn refresh(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let Some(amazon) = connections::find_connected(conn, store).await? else {
        return Ok(0);
    };
    let (Some(template), Some(store_row)) = (
        amazon.template_tag.clone(),
        stores::find(conn, store).await?,
    ) else {
        return Ok(0);
    };
    let campaign = store_row
        .campaign_id
        .unwrap_or_else(|| campaign_id_for(store.as_str()));
    let pages = ensure_home(
        conn,
        store,
        amazon.country_code.as_deref().unwrap_or("US"),
        now,
    )
    .await?;
    let people = affiliates::list_current(conn, store).await?;
    let mut existing = links::all(conn, store).await?;
    let mut wanted = HashSet::new();
    let mut changed = 0;
    for person in &people {
        for page in &pages {
            let key = (person.affiliate_id, page.id.clone());
            let tag = match fill_template(
                &template,
                &campaign,
                &ad_group_for(person.affiliate_id),
                &page.id,
            ) {
                Ok(tag) => tag,
                Err(e) => {
                    tracing::error!(store_id = %store, affiliate_id = person.affiliate_id, error = %e, "link not minted");
                    continue;
                }
            };
            let Ok(url) = link_url(&page.url, &tag) else {
                continue;
            };
            wanted.insert(key.clone());
            match existing.remove(&key) {
                Some(old) if old.url == url && old.retired_at.is_none() => {}
                Some(old) => {
                    links::set_url(conn, old, Some(url), now).await?;
                    changed += 1;
                }
                None => {
                    links::insert(conn, store, person.affiliate_id, &page.id, url, now).await?;
                    changed += 1;
                }
            }
        }
    }
    for (key, old) in existing {
        if !wanted.contains(&key) && old.retired_at.is_none() {
            links::set_url(conn, old, None, now).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// The store's landing pages, the main one first; the marketplace home page is the main one until
/// the merchant sets another.
async fn ensure_home(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    country: &str,
    now: DateTime<Utc>,
) -> Result<Vec<LandingPage>, DbErr> {
    let mut pages = links::landing_pages(conn, store).await?;
    if !pages.iter().any(|p| p.is_main) {
        let url = marketplace_home(country).unwrap_or("https://www.amazon.com/");
        links::set_landing_page(conn, store, HOME, url, None, true, now).await?;
        pages = links::landing_pages(conn, store).await?;
    }
    Ok(pages)
}

/// Sets the main landing page (replacing the previous main one) or adds a product page, and
/// updates the links in the same transaction. A landing page has its own creative id, so links
/// of a replaced page are retired, not repointed.
pub async fn set_landing_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    page: (&str, &str, Option<String>),
    main: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let (id, url, asin) = page;
    links::set_landing_page(conn, store, id, url, asin, main, now).await?;
    refresh(conn, store, now).await?;
    Ok(())
}

/// Removes an additional landing page and retires its links.
pub async fn remove_landing_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    links::remove_landing_page(conn, store, id).await?;
    refresh(conn, store, now).await?;
    Ok(())
}

/// CSV with a header row; fields quoted where needed.
pub fn to_csv(rows: &[CurrentLink]) -> String {
    fn field(s: &str) -> String {
        // A leading = + - @ would be a formula in a spreadsheet.
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_owned()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from("affiliate_id,affiliate_name,ref_code,landing_page,link\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            r.affiliate_id,
            field(&r.affiliate_name),
            field(&r.ref_code),
            field(&r.landing_page_id),
            field(&r.url)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let rows = [CurrentLink {
            affiliate_id: 7,
            affiliate_name: "=HYPERLINK(\"x\")".into(),
            ref_code: "a,b".into(),
            landing_page_id: "home".into(),
            url: "https://www.amazon.com/?maas=m&aa_adgroupid=a7".into(),
        }];
        assert_eq!(
            to_csv(&rows),
            "affiliate_id,affiliate_name,ref_code,landing_page,link\n7,\"'=HYPERLINK(\"\"x\"\")\",\"a,b\",home,https://www.amazon.com/?maas=m&aa_adgroupid=a7\n"
        );
    }
}
