//! The control room, and the sandbox playing the platform: demo stores installed through signed
//! Standard Webhooks (DESIGN §4.1) and opened through signed load links (§4.2).
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{Duration, NaiveDate, SecondsFormat};
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use url::Url;

use super::csrf::Checked;
use super::world::{self, DemoStore};
use super::{CLIENT_ID, Sandbox, error_page, random_token, render, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(control_room))
        .route("/", web::get().to(control_room))
        .route("/demo-stores", web::post().to(install))
        .route("/demo-stores/{id}/open", web::post().to(open))
        .route("/demo-stores/{id}/reinstall", web::post().to(reinstall))
        .route("/demo-stores/{id}/uninstall", web::post().to(uninstall))
        .route(
            "/demo-stores/{id}/affiliates",
            web::post().to(add_affiliate),
        );
}

const ROSTER_SIZE: u32 = 12;

impl Sandbox {
    /// POSTs a signed event to the app, as the platform does. `Err` carries what the app said.
    pub(super) async fn deliver(&self, kind: &str, data: Value) -> Result<String, String> {
        let now = self.now();
        let body = json!({
            "type": kind,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": data,
        })
        .to_string();
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let ts = now.timestamp().to_string();
        let signature = self.sign(&[id.as_bytes(), ts.as_bytes(), body.as_bytes()]);
        let url = self.url("/webhooks/platform");
        let resp = self
            .inner
            .http
            .post(url.clone())
            .header("webhook-id", &id)
            .header("webhook-timestamp", &ts)
            .header("webhook-signature", signature)
            .header(header::CONTENT_TYPE.as_str(), "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{kind} to {url}: no answer ({e})"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let summary = format!(
            "{kind}: {status} {}",
            text.chars().take(300).collect::<String>()
        );
        if status.is_success() {
            Ok(summary)
        } else {
            Err(summary)
        }
    }

    /// `/app/load?store_id=S&timestamp=T&signature=v1,B`, B = HMAC over "S.T".
    pub(super) fn load_link(&self, store_id: &str) -> Url {
        let ts = self.now().timestamp().to_string();
        let signature = self.sign(&[store_id.as_bytes(), ts.as_bytes()]);
        let mut url = self.url("/app/load");
        url.query_pairs_mut()
            .append_pair("store_id", store_id)
            .append_pair("timestamp", &ts)
            .append_pair("signature", &signature);
        url
    }

    fn store(&self, id: &str) -> Option<DemoStore> {
        self.read(|s| s.stores.iter().find(|st| st.id == id).cloned())
    }

    /// Changes the demo store `id` with `f`; `None` when there is no such store.
    fn update_store<T>(&self, id: &str, f: impl FnOnce(&mut DemoStore) -> T) -> Option<T> {
        self.update(|s| s.stores.iter_mut().find(|st| st.id == id).map(f))
    }

    fn record_delivery(&self, id: &str, installed: Option<bool>, outcome: &str) {
        self.update_store(id, |st| {
            st.last_delivery = outcome.to_owned();
            if let Some(installed) = installed {
                st.installed = installed;
            }
        });
    }

    /// Delivers an event about the demo store `id`, records what the app said, and goes back to
    /// the control room; when the app refused, shows its answer under `refused`.
    async fn deliver_about(
        &self,
        id: &str,
        kind: &str,
        data: Value,
        refused: &str,
    ) -> HttpResponse {
        let outcome = self.deliver(kind, data).await;
        let (Ok(text) | Err(text)) = &outcome;
        self.record_delivery(id, None, text);
        match outcome {
            Ok(_) => see_other(self.url("/sandbox").as_str()),
            Err(text) => error_page(StatusCode::BAD_GATEWAY, refused, &text),
        }
    }

    /// app.installed; on success the browser goes on to the app through a fresh load link.
    async fn send_install(&self, store: &DemoStore) -> HttpResponse {
        let data = json!({
            "store": {"id": store.id, "name": store.name, "url": store.url, "currency": store.currency},
            "program": {
                "access_token": store.access_token,
                "api_url": self.program_api_url().as_str(),
                "default_commission": {"type": "percentage", "value": "10"},
            },
        });
        match self.deliver("app.installed", data).await {
            Ok(outcome) => {
                self.record_delivery(&store.id, Some(true), &outcome);
                see_other(self.load_link(&store.id).as_str())
            }
            Err(outcome) => {
                self.record_delivery(&store.id, Some(false), &outcome);
                let msg = format!(
                    "The sandbox, playing the platform, sent app.installed for {} and the app answered: {outcome}",
                    store.id
                );
                error_page(
                    StatusCode::BAD_GATEWAY,
                    "The app did not accept the install",
                    &msg,
                )
            }
        }
    }
}

async fn install(_: Checked<IgnoredAny>, sb: web::Data<Sandbox>) -> HttpResponse {
    let seed = sb.seed();
    let store = sb.update(|s| {
        let n = s.stores.iter().map(|st| st.number).max().unwrap_or(0) + 1;
        let store = DemoStore {
            id: format!("st_demo_{n}"),
            number: n,
            name: format!("Demo Outdoors {n}"),
            url: format!("https://demo{n}.example"),
            currency: "USD".into(),
            access_token: Some(format!("gpat_{}", random_token(32))),
            installed: false,
            last_delivery: String::new(),
            affiliates: world::roster(seed, n, ROSTER_SIZE),
        };
        s.stores.push(store.clone());
        store
    });
    sb.send_install(&store).await
}

fn no_store() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "No such demo store",
        "Install a demo store first.",
    )
}

