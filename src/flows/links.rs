//! A store's links: one per (affiliate, landing page), minted from the connection's template tag,
//! updated as affiliates and landing pages come and go, retired (never deleted) when they leave.
use std::{borrow::Cow, collections::HashSet};

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
    refresh_of(conn, store, None, now).await
}

/// As [`refresh`], for one affiliate's links only: what an affiliate's event changes. Reads that
/// affiliate's rows, not the whole roster's, so a roster's worth of events stays linear.
pub async fn refresh_affiliate(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate: i64,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    refresh_of(conn, store, Some(&[affiliate]), now).await
}

/// As [`refresh_affiliate`], for several affiliates of the store at once (a webhook group's).
pub async fn refresh_affiliates(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliates: &[i64],
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    refresh_of(conn, store, Some(affiliates), now).await
}

async fn refresh_of(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    only: Option<&[i64]>,
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
    let (pages, home_added) = ensure_home(
        conn,
        store,
        amazon.country_code.as_deref().unwrap_or("US"),
        now,
    )
    .await?;
    // A landing page just added is every affiliate's.
    let only = only.filter(|_| !home_added);
    let people = affiliates::current_of(conn, store, only).await?;
    let mut existing = links::all(conn, store, only).await?;
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

/// The store's landing pages, the main one first, and whether the main one was added now; the
/// marketplace home page is the main one until the merchant sets another.
async fn ensure_home(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    country: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<LandingPage>, bool), DbErr> {
    let pages = links::landing_pages(conn, store).await?;
    if pages.iter().any(|p| p.is_main) {
        return Ok((pages, false));
    }
    let url = marketplace_home(country).unwrap_or("https://www.amazon.com/");
    links::set_landing_page(conn, store, HOME, url, None, true, now).await?;
    Ok((links::landing_pages(conn, store).await?, true))
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

/// CSV (RFC 4180) with a header row, each cell made safe where it is opened (DESIGN §7): a cell a
/// spreadsheet would read as a formula gets a `'` in front ([`defuse`]), then control characters
/// from outside (names, ref codes) become visible escapes (`\n`, `\u{1b}`), so one link is one
/// line and no terminal escape runs; cells with `,` or `"` are quoted.
pub fn to_csv(rows: &[CurrentLink]) -> String {
    fn field(s: &str) -> String {
        let s = crate::domain::text::escape(&defuse(s)).into_owned();
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

/// `cell` with a `'` in front when a spreadsheet would run it as a formula (OWASP "CSV
/// injection"): its first character, after any leading blanks, is `=`, `+`, `-`, `@`, a tab or a
/// CR, or their fullwidth forms `＝ ＋ － ＠` that some spreadsheets fold to ASCII.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    const TRIGGERS: [char; 10] = [
        '=', '+', '-', '@', '\t', '\r', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
    ];
    let first = cell
        .chars()
        // The first character that is not a blank (a tab or CR counts: they are triggers).
        .find(|c| !c.is_whitespace() || matches!(c, '\t' | '\r'));
    if first.is_some_and(|c| TRIGGERS.contains(&c)) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
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

    #[test]
    fn every_formula_form_a_spreadsheet_reads_is_defused() {
        for cell in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "＝1+1",
            "＋1",
            "－1",
            "＠SUM(A1)",
            "  =1",
            "\u{a0}\u{3000}+1",
            "\n-1",
        ] {
            assert_eq!(defuse(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in [
            "Alice",
            "a=1",
            "1-2",
            "https://www.amazon.com/?a=-1",
            "",
            " ",
        ] {
            assert_eq!(defuse(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn csv_cells_carry_no_control_characters_and_no_formula() {
        let rows = [CurrentLink {
            affiliate_id: 8,
            affiliate_name: "Eve\n2026-11-30T00:00:00Z  INFO forged\u{1b}[31m".into(),
            ref_code: "\t＝cmd|' /C calc'!A0".into(),
            landing_page_id: "home".into(),
            url: "https://www.amazon.com/?aa_adgroupid=a8".into(),
        }];
        let csv = to_csv(&rows);
        assert_eq!(
            csv,
            "affiliate_id,affiliate_name,ref_code,landing_page,link\n\
             8,Eve\\n2026-11-30T00:00:00Z  INFO forged\\u{1b}[31m,'\\t＝cmd|' /C calc'!A0,home,\
             https://www.amazon.com/?aa_adgroupid=a8\n"
        );
        assert_eq!(csv.lines().count(), 2, "one line per link");
    }
}
