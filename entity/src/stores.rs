use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub url: String,
    pub currency: String,
    /// `active` or `uninstalled`.
    pub status: crate::states::StoreStatus,
    pub program_api_url: Option<String>,
    /// `percentage` or `flat`.
    pub commission_type: String,
    /// A decimal string: percent for `percentage`, major units per purchase for `flat`.
    pub commission_value: String,
    pub commission_updated_at: DateTimeUtc,
    pub installed_at: DateTimeUtc,
    pub uninstalled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// `aa_campaignid` of every link of the store, fixed at first install.
    pub campaign_id: Option<String>,
    /// `promoted` (attributedSales14d/attributedPurchases14d) or `total` (promoted + brand halo).
    pub sales_basis: crate::states::SalesBasis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
