use sea_orm::entity::prelude::*;

/// Where a store's links land. `id` is the links' `aa_creativeid`: `home` (the marketplace home
/// page), an ASIN, or `store-…` for a Stores page. One landing page is the main one.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "landing_pages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub url: String,
    pub asin: Option<String>,
    pub is_main: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
