//! A day's figures of one link, as Amazon reports them (DESIGN §4.3), money in minor units.

/// One (campaign, ad group, day) of the report, money in minor units. Serialized as a map by
/// name; also read from an array of the ten in field order (the store's packed reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

impl From<[i64; 10]> for Figures {
    /// The ten figures in field order (clicks … brb_minor), as the store's columns list them.
    fn from(
        [
            clicks,
            views,
            carts,
            purchases,
            units,
            sales,
            tp,
            tu,
            ts,
            brb,
        ]: [i64; 10],
    ) -> Self {
        Figures {
            clicks,
            detail_page_views: views,
            add_to_carts: carts,
            purchases,
            units,
            sales_minor: sales,
            total_purchases: tp,
            total_units: tu,
            total_sales_minor: ts,
            brb_minor: brb,
        }
    }
}

impl Figures {
    /// The sum with another row of the same key (Amazon may split one); `None` when a figure
    /// overflows `i64`: such a sum is no number to pay on (never wrapped, never read as zero).
    pub fn checked_add(&self, o: &Figures) -> Option<Figures> {
        Some(Figures {
            clicks: self.clicks.checked_add(o.clicks)?,
            detail_page_views: self.detail_page_views.checked_add(o.detail_page_views)?,
            add_to_carts: self.add_to_carts.checked_add(o.add_to_carts)?,
            purchases: self.purchases.checked_add(o.purchases)?,
            units: self.units.checked_add(o.units)?,
            sales_minor: self.sales_minor.checked_add(o.sales_minor)?,
            total_purchases: self.total_purchases.checked_add(o.total_purchases)?,
            total_units: self.total_units.checked_add(o.total_units)?,
            total_sales_minor: self.total_sales_minor.checked_add(o.total_sales_minor)?,
            brb_minor: self.brb_minor.checked_add(o.brb_minor)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_that_overflows_is_none_never_wrapped() {
        let big = Figures {
            sales_minor: i64::MAX,
            ..Default::default()
        };
        let one = Figures {
            sales_minor: 1,
            clicks: 2,
            ..Default::default()
        };
        assert_eq!(big.checked_add(&one), None);
        let sum = one.checked_add(&one).unwrap();
        assert_eq!((sum.sales_minor, sum.clicks), (2, 4));
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
