//! Generated Attribution figures: deterministic from (seed, campaign, ad group, creative, day),
//! realistic in size, and restated the way Amazon restates (late conversions, returns).
use chrono::NaiveDate;

use super::world::{Click, Direction, Restatement, mix};

/// One link's (or a group's) events of one day. Sales are `f64` sums on purpose: Amazon's
/// values carry float artefacts such as `"191.95999999999998"`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Agg {
    pub clicks: u64,
    pub dpv: u64,
    pub atc: u64,
    pub purchases: u64,
    pub units: u64,
    pub sales: f64,
    pub halo_dpv: u64,
    pub halo_atc: u64,
    pub halo_purchases: u64,
    pub halo_units: u64,
    pub halo_sales: f64,
    pub ntb_purchases: u64,
    pub ntb_units: u64,
    pub ntb_sales: f64,
}

impl Agg {
    pub fn add(&mut self, o: &Agg) {
        self.clicks += o.clicks;
        self.dpv += o.dpv;
        self.atc += o.atc;
        self.purchases += o.purchases;
        self.units += o.units;
        self.sales += o.sales;
        self.halo_dpv += o.halo_dpv;
        self.halo_atc += o.halo_atc;
        self.halo_purchases += o.halo_purchases;
        self.halo_units += o.halo_units;
        self.halo_sales += o.halo_sales;
        self.ntb_purchases += o.ntb_purchases;
        self.ntb_units += o.ntb_units;
        self.ntb_sales += o.ntb_sales;
    }

    /// A metric as Amazon sends it: a JSON string, integers without decimals.
    pub fn value(&self, metric: &str) -> String {
        let n = |v: u64| v.to_string();
        match metric {
            "Click-throughs" => n(self.clicks),
            "attributedDetailPageViewsClicks14d" => n(self.dpv),
            "attributedAddToCartClicks14d" => n(self.atc),
            "attributedPurchases14d" => n(self.purchases),
            "unitsSold14d" => n(self.units),
            "attributedSales14d" => self.sales.to_string(),
            "attributedTotalDetailPageViewsClicks14d" => n(self.dpv + self.halo_dpv),
            "attributedTotalAddToCartClicks14d" => n(self.atc + self.halo_atc),
            "attributedTotalPurchases14d" => n(self.purchases + self.halo_purchases),
            "totalUnitsSold14d" => n(self.units + self.halo_units),
            "totalAttributedSales14d" => (self.sales + self.halo_sales).to_string(),
            // An estimate of about 10 % of the brand's sales.
            "brb_bonus_amount" => ((self.sales + self.halo_sales) * 0.1).to_string(),
            "brandHaloDetailPageViewsClicks14d" => n(self.halo_dpv),
            "brandHaloAttributedAddToCartClicks14d" => n(self.halo_atc),
            "brandHaloAttributedPurchases14d" => n(self.halo_purchases),
            "brandHaloUnitsSold14d" => n(self.halo_units),
            "brandHaloAttributedSales14d" => self.halo_sales.to_string(),
            "attributedNewToBrandPurchases14d" => n(self.ntb_purchases),
            "attributedNewToBrandUnitsSold14d" => n(self.ntb_units),
            "attributedNewToBrandSales14d" => self.ntb_sales.to_string(),
            _ => "0".into(), // Kindle and brand-halo new-to-brand metrics: not this brand's business
        }
    }
}

fn h(seed: u64, c: &Click, day: NaiveDate, what: &str) -> u64 {
    let day = day.to_string();
    mix(
        seed,
        &[&c.campaign_id, &c.ad_group_id, &c.creative_id, &day, what],
    )
}

/// The link's character: most links are busy, about one in seven stays under Amazon's 10-click
/// threshold for weeks, so the mask can be seen.
fn profile(seed: u64, c: &Click) -> u64 {
    mix(
        seed,
        &["link", &c.campaign_id, &c.ad_group_id, &c.creative_id],
    )
}

pub fn is_tiny(seed: u64, c: &Click) -> bool {
    profile(seed, c) % 100 < 15
}

/// Clicks never change once reported (Amazon has them within 24 h).
pub fn raw_clicks(seed: u64, c: &Click, day: NaiveDate) -> u64 {
    let hc = h(seed, c, day, "clicks");
    if is_tiny(seed, c) {
        return u64::from(hc.is_multiple_of(15));
    }
    let mean = 3 + (profile(seed, c) >> 8) % 26;
    (mean * (60 + hc % 81) / 100).min(40)
}

