use sea_orm::entity::prelude::*;

/// A store's Login with Amazon connection and the account chosen for it. Tokens are sealed.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "amazon_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    /// `NA`, `EU` or `FE`.
    pub region: String,
    /// `choose_account`, `connected`, `not_eligible` or `needs_reconnect`.
    pub status: crate::states::ConnectionStatus,
    pub refresh_token: Option<Vec<u8>>,
    pub access_token: Option<Vec<u8>>,
    pub access_expires_at: Option<DateTimeUtc>,
    pub profile_id: Option<i64>,
    pub advertiser_id: Option<String>,
    pub advertiser_name: Option<String>,
    pub country_code: Option<String>,
    pub currency_code: Option<String>,
    pub timezone: Option<String>,
    pub marketplace_id: Option<String>,
    /// The non-macro template tag for (advertiser, publisher), with its placeholders.
    #[sea_orm(column_type = "Text", nullable)]
    pub template_tag: Option<String>,
    /// JSON list of eligible (profile, advertiser) pairs while the merchant must choose.
    #[sea_orm(column_type = "Text", nullable)]
    pub choices: Option<String>,
    /// What the merchant should know (not eligible, access revoked, …).
    #[sea_orm(column_type = "Text", nullable)]
    pub problem: Option<String>,
    pub connected_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmazonConnection")
            .field("store_id", &self.store_id)
            .field("region", &self.region)
            .field("status", &self.status)
            .field("profile_id", &self.profile_id)
            .field("advertiser_id", &self.advertiser_id)
            .field("tokens", &"[sealed]")
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