async fn open(
    _: Checked<IgnoredAny>,
    id: web::Path<String>,
    sb: web::Data<Sandbox>,
) -> HttpResponse {
    match sb.store(&id) {
        Some(st) if st.installed => see_other(sb.load_link(&st.id).as_str()),
        Some(_) => error_page(
            StatusCode::CONFLICT,
            "This demo store is not installed",
            "Install it again from the control room first.",
        ),
        None => no_store(),
    }
}

/// A reinstall brings the store back with a new program token (the old one was revoked).
async fn reinstall(
    _: Checked<IgnoredAny>,
    id: web::Path<String>,
    sb: web::Data<Sandbox>,
) -> HttpResponse {
    let Some(store) = sb.update_store(&id, |st| {
        if st.access_token.is_none() {
            st.access_token = Some(format!("gpat_{}", random_token(32)));
        }
        st.clone()
    }) else {
        return no_store();
    };
    sb.send_install(&store).await
}

async fn uninstall(
    _: Checked<IgnoredAny>,
    id: web::Path<String>,
    sb: web::Data<Sandbox>,
) -> HttpResponse {
    // The platform revokes the program token whether or not the app hears about it.
    let found = sb.update_store(&id, |st| {
        st.access_token = None;
        st.installed = false;
    });
    if found.is_none() {
        return no_store();
    }
    let data = json!({"store": {"id": *id}});
    sb.deliver_about(
        &id,
        "app.uninstalled",
        data,
        "The app did not accept the uninstall",
    )
    .await
}

/// A new affiliate joins the program: affiliate.created tells the app.
async fn add_affiliate(
    _: Checked<IgnoredAny>,
    id: web::Path<String>,
    sb: web::Data<Sandbox>,
) -> HttpResponse {
    let seed = sb.seed();
    let added = sb.update_store(&id, |st| {
        if !st.installed {
            return None;
        }
        let a = world::affiliate(seed, st.number, st.affiliates.len() as u32);
        st.affiliates.push(a.clone());
        Some(a)
    });
    let Some(a) = added.flatten() else {
        return no_store();
    };
    let data = json!({"store_id": *id, "affiliate": {
        "id": a.id, "name": a.name, "ref_code": a.ref_code, "status": a.status,
    }});
    sb.deliver_about(
        &id,
        "affiliate.created",
        data,
        "The app did not accept affiliate.created",
    )
    .await
}

struct ClickRow {
    campaign: String,
    ad_group: String,
    creative: String,
    publisher: &'static str,
    first_day: String,
    data_from: String,
    seen: u64,
}

#[derive(Template)]
#[template(path = "sandbox/control.html")]
struct ControlRoom {
    /// The token every form of the page carries (`csrf`).
    csrf: String,
    stores: Vec<DemoStore>,
    client_id: &'static str,
    authorize_url: String,
    token_url: String,
    api_url: String,
    program_api_url: String,
    profile_id: i64,
    advertiser_id: String,
    grants: usize,
    measurement: bool,
    clicks: Vec<ClickRow>,
    restatements: Vec<String>,
    yesterday: String,
    /// The newest past day the program has an order for: restating it changes that order at
    /// the next sync. `None` before the app pushed any.
    pushed_day: Option<String>,
}

async fn control_room(req: HttpRequest, sb: web::Data<Sandbox>) -> HttpResponse {
    let ids = sb.ids().clone();
    let token = sb.form_token(&req);
    let page = sb.read(|s| ControlRoom {
        csrf: token.token.clone(),
        stores: s.stores.clone(),
        client_id: CLIENT_ID,
        authorize_url: sb.authorize_url().into(),
        token_url: sb.token_url().into(),
        api_url: sb.api_url().into(),
        program_api_url: sb.program_api_url().into(),
        profile_id: ids.profile_id,
        measurement: s.measurement.contains(&ids.advertiser_id),
        advertiser_id: ids.advertiser_id.clone(),
        grants: s.refresh_tokens.len(),
        clicks: s
            .clicks
            .iter()
            .map(|c| ClickRow {
                campaign: c.campaign_id.clone(),
                ad_group: c.ad_group_id.clone(),
                creative: c.creative_id.clone(),
                publisher: super::ads::publisher_name(&c.publisher_id).unwrap_or("?"),
                first_day: c.first_day.to_string(),
                data_from: (c.first_day - Duration::days(super::report::HISTORY_DAYS)).to_string(),
                seen: c.seen,
            })
            .collect(),
        restatements: s
            .restatements
            .iter()
            .rev()
            .map(|r| {
                format!(
                    "{}: {:?} (made {})",
                    r.date,
                    r.direction,
                    r.at.format("%Y-%m-%d %H:%M UTC")
                )
            })
            .collect(),
        yesterday: (sb.today() - Duration::days(1)).to_string(),
        pushed_day: newest_pushed_day(s, sb.today()).map(|d| d.to_string()),
    });
    token.bind(render(StatusCode::OK, &page))
}

/// The newest day before `today` that an order in the program is for (any store's).
fn newest_pushed_day(s: &world::State, today: NaiveDate) -> Option<NaiveDate> {
    s.orders
        .iter()
        .filter_map(|o| NaiveDate::parse_from_str(o.date.as_deref()?, "%Y-%m-%d").ok())
        .filter(|d| *d < today)
        .max()
}
