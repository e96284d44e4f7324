//! A day's figures of one link, as Amazon reports them (DESIGN §4.3), money in minor units.

/// One (campaign, ad group, day) of the report, money in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub clicks: i64,
    pub detail_page_views: i64,
    pub add_to_carts: i64,
    pub purchases: i64,
    pub units: i64,
    pub sales_minor: i64,
    pub total_purchases: i64,
    pub total_units: i64,
    pub total_sales_minor: i64,
    pub brb_minor: i64,
}

impl Figures {
    /// Adds another row of the same key (Amazon may split one).
    pub fn add(&mut self, o: &Figures) {
        self.clicks += o.clicks;
        self.detail_page_views += o.detail_page_views;
        self.add_to_carts += o.add_to_carts;
        self.purchases += o.purchases;
        self.units += o.units;
        self.sales_minor += o.sales_minor;
        self.total_purchases += o.total_purchases;
        self.total_units += o.total_units;
        self.total_sales_minor += o.total_sales_minor;
        self.brb_minor += o.brb_minor;
    }
}

/// Which of Amazon's sales figures commissions are computed on (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `attributedSales14d` / `attributedPurchases14d`: the promoted products.
    Promoted,
    /// `totalAttributedSales14d` / `attributedTotalPurchases14d`: promoted + brand halo.
    Total,
}

impl Basis {
    /// (sales in minor units, purchases, units) on this basis.
    pub fn pick(self, f: &Figures) -> (i64, i64, i64) {
        match self {
            Self::Promoted => (f.sales_minor, f.purchases, f.units),
            Self::Total => (f.total_sales_minor, f.total_purchases, f.total_units),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Promoted => "promoted sales",
            Self::Total => "total sales (promoted + brand halo)",
        }
    }
}
