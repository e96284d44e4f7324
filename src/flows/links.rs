//! A store's links: one per (affiliate, landing page), minted from the connection's template tag,
//! updated as affiliates and landing pages come and go, retired (never deleted) when they leave.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{affiliates as affiliate_rows, amazon_connections, landing_pages, links};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder,
};
use serde::Serialize;

use crate::{
    domain::{
        ids::StoreId,
        links::{ad_group_for, campaign_id_for, fill_template, link_url, marketplace_home},
    },
    flows::tokens::CONNECTED,
    store::{affiliates, stores},
};

pub const HOME: &str = "home";

/// Brings the store's links in line with its affiliates and landing pages. Does nothing until the
/// store's Amazon account is connected. Returns how many links were created or changed.
pub async fn refresh(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let Some(amazon) = amazon_connections::Entity::find_by_id(store.as_str())
        .one(conn)
        .await?
        .filter(|c| c.status == CONNECTED)
    else {
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
    let existing: HashMap<(i64, String), links::Model> = links::Entity::find()
        .filter(links::Column::StoreId.eq(store.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|l| ((l.affiliate_id, l.landing_page_id.clone()), l))
        .collect();
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
            match existing.get(&key) {
                Some(old) if old.url == url && old.retired_at.is_none() => {}
                Some(old) => {
                    let mut row: links::ActiveModel = old.clone().into();
                    row.url = Set(url);
                    row.retired_at = Set(None);
                    row.updated_at = Set(now);
                    row.update(conn).await?;
                    changed += 1;
                }
                None => {
                    links::ActiveModel {
                        store_id: Set(store.as_str().to_owned()),
                        affiliate_id: Set(person.affiliate_id),
                        landing_page_id: Set(page.id.clone()),
                        url: Set(url),
                        created_at: Set(now),
                        updated_at: Set(now),
                        retired_at: Set(None),
                    }
                    .insert(conn)
                    .await?;
                    changed += 1;
                }
            }
        }
    }
    for (key, old) in existing {
        if !wanted.contains(&key) && old.retired_at.is_none() {
            let mut row: links::ActiveModel = old.into();
            row.retired_at = Set(Some(now));
            row.updated_at = Set(now);
            row.update(conn).await?;
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
) -> Result<Vec<landing_pages::Model>, DbErr> {
    let mut pages = landing_pages(conn, store).await?;
    if !pages.iter().any(|p| p.is_main) {
        let url = marketplace_home(country).unwrap_or("https://www.amazon.com/");
        set_landing_page(conn, store, HOME, url, None, true, now).await?;
        pages = landing_pages(conn, store).await?;
    }
    Ok(pages)
}

pub async fn landing_pages(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Vec<landing_pages::Model>, DbErr> {
    let mut pages = landing_pages::Entity::find()
        .filter(landing_pages::Column::StoreId.eq(store.as_str()))
        .order_by_asc(landing_pages::Column::Id)
        .all(conn)
        .await?;
    pages.sort_by_key(|p| !p.is_main);
    Ok(pages)
}

/// Sets the main landing page (replacing the previous main one) or adds another one. A landing
/// page has its own creative id, so links of a replaced page are retired, not repointed.
pub async fn set_landing_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    id: &str,
    url: &str,
    asin: Option<String>,
    main: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut stale = landing_pages::Entity::delete_many()
        .filter(landing_pages::Column::StoreId.eq(store.as_str()));
    stale = if main {
        stale.filter(
            sea_orm::Condition::any()
                .add(landing_pages::Column::IsMain.eq(true))
                .add(landing_pages::Column::Id.eq(id)),
        )
    } else {
        stale.filter(landing_pages::Column::Id.eq(id))
    };
    stale.exec(conn).await?;
    landing_pages::ActiveModel {
        store_id: Set(store.as_str().to_owned()),
        id: Set(id.to_owned()),
        url: Set(url.to_owned()),
        asin: Set(asin),
        is_main: Set(main),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Removes an additional landing page (the main one can only be replaced).
pub async fn remove_landing_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    id: &str,
) -> Result<(), DbErr> {
    landing_pages::Entity::delete_many()
        .filter(landing_pages::Column::StoreId.eq(store.as_str()))
        .filter(landing_pages::Column::Id.eq(id))
        .filter(landing_pages::Column::IsMain.eq(false))
        .exec(conn)
        .await?;
    Ok(())
}

/// One current link, with who it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct LinkRow {
    pub affiliate_id: i64,
    pub affiliate_name: String,
    pub ref_code: String,
    pub landing_page_id: String,
    pub url: String,
}

/// The store's current (not retired) links, by affiliate then landing page.
pub async fn list(conn: &impl ConnectionTrait, store: &StoreId) -> Result<Vec<LinkRow>, DbErr> {
    let names: HashMap<i64, affiliate_rows::Model> = affiliate_rows::Entity::find()
        .filter(affiliate_rows::Column::StoreId.eq(store.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.affiliate_id, a))
        .collect();
    let rows = links::Entity::find()
        .filter(links::Column::StoreId.eq(store.as_str()))
        .filter(links::Column::RetiredAt.is_null())
        .order_by_asc(links::Column::AffiliateId)
        .order_by_asc(links::Column::LandingPageId)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|l| {
            let who = names.get(&l.affiliate_id);
            LinkRow {
                affiliate_id: l.affiliate_id,
                affiliate_name: who.map(|a| a.name.clone()).unwrap_or_default(),
                ref_code: who.and_then(|a| a.ref_code.clone()).unwrap_or_default(),
                landing_page_id: l.landing_page_id,
                url: l.url,
            }
        })
        .collect())
}

/// CSV with a header row; fields quoted where needed.
pub fn to_csv(rows: &[LinkRow]) -> String {
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
        let rows = [LinkRow {
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
