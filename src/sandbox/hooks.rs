//! The sandbox's own hooks around Amazon: shoppers' clicks on tagged links (how Amazon learns a
//! campaign), manual restatements, and injected report faults for tests.
use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::ads::{header_value, publisher_name};
use super::csrf::{self, Checked};
use super::world::{Click, Direction, Fault, Restatement};
use super::{Sandbox, error_page, render, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/amazon/click", web::get().to(click))
        .route("/amazon/clicks", web::post().to(clicks))
        .route("/amazon/restate", web::post().to(restate))
        .route("/amazon/faults", web::post().to(faults));
}

/// Characters Amazon refuses in `aa_*` values (reference §3.4), plus unfilled placeholders.
fn check_value(name: &str, value: &str) -> Result<(), String> {
    const FORBIDDEN: &[char] = &[
        '/', '&', '=', '#', '?', '+', '\'', '"', '%', '$', '’', '”', '{', '}',
    ];
    if value.chars().count() > 255 {
        return Err(format!("{name} is longer than 255 characters"));
    }
    match value.chars().find(|c| FORBIDDEN.contains(c)) {
        Some(c) => Err(format!(
            "{name} contains the character {c}, which Amazon does not record"
        )),
        None => Ok(()),
    }
}

/// Registers a click on a tagged link; the flag is true when Amazon had not seen the link before.
fn register(sb: &Sandbox, params: &BTreeMap<String, String>) -> Result<(bool, Click), String> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let maas = get("maas");
    let parts: Vec<&str> = maas.split('_').collect();
    let ["maas", "adg", "api", adv, "static" | "macro", publisher, _n] = parts[..] else {
        return Err(format!("maas is not an Amazon Attribution tag: {maas:?}"));
    };
    if adv != sb.ids().advertiser_id {
        return Err(format!(
            "advertiser {adv} is not the sandbox's ({})",
            sb.ids().advertiser_id
        ));
    }
    if publisher_name(publisher).is_none() {
        return Err(format!("unknown publisher {publisher}"));
    }
    if get("aa_campaignid").is_empty() {
        return Err("aa_campaignid is missing or empty".into());
    }
    for name in ["aa_campaignid", "aa_adgroupid", "aa_creativeid"] {
        check_value(name, get(name))?;
    }
    let now = sb.now();
    let today = sb.today();
    sb.update(|s| {
        if !s.measurement.contains(adv) {
            return Err(
                "measurement is off: no tag was ever fetched for this advertiser through the API"
                    .to_owned(),
            );
        }
        let key = (
            get("aa_campaignid"),
            get("aa_adgroupid"),
            get("aa_creativeid"),
        );
        if let Some(c) = s.clicks.iter_mut().find(|c| {
            c.advertiser_id == adv && (&*c.campaign_id, &*c.ad_group_id, &*c.creative_id) == key
        }) {
            c.seen += 1;
            return Ok((false, c.clone()));
        }
        let click = Click {
            advertiser_id: adv.to_owned(),
            publisher_id: publisher.to_owned(),
            campaign_id: key.0.to_owned(),
            ad_group_id: key.1.to_owned(),
            creative_id: key.2.to_owned(),
            first_at: now,
            first_day: today,
            seen: 1,
        };
        s.clicks.push(click.clone());
        Ok((true, click))
    })
}

#[derive(Template)]
#[template(path = "sandbox/landing.html")]
struct Landing {
    click: Click,
    publisher: &'static str,
    new: bool,
    data_from: chrono::NaiveDate,
}

async fn click(req: HttpRequest, sb: web::Data<Sandbox>) -> HttpResponse {
    let params: BTreeMap<String, String> = super::form::first_params(req.query_string().as_bytes())
        .into_iter()
        .collect();
    match register(&sb, &params) {
        Ok((new, click)) => {
            let publisher = publisher_name(&click.publisher_id).unwrap_or("?");
            let data_from = click.first_day - chrono::Duration::days(super::report::HISTORY_DAYS);
            render(
                StatusCode::OK,
                &Landing {
                    click,
                    publisher,
                    new,
                    data_from,
                },
            )
        }
        Err(why) => error_page(
            StatusCode::BAD_REQUEST,
            "Amazon would not record this click",
            &why,
        ),
    }
}

