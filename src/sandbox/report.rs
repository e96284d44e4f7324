//! `POST /attribution/report` (reference §3.5, §7 item 6): validation, generated figures with
//! Amazon-like restatements, the 10-click privacy mask, and cursor pagination.
use std::collections::{BTreeMap, HashMap};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{Duration, NaiveDate};
use serde_json::{Map, Value, json};

use super::ads::{ADVERTISER_NAME, ads_error, publisher_name};
use super::figures::{Agg, link_day, raw_clicks};
use super::world::{Click, State};
use super::{JsonError, Sandbox};

const PERFORMANCE: [&str; 14] = [
    "Click-throughs",
    "attributedDetailPageViewsClicks14d",
    "attributedAddToCartClicks14d",
    "attributedPurchases14d",
    "unitsSold14d",
    "attributedSales14d",
    "attributedTotalDetailPageViewsClicks14d",
    "attributedTotalAddToCartClicks14d",
    "attributedTotalPurchases14d",
    "totalUnitsSold14d",
    "totalAttributedSales14d",
    "kindleEditionNormalizedPagesRead14d",
    "kindleEditionNormalizedPagesRoyalties14d",
    "brb_bonus_amount",
];
const PRODUCTS: [&str; 18] = [
    "attributedDetailPageViewsClicks14d",
    "attributedAddToCartClicks14d",
    "attributedPurchases14d",
    "unitsSold14d",
    "attributedSales14d",
    "brandHaloDetailPageViewsClicks14d",
    "brandHaloAttributedAddToCartClicks14d",
    "brandHaloAttributedPurchases14d",
    "brandHaloUnitsSold14d",
    "brandHaloAttributedSales14d",
    "attributedNewToBrandPurchases14d",
    "attributedNewToBrandUnitsSold14d",
    "attributedNewToBrandSales14d",
    "brandHaloNewToBrandPurchases14d",
    "brandHaloNewToBrandUnitsSold14d",
    "brandHaloNewToBrandSales14d",
    "kindleEditionNormalizedPagesRead14d",
    "kindleEditionNormalizedPagesRoyalties14d",
];
/// A newly seen link gets this much history, so that a first sync has something to read.
pub const HISTORY_DAYS: i64 = 45;
/// Rows of tags with fewer lifetime clicks come back as zeros (reference §4.3).
const MASK_BELOW: u64 = 10;
const DEFAULT_COUNT: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Campaign,
    AdGroup,
    Creative,
}

#[derive(Debug)]
struct Query {
    products: bool,
    group: Level,
    start: NaiveDate,
    end: NaiveDate,
    metrics: Vec<&'static str>,
    count: usize,
    offset: usize,
}

fn date(body: &Map<String, Value>, name: &str) -> Result<NaiveDate, String> {
    let raw = body.get(name).and_then(Value::as_str).unwrap_or_default();
    let bad = || format!("Invalid {name}: {raw:?}. Expected format YYYYMMDD");
    if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    NaiveDate::parse_from_str(raw, "%Y%m%d").map_err(|_| bad())
}

/// Present and not null.
fn given<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

