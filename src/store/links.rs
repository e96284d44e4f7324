//! Landing pages and links. Links are never deleted: a link that leaves is retired, so that
//! what an affiliate was given stays on record.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{landing_pages, links};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;

use super::StoreScoped;
use crate::domain::ids::StoreId;

pub use entity::landing_pages::Model as LandingPage;
pub use entity::links::Model as Link;

/// The store's landing pages, the main one first.
pub async fn landing_pages(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Vec<LandingPage>, DbErr> {
    let mut pages = landing_pages::Entity::of_store(store)
        .order_by_asc(landing_pages::Column::Id)
        .all(conn)
        .await?;
    pages.sort_by_key(|p| !p.is_main);
    Ok(pages)
}

/// Sets the main landing page (replacing the previous main one) or adds another one.
pub async fn set_landing_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    id: &str,
    url: &str,
    asin: Option<String>,
    main: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let stale = if main {
        Condition::any()
            .add(landing_pages::Column::IsMain.eq(true))
            .add(landing_pages::Column::Id.eq(id))
    } else {
        Condition::all().add(landing_pages::Column::Id.eq(id))
    };
    landing_pages::Entity::delete_of_store(store)
        .filter(stale)
        .exec(conn)
        .await?;
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
    landing_pages::Entity::delete_of_store(store)
        .filter(landing_pages::Column::Id.eq(id))
        .filter(landing_pages::Column::IsMain.eq(false))
        .exec(conn)
        .await?;
    Ok(())
}

/// The store's links, current and retired, by (affiliate, landing page); only those of the
/// affiliates of `only` when given.
pub async fn all(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    only: Option<&[i64]>,
) -> Result<HashMap<(i64, String), Link>, DbErr> {
    let mut q = links::Entity::of_store(store);
    if let Some(ids) = only {
        q = q.filter(links::Column::AffiliateId.is_in(ids.iter().copied()));
    }
    Ok(q.all(conn)
        .await?
        .into_iter()
        .map(|l| ((l.affiliate_id, l.landing_page_id.clone()), l))
        .collect())
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate_id: i64,
    landing_page_id: &str,
    url: String,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    links::ActiveModel {
        store_id: Set(store.as_str().to_owned()),
        affiliate_id: Set(affiliate_id),
        landing_page_id: Set(landing_page_id.to_owned()),
        url: Set(url),
        created_at: Set(now),
        updated_at: Set(now),
        retired_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Points the link at `url` (`Some`) and brings it back, or retires it (`None`).
pub async fn set_url(
    conn: &impl ConnectionTrait,
    link: Link,
    url: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut row: links::ActiveModel = link.into();
    match url {
        Some(url) => {
            row.url = Set(url);
            row.retired_at = Set(None);
        }
        None => row.retired_at = Set(Some(now)),
    }
    row.updated_at = Set(now);
    row.update(conn).await?;
    Ok(())
}

/// One current link, with who it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentLink {
    pub affiliate_id: i64,
    pub affiliate_name: String,
    pub ref_code: String,
    pub landing_page_id: String,
    pub url: String,
}

/// The store's current (not retired) links, by affiliate then landing page.
pub async fn current(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Vec<CurrentLink>, DbErr> {
    let names = super::affiliates::all_by_id(conn, store).await?;
    let rows = links::Entity::of_store(store)
        .filter(links::Column::RetiredAt.is_null())
        .order_by_asc(links::Column::AffiliateId)
        .order_by_asc(links::Column::LandingPageId)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|l| {
            let who = names.get(&l.affiliate_id);
            CurrentLink {
                affiliate_id: l.affiliate_id,
                affiliate_name: who.map(|a| a.name.clone()).unwrap_or_default(),
                ref_code: who.and_then(|a| a.ref_code.clone()).unwrap_or_default(),
                landing_page_id: l.landing_page_id,
                url: l.url,
            }
        })
        .collect())
}

/// How many current (not retired) links the store has.
pub async fn count_current(conn: &impl ConnectionTrait, store: &StoreId) -> Result<u64, DbErr> {
    links::Entity::of_store(store)
        .filter(links::Column::RetiredAt.is_null())
        .count(conn)
        .await
}
