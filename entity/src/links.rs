use sea_orm::entity::prelude::*;

/// The Amazon Attribution link of one affiliate for one landing page.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub landing_page_id: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set when the affiliate or the landing page went away.
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