#[derive(Deserialize)]
struct Links {
    links: Vec<String>,
}

/// Many clicks at once: JSON `{"links":[…]}`, or the control room's form (one link per line).
async fn clicks(req: HttpRequest, body: web::Bytes, sb: web::Data<Sandbox>) -> HttpResponse {
    // JSON only by its media type: another site can send `text/plain; json` without a CORS
    // preflight, but not `application/json`, which this server never grants.
    let media = header_value(&req, header::CONTENT_TYPE.as_str())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let form = !(media == "application/json" || media.ends_with("+json"));
    let links = if form {
        // The control room's form, or anything a page of another site could send: CSRF-checked.
        let mut fields = super::form::first_params(&body);
        if !sb.csrf_ok(&req, fields.get(csrf::FIELD).map(String::as_str)) {
            return csrf::refused();
        }
        let text = fields.remove("links").unwrap_or_default();
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        match serde_json::from_slice::<Links>(&body) {
            Ok(l) => l.links,
            Err(e) => return HttpResponse::BadRequest().json(json!({"error": e.to_string()})),
        }
    };
    let (mut registered, mut new) = (0, 0);
    for link in &links {
        let outcome = url::Url::parse(link)
            .map_err(|e| format!("not a URL: {e}"))
            .and_then(|u| register(&sb, &u.query_pairs().into_owned().collect()));
        match outcome {
            Ok((fresh, _)) => {
                registered += 1;
                new += usize::from(fresh);
            }
            Err(why) if form => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Amazon would not record this click",
                    &format!("{link}: {why}"),
                );
            }
            Err(why) => {
                return HttpResponse::BadRequest()
                    .json(json!({"error": why, "link": link, "registered": registered}));
            }
        }
    }
    if form {
        return see_other(sb.url("/sandbox").as_str());
    }
    HttpResponse::Ok().json(json!({"registered": registered, "new": new}))
}

#[derive(Deserialize)]
struct RestateForm {
    date: String,
    direction: Direction,
}

async fn restate(Checked(form): Checked<RestateForm>, sb: web::Data<Sandbox>) -> HttpResponse {
    let Ok(date) = chrono::NaiveDate::parse_from_str(form.date.trim(), "%Y-%m-%d") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid date",
            "Give the day as YYYY-MM-DD.",
        );
    };
    if date >= sb.today() {
        let msg = "Only past days have figures; today's and future days cannot be restated.";
        return error_page(StatusCode::BAD_REQUEST, "Nothing to restate", msg);
    }
    let r = Restatement {
        date,
        direction: form.direction,
        at: sb.now(),
    };
    sb.update(|s| s.restatements.push(r));
    see_other(sb.url("/sandbox").as_str())
}

/// A misspelled key is refused (400), not read as "no faults".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    report: Vec<Fault>,
}

/// Test hook: the next report calls answer these statuses, in order (replaces any pending).
async fn faults(body: web::Json<Faults>, sb: web::Data<Sandbox>) -> HttpResponse {
    if let Some(bad) = body
        .report
        .iter()
        .find(|f| !(400..=599).contains(&f.status))
    {
        let error = format!("status {} is not an error status", bad.status);
        return HttpResponse::BadRequest().json(json!({ "error": error }));
    }
    let pending = body.report.len();
    sb.update(|s| s.report_faults = body.into_inner().report.into());
    HttpResponse::Ok().json(json!({"pending": {"report": pending}}))
}

impl Sandbox {
    /// Shoppers click each of `links` (the merchant's "Shoppers click every link" in the
    /// sandbox): from then on the sandbox's Amazon reports traffic and sales for them. Returns
    /// how many were recorded, or why one was refused.
    pub fn shoppers_click(&self, links: &[String]) -> Result<usize, String> {
        let mut registered = 0;
        for link in links {
            let url = url::Url::parse(link).map_err(|e| format!("{link}: not a URL: {e}"))?;
            register(self, &url.query_pairs().into_owned().collect())
                .map_err(|why| format!("{link}: {why}"))?;
            registered += 1;
        }
        Ok(registered)
    }
}