fn sum(price: f64, units: u64) -> f64 {
    (0..units).fold(0.0, |acc, _| acc + price)
}

/// The figures a report of `day` shows when the day is `age` days old. Late conversions arrive
/// when a day turns 2 and 3 days old; returns take purchases back at 7 and 28 days; manual
/// restatements of the control room apply last, in the order they were made.
pub fn link_day(seed: u64, c: &Click, day: NaiveDate, age: i64, manual: &[&Restatement]) -> Agg {
    let r = |what| h(seed, c, day, what);
    let one_in = |what, n| r(what).is_multiple_of(n);
    let clicks = raw_clicks(seed, c, day);
    let dpv = clicks * (70 + r("dpv") % 26) / 100;
    let atc = (dpv * (10 + r("atc") % 21) + 50) / 100;
    // Purchases of a day may come from clicks of the 14 days before it.
    let carried = u64::from(clicks > 0 && one_in("carried", 9));
    let mut purchases = ((atc * (30 + r("buy") % 41) + 50) / 100).min(atc) + carried;
    let mut units = purchases + u64::from(purchases > 0 && one_in("extra", 4));

    let late = [
        (purchases > 0 && one_in("late1", 3), age <= 1),
        (purchases > 1 && one_in("late2", 4), age <= 2),
    ];
    for (happens, pending) in late {
        if happens && pending {
            purchases -= 1;
            units -= 1;
        }
    }
    let returns = [
        (one_in("ret7", 5), age >= 7),
        (one_in("ret28", 8), age >= 28),
    ];
    for (happens, due) in returns {
        if happens && due && purchases > 0 {
            purchases -= 1;
            units -= 1;
        }
    }
    for m in manual {
        match m.direction {
            Direction::Down if purchases > 0 => {
                purchases -= 1;
                units -= 1;
            }
            Direction::Down => {}
            Direction::Up => {
                purchases += 1;
                units += 1;
            }
        }
    }

    let p = profile(seed, c);
    let price = (20 + (p >> 20) % 40) as f64 + 0.99;
    let halo_price = (15 + (p >> 28) % 20) as f64 + 0.49;
    let halo = u64::from(clicks > 0 && one_in("halo", 7));
    let ntb = purchases.div_ceil(2);
    Agg {
        clicks,
        dpv,
        atc,
        purchases,
        units,
        sales: sum(price, units),
        halo_dpv: halo * 2,
        halo_atc: halo,
        halo_purchases: halo,
        halo_units: halo,
        halo_sales: sum(halo_price, halo),
        ntb_purchases: ntb,
        ntb_units: ntb,
        ntb_sales: sum(price, ntb),
    }
}

const PRODUCTS: [(&str, &str, &str, &str); 4] = [
    (
        "Trail Bottle 750 ml, insulated",
        "Sports",
        "1200 Outdoor Recreation",
        "1210 Hydration",
    ),
    (
        "Ultralight Rain Shell",
        "Apparel",
        "3100 Outerwear",
        "3110 Rain Jackets",
    ),
    (
        "Camp Stove Mini",
        "Sports",
        "1200 Outdoor Recreation",
        "1230 Camp Kitchen",
    ),
    (
        "Merino Hiking Socks, 3 pairs",
        "Apparel",
        "3400 Socks",
        "3410 Hiking Socks",
    ),
];

/// PRODUCTS dimensions: the promoted product of the link's landing page.
pub fn product(c: &Click) -> Vec<(&'static str, String)> {
    let p = mix(0, &["product", &c.campaign_id, &c.ad_group_id]);
    let (name, group, category, sub) = PRODUCTS[(p % PRODUCTS.len() as u64) as usize];
    let asin: String = (0..8)
        .map(|i| {
            let d = ((p >> (i * 5)) % 36) as u32;
            char::from_digit(d, 36)
                .expect("base 36")
                .to_ascii_uppercase()
        })
        .collect();
    vec![
        ("productName", format!("Sandbox Brand {name}")),
        ("productGroup", group.into()),
        ("productCategory", category.into()),
        ("productSubcategory", sub.into()),
        ("brandName", "Sandbox Brand".into()),
        ("productAsin", format!("B0{asin}")),
        ("productConversionType", "Promoted".into()),
        ("marketplace", "AMAZON.COM".into()),
    ]
}
