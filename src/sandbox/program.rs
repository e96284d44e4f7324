//! The affiliate program's admin API, GoAffPro-compatible (DESIGN §4.4, affiliate-platform.md
//! §1.2), scoped to the demo store whose access token is sent; and a page listing its orders.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::ads::list_param;
use super::world::{DemoStore, FieldChange, Order, OrderUpdate};
use super::{JsonError, Sandbox};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/program/v1")
            .route("/admin/affiliates", web::get().to(affiliates))
            .service(
                web::resource("/admin/orders")
                    .route(web::get().to(find_orders))
                    .route(web::post().to(create_order)),
            )
            .route("/admin/orders/{id}", web::patch().to(update_order))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(json!({"error": "not found"}))
            })),
    );
}

fn error(status: StatusCode, message: &str) -> JsonError {
    JsonError::new(status, json!({ "error": message }))
}

/// The store whose token this is; every answer is scoped to it.
fn store_of(req: &HttpRequest, sb: &Sandbox) -> Result<DemoStore, JsonError> {
    let token = req
        .headers()
        .get("x-goaffpro-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    sb.read(|s| s.store_by_token(token).cloned())
        .filter(|_| !token.is_empty())
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unauthorized"))
}

/// Without `fields` the real API answers an empty object per item; we do the same.
fn select(full: Value, fields: &[String]) -> Value {
    let Value::Object(full) = full else {
        return full;
    };
    Value::Object(
        full.into_iter()
            .filter(|(k, _)| fields.iter().any(|f| f == k))
            .collect(),
    )
}

/// `limit` (default 25, at most 250) and `offset` (default 0).
fn paging(query: &str) -> Result<(usize, usize), JsonError> {
    let p = super::form::first_params(query.as_bytes());
    let num = |name: &str, default: usize| match p.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| error(StatusCode::BAD_REQUEST, &format!("{name} must be a number"))),
    };
    Ok((num("limit", 25)?.clamp(1, 250), num("offset", 0)?))
}

async fn affiliates(req: HttpRequest, sb: web::Data<Sandbox>) -> Result<HttpResponse, JsonError> {
    let store = store_of(&req, &sb)?;
    let (limit, offset) = paging(req.query_string())?;
    let fields = list_param(req.query_string(), "fields");
    let list: Vec<Value> = store
        .affiliates
        .iter()
        .skip(offset)
        .take(limit)
        .map(|a| select(serde_json::to_value(a).expect("serializable"), &fields))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "affiliates": list })))
}

/// ISO 4217 minor-unit exponent of the currencies a demo store may use.
fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "CLP" | "ISK" | "VND" => 0,
        "KWD" | "BHD" | "JOD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// A JSON number with at most the currency's decimals, as minor units; no floating point.
fn minor_units(v: &Value, exp: u32) -> Option<i64> {
    let text = v.as_number()?.to_string();
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None; // negative, or exponent notation
    }
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    if frac.len() > exp as usize || int.is_empty() {
        return None;
    }
    let scale = 10i64.pow(exp);
    let frac_minor = format!("{frac:0<width$}", width = exp as usize);
    let frac_minor: i64 = if exp == 0 {
        0
    } else {
        frac_minor.parse().ok()?
    };
    int.parse::<i64>()
        .ok()?
        .checked_mul(scale)?
        .checked_add(frac_minor)
}

pub(super) fn major(minor: i64, currency: &str) -> String {
    let exp = exponent(currency);
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(exp);
    let width = exp as usize;
    format!("{}.{:0width$}", minor / scale, minor % scale)
}

fn order_json(o: &Order) -> Value {
    let num = |minor: i64| -> Value {
        let text = major(minor, &o.currency);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    json!({
        "id": o.id, "number": o.number, "affiliate_id": o.affiliate_id,
        "total": num(o.total), "subtotal": num(o.subtotal), "commission": num(o.commission),
        "currency": o.currency, "status": o.status, "date": o.date, "source": o.source,
        "meta": o.meta, "created_at": o.created_at, "updated_at": o.updated_at,
    })
}

async fn find_orders(req: HttpRequest, sb: web::Data<Sandbox>) -> Result<HttpResponse, JsonError> {
    let store = store_of(&req, &sb)?;
    let (limit, offset) = paging(req.query_string())?;
    let p = super::form::first_params(req.query_string().as_bytes());
    let fields = list_param(req.query_string(), "fields");
    let list: Vec<Value> = sb.read(|s| {
        s.orders
            .iter()
            .filter(|o| o.store_id == store.id)
            .filter(|o| p.get("number").is_none_or(|n| *n == o.number))
            .filter(|o| p.get("status").is_none_or(|st| *st == o.status))
            .filter(|o| {
                let wanted = p.get("affiliate_id");
                wanted.is_none_or(|a| o.affiliate_id.map(|i| i.to_string()).as_ref() == Some(a))
            })
            .skip(offset)
            .take(limit)
            .map(|o| select(order_json(o), &fields))
            .collect()
    });
    Ok(HttpResponse::Ok().json(json!({ "orders": list })))
}

/// The body, flat or wrapped in `{"order": …}` (both are seen in the wild).
fn order_body(body: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut m)) => match m.remove("order") {
            Some(Value::Object(inner)) => Ok(inner),
            Some(other) => {
                m.insert("order".into(), other);
                Ok(m)
            }
            None => Ok(m),
        },
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        )),
    }
}