fn parse(body: &[u8], sb: &Sandbox) -> Result<Query, String> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err("Invalid request body: expected a JSON object".into());
    };
    let products = match given(&body, "reportType").map(|v| v.as_str()) {
        None | Some(Some("PERFORMANCE")) => false,
        Some(Some("PRODUCTS")) => true,
        Some(other) => return Err(format!("Invalid reportType: {}", other.unwrap_or("?"))),
    };
    if let Some(ids) = given(&body, "advertiserIds") {
        let Some(ids) = ids.as_str() else {
            return Err("advertiserIds must be a comma-delimited string".into());
        };
        let ours = &sb.ids().advertiser_id;
        if let Some(bad) = ids
            .split(',')
            .map(str::trim)
            .find(|id| !id.is_empty() && id != ours)
        {
            return Err(format!("Invalid advertiser identifier: {bad}"));
        }
    }
    let (start, end) = (date(&body, "startDate")?, date(&body, "endDate")?);
    if start > end {
        return Err("startDate must not be after endDate".into());
    }
    let group = match (products, given(&body, "groupBy").map(|v| v.as_str())) {
        (true, None) => Level::AdGroup,
        (true, Some(_)) => return Err("groupBy is not supported for reportType PRODUCTS".into()),
        (false, None | Some(Some("CREATIVE"))) => Level::Creative,
        (false, Some(Some("ADGROUP"))) => Level::AdGroup,
        (false, Some(Some("CAMPAIGN"))) => Level::Campaign,
        (false, Some(other)) => return Err(format!("Invalid groupBy: {}", other.unwrap_or("?"))),
    };
    if products && start < sb.today() - Duration::days(90) {
        return Err("startDate must be within the last 90 days for reportType PRODUCTS".into());
    }
    let known: &[&'static str] = if products { &PRODUCTS } else { &PERFORMANCE };
    let metrics = match given(&body, "metrics") {
        None => known
            .iter()
            .copied()
            .filter(|m| *m != "brb_bonus_amount")
            .collect(),
        Some(Value::String(list)) if list.trim().is_empty() => known
            .iter()
            .copied()
            .filter(|m| *m != "brb_bonus_amount")
            .collect(),
        Some(Value::String(list)) => {
            let mut out: Vec<&'static str> = Vec::new();
            for name in list.split(',').map(str::trim) {
                let m = known.iter().find(|k| **k == name);
                let m = m.ok_or_else(|| format!("Invalid metric: {name}"))?;
                if !out.contains(m) {
                    out.push(m);
                }
            }
            out
        }
        Some(_) => return Err("metrics must be a comma-delimited string".into()),
    };
    if group == Level::Creative && metrics.contains(&"brb_bonus_amount") {
        return Err("brb_bonus_amount is not supported with groupBy CREATIVE".into());
    }
    let count = match given(&body, "count") {
        None => DEFAULT_COUNT,
        Some(v) => v
            .as_u64()
            .filter(|c| (1..=5000).contains(c))
            .ok_or_else(|| {
                format!("Invalid count: {v}. count must be an integer between 1 and 5000")
            })?,
    };
    let offset = match given(&body, "cursorId").map(|v| v.as_str()) {
        None | Some(Some("")) => 0,
        Some(Some(cursor)) => decode_cursor(cursor).ok_or("Invalid cursorId")?,
        Some(None) => return Err("Invalid cursorId".into()),
    };
    Ok(Query {
        products,
        group,
        start,
        end,
        metrics,
        count: count as usize,
        offset,
    })
}

/// The cursor is a string that is itself JSON, as live responses show.
fn encode_cursor(offset: usize, page: usize) -> String {
    json!({"values": [offset], "page": page, "fields": ["row_number"], "version": "V2"}).to_string()
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let v: Value = serde_json::from_str(cursor).ok()?;
    usize::try_from(v.get("values")?.get(0)?.as_u64()?).ok()
}

pub async fn report(
    req: HttpRequest,
    body: web::Bytes,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    sb.attribution_scope(&req)?;
    if let Some(fault) = sb.lock().report_faults.pop_front() {
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let details = match fault.status {
            429 => "Too Many Requests",
            500 => "service unavailable",
            _ => status.canonical_reason().unwrap_or("error"),
        };
        let mut resp = ads_error(status, details).error_response();
        if let Some(secs) = fault.retry_after {
            let value = header::HeaderValue::from(secs);
            resp.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(resp);
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        let details = "Content-Type must be application/json";
        return Err(ads_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, details));
    }
    let query = parse(&body, &sb).map_err(|d| ads_error(StatusCode::BAD_REQUEST, &d))?;
    let rows = sb.read(|s| rows(&sb, s, &query));
    let page: Vec<Value> = rows
        .iter()
        .skip(query.offset)
        .take(query.count)
        .cloned()
        .collect();
    let next = query.offset + page.len();
    let cursor = if next < rows.len() {
        encode_cursor(next, next / query.count)
    } else {
        String::new()
    };
    Ok(HttpResponse::Ok().json(json!({"reports": page, "cursorId": cursor, "size": page.len()})))
}

