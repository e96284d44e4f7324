//! Orders in the program: find by number, create, update (DESIGN §4.4). Amounts are sent as exact
//! decimal text made from minor units, never through floating point.
use serde::Serialize;
use serde_json::{Value, value::RawValue};

use crate::{
    clients::program::{ProgramClient, ProgramError, list_in},
    domain::money::{format_minor, to_minor},
};

/// An order as the program shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOrder {
    pub id: String,
    pub total_minor: Option<i64>,
    pub commission_minor: Option<i64>,
    pub status: Option<String>,
}

/// An amount in major units with exactly the currency's decimals, as a JSON number.
pub fn amount(minor: i64, exponent: u32) -> Box<RawValue> {
    RawValue::from_string(format_minor(minor, exponent))
        .expect("formatted amounts are JSON numbers")
}

#[derive(Debug, Serialize)]
pub struct NewOrder {
    pub number: String,
    pub affiliate_id: i64,
    pub total: Box<RawValue>,
    pub subtotal: Box<RawValue>,
    pub commission: Box<RawValue>,
    pub currency: String,
    pub date: String,
    pub status: String,
    pub source: &'static str,
    pub meta: OrderMeta,
}

#[derive(Debug, Serialize)]
pub struct OrderMeta {
    pub clicks: i64,
    pub purchases: i64,
    pub units: i64,
}

/// Only what changed: every update e-mails the affiliate.
#[derive(Debug, Default, Serialize)]
pub struct OrderChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commission: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl OrderChanges {
    pub fn is_empty(&self) -> bool {
        self.total.is_none() && self.commission.is_none() && self.status.is_none()
    }
}

fn remote(order: &Value, exponent: u32) -> Option<RemoteOrder> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(RemoteOrder {
        // An empty id names no order: updates would go to `/admin/orders/`.
        id: text(order.get("id")?).filter(|id| !id.trim().is_empty())?,
        total_minor: order
            .get("total")
            .and_then(text)
            .and_then(|t| to_minor(&t, exponent).ok()),
        commission_minor: order
            .get("commission")
            .and_then(text)
            .and_then(|t| to_minor(&t, exponent).ok()),
        status: order
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// `{"order": {...}}` or the bare object.
fn unwrap_order(body: Value) -> Value {
    match body {
        Value::Object(mut map) if map.contains_key("order") => {
            map.remove("order").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Order calls are tried again inline only after a 429, whatever the client's policy: a create
/// whose outcome is unknown (a timeout, a 5xx) must be looked up before it is sent again
/// (DESIGN §4.4), and the job's schedule does that; a 429 refused the request before anything
/// was done.
impl ProgramClient<'_> {
    /// The order with exactly this number, if the program has one.
    pub async fn find_order(
        &self,
        number: &str,
        exponent: u32,
    ) -> Result<Option<RemoteOrder>, ProgramError> {
        let body = self
            .send(false, || {
                self.http.get(self.url("/admin/orders")).query(&[
                    ("number", number),
                    ("fields", "id,number,total,commission,status"),
                ])
            })
            .await?;
        let list = list_in(body, "orders")?;
        let Some(found) = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o.get("number").and_then(Value::as_str) == Some(number))
        else {
            return Ok(None);
        };
        // The order is there: read as none, it would be created a second time.
        remote(found, exponent)
            .map(Some)
            .ok_or_else(|| ProgramError::Decode(format!("order {number} has no id")))
    }

    pub async fn create_order(
        &self,
        order: &NewOrder,
        exponent: u32,
    ) -> Result<RemoteOrder, ProgramError> {
        let body = self
            .send(false, || {
                self.http.post(self.url("/admin/orders")).json(order)
            })
            .await?;
        remote(&unwrap_order(body), exponent)
            .ok_or_else(|| ProgramError::Decode("the created order has no id".into()))
    }

    /// Sends the changes; any 2xx is done, whatever its body says (DESIGN §4.4): sent again, the
    /// update would e-mail the affiliate twice.
    pub async fn update_order(&self, id: &str, changes: &OrderChanges) -> Result<(), ProgramError> {
        let sent = self
            .send(false, || {
                self.http
                    .patch(self.url(&format!("/admin/orders/{id}")))
                    .json(changes)
            })
            .await;
        match sent {
            Ok(_) | Err(ProgramError::Decode(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn amounts_are_exact_json_numbers() {
        let order = OrderChanges {
            total: Some(amount(19196, 2)),
            subtotal: None,
            commission: Some(amount(1920, 2)),
            status: None,
        };
        assert_eq!(
            serde_json::to_string(&order).unwrap(),
            r#"{"total":191.96,"commission":19.20}"#
        );
        assert_eq!(amount(1920, 0).get(), "1920");
        assert_eq!(amount(5, 3).get(), "0.005");
    }

    #[test]
    fn remote_orders_are_read_from_either_envelope() {
        let wrapped = serde_json::json!({"order": {"id": 987, "total": 191.96, "commission": "19.2", "status": "approved"}});
        let o = remote(&unwrap_order(wrapped), 2).unwrap();
        assert_eq!(
            (o.id.as_str(), o.total_minor, o.commission_minor),
            ("987", Some(19196), Some(1920))
        );
        assert!(remote(&unwrap_order(serde_json::json!({"id": "x1"})), 2).is_some());
        for no_id in [
            json!({"id": ""}),
            json!({"id": " "}),
            json!({"id": null}),
            json!({}),
        ] {
            assert!(remote(&unwrap_order(json!({ "order": no_id })), 2).is_none());
        }
        // An amount that is not there is unknown, never zero: the update sends it.
        let o = remote(&json!({"id": 1, "total": "", "commission": "1_0"}), 2).unwrap();
        assert_eq!((o.total_minor, o.commission_minor), (None, None));
    }
}
