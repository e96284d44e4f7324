use sea_orm::entity::prelude::*;

/// What a report changed, when, from what to what (`changes`: JSON `{field: [old, new]}`). `applied` is false for a day already final.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "figure_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = true)]
    pub id: i64,
    pub store_id: String,
    pub affiliate_id: Option<i64>,
    pub campaign_id: Option<String>,
    pub ad_group_id: Option<String>,
    pub day: Date,
    pub observed_at: DateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub changes: String,
    pub applied: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