/// Dimension values that make a row at the requested level.
fn key(click: &Click, group: Level) -> (String, String, String) {
    match group {
        Level::Campaign => (click.campaign_id.clone(), String::new(), String::new()),
        Level::AdGroup => (
            click.campaign_id.clone(),
            click.ad_group_id.clone(),
            String::new(),
        ),
        Level::Creative => (
            click.campaign_id.clone(),
            click.ad_group_id.clone(),
            click.creative_id.clone(),
        ),
    }
}

/// Every row of the report, ordered by date then ids; pages are slices of it.
fn rows(sb: &Sandbox, s: &State, q: &Query) -> Vec<Value> {
    let (seed, today) = (sb.seed(), sb.today());
    let yesterday = today - Duration::days(1);
    let mut groups: BTreeMap<(String, String, String), Vec<&Click>> = BTreeMap::new();
    for c in s
        .clicks
        .iter()
        .filter(|c| c.advertiser_id == sb.ids().advertiser_id)
    {
        groups.entry(key(c, q.group)).or_default().push(c);
    }
    // Lifetime = every day with data up to yesterday, whatever range was asked for.
    let lifetime: HashMap<&(String, String, String), u64> = groups
        .iter()
        .map(|(k, links)| {
            let total = links
                .iter()
                .map(|c| {
                    let mut day = c.first_day - Duration::days(HISTORY_DAYS);
                    let mut sum = 0;
                    while day <= yesterday {
                        sum += raw_clicks(seed, c, day);
                        day += Duration::days(1);
                    }
                    sum
                })
                .sum();
            (k, total)
        })
        .collect();
    let mut out = Vec::new();
    let mut day = q.start;
    while day <= q.end.min(yesterday) {
        let age = (today - day).num_days();
        let restated: Vec<_> = s.restatements.iter().filter(|r| r.date == day).collect();
        for (k, links) in &groups {
            let live: Vec<&&Click> = links
                .iter()
                .filter(|c| day >= c.first_day - Duration::days(HISTORY_DAYS))
                .collect();
            if live.is_empty() {
                continue;
            }
            let mut agg = Agg::default();
            for c in &live {
                agg.add(&link_day(seed, c, day, age, &restated));
            }
            let masked = lifetime[k] < MASK_BELOW;
            out.push(row(q, k, live[0], day, &agg, masked));
        }
        day += Duration::days(1);
    }
    out
}

fn row(
    q: &Query,
    k: &(String, String, String),
    first: &Click,
    day: NaiveDate,
    agg: &Agg,
    masked: bool,
) -> Value {
    let mut r = Map::new();
    r.insert("date".into(), day.format("%Y%m%d").to_string().into());
    r.insert("advertiserName".into(), ADVERTISER_NAME.into());
    r.insert("campaignId".into(), k.0.clone().into());
    if q.group != Level::Campaign {
        r.insert("adGroupId".into(), k.1.clone().into());
        let publisher = publisher_name(&first.publisher_id).unwrap_or("Other");
        r.insert("publisher".into(), publisher.into());
    }
    if q.group == Level::Creative {
        r.insert("creativeId".into(), k.2.clone().into());
    }
    if q.products {
        for (name, value) in super::figures::product(first) {
            r.insert(name.into(), value.into());
        }
    }
    for m in &q.metrics {
        let v = if masked { "0".to_owned() } else { agg.value(m) };
        r.insert((*m).into(), v.into());
    }
    Value::Object(r)
}
