//! `POST /webhooks/platform`: verify, parse, dedupe and apply in one transaction (DESIGN §4.1).
pub mod events;
pub mod verify;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use chrono::{DateTime, Utc};
use entity::webhook_inbox;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TransactionTrait, sea_query::OnConflict,
};
use serde::Serialize;

use crate::{
    flows::links,
    state::AppState,
    store::{affiliates, stores},
};
use events::{Event, MalformedPayload};
use verify::{SignedHeaders, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] VerifyError),
    #[error("malformed payload: {0}")]
    Malformed(#[from] MalformedPayload),
    #[error("database unavailable")]
    Database(#[from] DbErr),
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            // The platform retries on 5xx; nothing was committed.
            Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, detail) = match self {
            Self::Unauthorized(e) => ("unauthorized", e.to_string()),
            Self::Malformed(e) => ("malformed_payload", e.to_string()),
            Self::Database(e) => {
                tracing::error!(error = %e, error.debug = ?e, "webhook not committed");
                ("unavailable", "try again later".to_owned())
            }
        };
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "code": code, "detail": detail }))
    }
}

/// What a 200 says about the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Receipt {
    /// The event's effect is committed.
    Processed,
    /// Valid, but about nothing we act on (unknown type, unknown or uninstalled store): recorded.
    Ignored,
    /// This `webhook-id` was seen before; nothing was done again.
    Duplicate,
}

pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebhookError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let headers = SignedHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    let receipt = process(&state, headers, &body).await.inspect_err(|e| {
        state.metrics.webhook(match e {
            WebhookError::Unauthorized(_) => "unauthorized",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::Database(_) => "unavailable",
        });
        if !matches!(e, WebhookError::Database(_)) {
            tracing::warn!(error = %e, "webhook refused");
        }
    })?;
    state.metrics.webhook(match receipt {
        Receipt::Processed => "processed",
        Receipt::Ignored => "ignored",
        Receipt::Duplicate => "duplicate",
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": receipt })))
}

/// Verification, parsing, dedupe and effect. A returned `Ok` means committed.
pub async fn process(
    state: &AppState,
    headers: SignedHeaders<'_>,
    body: &[u8],
) -> Result<Receipt, WebhookError> {
    let now = state.clock.now();
    state
        .verifier
        .verify_webhook(headers, body, now.timestamp())?;
    let (event_type, event) = events::parse(body)?;
    let webhook_id = headers.id.expect("verified deliveries carry an id");

    let txn = state.db.begin().await?;
    // The inbox row comes first: a racing duplicate waits on its key and then finds it taken.
    if !record(&txn, webhook_id, &event_type, &event, now).await? {
        txn.rollback().await?;
        tracing::info!(webhook_id, "duplicate webhook delivery ignored");
        return Ok(Receipt::Duplicate);
    }
    let applied = apply(&txn, state, &event, now).await?;
    if !applied {
        webhook_inbox::Entity::update_many()
            .col_expr(
                webhook_inbox::Column::Outcome,
                sea_orm::sea_query::Expr::value("ignored"),
            )
            .filter(webhook_inbox::Column::WebhookId.eq(webhook_id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    tracing::info!(webhook_id, event_type, store_id = ?event.store_id().map(|s| s.as_str()), applied, "webhook processed");
    Ok(if applied {
        Receipt::Processed
    } else {
        Receipt::Ignored
    })
}

/// Inserts the inbox row; false when this delivery id is already there.
async fn record(
    conn: &impl ConnectionTrait,
    webhook_id: &str,
    event_type: &str,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    // A redacted store must not stay named anywhere, not even in the inbox.
    let store_id = match event {
        Event::Redact { .. } => None,
        other => other.store_id().map(|s| s.as_str().to_owned()),
    };
    let row = webhook_inbox::ActiveModel {
        webhook_id: Set(webhook_id.to_owned()),
        event_type: Set(event_type.chars().take(100).collect()),
        store_id: Set(store_id),
        outcome: Set("applied".to_owned()),
        received_at: Set(now),
    };
    let inserted = webhook_inbox::Entity::insert(row)
        .on_conflict(
            OnConflict::column(webhook_inbox::Column::WebhookId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

/// The event's effect. False when there was nothing to act on.
async fn apply(
    conn: &impl ConnectionTrait,
    state: &AppState,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    match event {
        Event::Installed(installed) => {
            stores::install(conn, &state.cipher, installed, now).await?;
            Ok(true)
        }
        Event::Uninstalled { store_id } => {
            stores::uninstall(conn, store_id, now).await?;
            Ok(true)
        }
        Event::Redact { store_id } => {
            stores::purge(conn, store_id).await?;
            Ok(true)
        }
        Event::AffiliateUpserted {
            store_id,
            affiliate,
        } => {
            if !is_active(conn, store_id).await? {
                return Ok(false);
            }
            affiliates::upsert(conn, store_id, affiliate, now).await?;
            links::refresh(conn, store_id, now).await?;
            Ok(true)
        }
        Event::AffiliateDeleted {
            store_id,
            affiliate_id,
        } => {
            if !is_active(conn, store_id).await? {
                return Ok(false);
            }
            let known = affiliates::mark_deleted(conn, store_id, *affiliate_id, now).await?;
            links::refresh(conn, store_id, now).await?;
            Ok(known)
        }
        Event::CommissionUpdated {
            store_id,
            commission,
        } => stores::set_commission(conn, store_id, *commission, now).await,
        Event::Unknown { .. } => Ok(false),
    }
}

async fn is_active(
    conn: &impl ConnectionTrait,
    store_id: &crate::domain::ids::StoreId,
) -> Result<bool, DbErr> {
    Ok(stores::find(conn, store_id)
        .await?
        .is_some_and(|s| s.status == stores::ACTIVE))
}
