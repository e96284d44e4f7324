//! `POST /webhooks/platform`: verify and parse here, then dedupe and apply in the writer's next
//! group commit (`intake`), answered once committed (DESIGN §4.1).
pub mod events;
pub mod intake;
pub mod verify;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;

use crate::{
    flows::{Deps, lifecycle},
    state::AppState,
    store::stores::{self, NewStore},
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
    let now = state.deps.clock.now();
    state
        .verifier
        .verify_webhook(headers, body, now.timestamp())?;
    let (event_type, event) = events::parse(body, state.deps.program.hosts())?;
    let webhook_id = headers.id.expect("verified deliveries carry an id");
    Ok(state
        .intake
        .submit(intake::Delivery {
            webhook_id: webhook_id.to_owned(),
            event_type,
            event,
            received_at: now,
        })
        .await?)
}

/// The event's effect, in the delivery's transaction. False when there was nothing to act on.
async fn apply(
    conn: &impl ConnectionTrait,
    deps: &Deps,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    match event {
        Event::Installed(installed) => {
            let new = NewStore {
                id: &installed.store.id,
                name: &installed.store.name,
                url: &installed.store.url,
                currency: installed.store.currency,
                api_url: installed
                    .api_url
                    .as_ref()
                    .map(|u| u.as_str().trim_end_matches('/').to_owned()),
                commission: installed.commission,
            };
            let cipher = &deps.cipher;
            lifecycle::install(conn, cipher, &new, &installed.access_token, now).await?;
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
        } => lifecycle::affiliate_upserted(conn, store_id, affiliate, now).await,
        Event::AffiliateDeleted {
            store_id,
            affiliate_id,
        } => lifecycle::affiliate_deleted(conn, store_id, *affiliate_id, now).await,
        Event::CommissionUpdated {
            store_id,
            commission,
        } => stores::set_commission(conn, store_id, *commission, now).await,
        Event::Unknown { .. } => Ok(false),
    }
}