fn amount(m: &Map<String, Value>, name: &str, currency: &str) -> Result<Option<i64>, JsonError> {
    match m.get(name).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => minor_units(v, exponent(currency)).map(Some).ok_or_else(|| {
            let decimals = exponent(currency);
            let msg = format!("{name} must be a non-negative JSON number with at most {decimals} decimals for {currency}");
            error(StatusCode::BAD_REQUEST, &msg)
        }),
    }
}

const STATUSES: [&str; 3] = ["pending", "approved", "rejected"];

fn status(m: &Map<String, Value>) -> Result<Option<String>, JsonError> {
    match m.get("status").filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "status must be pending, approved or rejected",
        )),
    }
}

async fn create_order(
    req: HttpRequest,
    body: web::Bytes,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    let store = store_of(&req, &sb)?;
    let m = order_body(&body)?;
    let number = match m.get("number") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(error(StatusCode::BAD_REQUEST, "number is required")),
    };
    let currency = match m.get("currency").filter(|v| !v.is_null()) {
        None => store.currency.clone(),
        Some(Value::String(c)) if *c == store.currency => c.clone(),
        Some(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "currency does not match the store's",
            ));
        }
    };
    let total = amount(&m, "total", &currency)?
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "total is required"))?;
    let subtotal = amount(&m, "subtotal", &currency)?.unwrap_or(total);
    // The program's default commission (10 %), rounded half up, when none is given.
    let commission = amount(&m, "commission", &currency)?.unwrap_or((subtotal * 10 + 50) / 100);
    let affiliate = match (
        m.get("affiliate_id").and_then(Value::as_i64),
        m.get("ref_code").and_then(Value::as_str),
    ) {
        (Some(id), _) => store.affiliates.iter().find(|a| a.id == id),
        (None, Some(code)) => store.affiliates.iter().find(|a| a.ref_code == code),
        (None, None) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "affiliate_id or ref_code is required",
            ));
        }
    };
    let affiliate =
        affiliate.ok_or_else(|| error(StatusCode::BAD_REQUEST, "affiliate not found"))?;
    let status = status(&m)?.unwrap_or_else(|| "pending".into());
    let now = sb.now();
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let created = sb.update(|s| {
        if s.orders
            .iter()
            .any(|o| o.store_id == store.id && o.number == number)
        {
            return None;
        }
        s.next_order_id = s.next_order_id.max(9000) + 1;
        let order = Order {
            id: s.next_order_id,
            store_id: store.id.clone(),
            number,
            affiliate_id: Some(affiliate.id),
            total,
            subtotal,
            commission,
            currency,
            date: text("date"),
            status,
            source: text("source"),
            meta: m.get("meta").cloned().unwrap_or(Value::Null),
            created_at: now,
            updated_at: now,
            history: Vec::new(),
        };
        s.orders.push(order.clone());
        Some(order)
    });
    match created {
        Some(order) => Ok(HttpResponse::Ok().json(json!({ "order": order_json(&order) }))),
        None => Err(error(StatusCode::CONFLICT, "order number already exists")),
    }
}

async fn update_order(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    let store = store_of(&req, &sb)?;
    let not_found = || error(StatusCode::NOT_FOUND, "order not found");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let m = order_body(&body)?;
    let currency = sb
        .read(|s| {
            s.orders
                .iter()
                .find(|o| o.id == id && o.store_id == store.id)
                .map(|o| o.currency.clone())
        })
        .ok_or_else(not_found)?;
    let amounts = [
        ("total", amount(&m, "total", &currency)?),
        ("subtotal", amount(&m, "subtotal", &currency)?),
        ("commission", amount(&m, "commission", &currency)?),
    ];
    let new_status = status(&m)?;
    let now = sb.now();
    let order = sb.update(|s| {
        let o = s
            .orders
            .iter_mut()
            .find(|o| o.id == id && o.store_id == store.id)?;
        let mut changes = Vec::new();
        for (field, value) in amounts {
            let Some(value) = value else { continue };
            let slot = match field {
                "total" => &mut o.total,
                "subtotal" => &mut o.subtotal,
                _ => &mut o.commission,
            };
            if *slot != value {
                let (from, to) = (major(*slot, &o.currency), major(value, &o.currency));
                changes.push(FieldChange {
                    field: field.into(),
                    from,
                    to,
                });
                *slot = value;
            }
        }
        if let Some(st) = new_status.filter(|st| *st != o.status) {
            let from = std::mem::replace(&mut o.status, st.clone());
            changes.push(FieldChange {
                field: "status".into(),
                from,
                to: st,
            });
        }
        o.updated_at = now;
        o.history.push(OrderUpdate { at: now, changes });
        Some(o.clone())
    });
    let order = order.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(json!({ "order": order_json(&order) })))
}
