//! Connecting a store's Amazon Ads account: consent with `state` + PKCE, the callback, the choice of
//! profile and advertiser, and the template tag the links are minted from.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use rand::RngCore;
use sea_orm::{DbErr, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{
    clients::amazon::{Region, ads::AmazonError, lwa},
    crypto::CryptoError,
    domain::{
        currency::Currency,
        ids::StoreId,
        links::{self, fill_template},
    },
    flows::{
        Deps,
        tokens::{self, AuthError, CallError},
    },
    store::{
        connections::{self, Account},
        oauth, stores,
    },
};

pub const STATE_TTL_MINUTES: i64 = 10;

/// One eligible (profile, advertiser) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub profile_id: i64,
    pub advertiser_id: String,
    pub advertiser_name: String,
    pub account_name: String,
    pub country_code: String,
    pub currency_code: String,
    pub timezone: String,
    pub marketplace_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the sign-in attempt is missing its state")]
    MissingState,
    #[error("this sign-in attempt is unknown")]
    UnknownState,
    #[error("this sign-in attempt was already used")]
    StateUsed,
    #[error("this sign-in attempt expired")]
    StateExpired,
    #[error("this sign-in attempt belongs to another store")]
    ForeignState,
    #[error("Amazon sign-in was not completed: {0}")]
    ConsentRefused(String),
    #[error("Amazon did not send an authorization code")]
    MissingCode,
    #[error("Amazon refused the sign-in: {0}")]
    Exchange(#[from] lwa::LwaError),
    #[error("{0}")]
    Amazon(#[from] CallError),
    #[error("the chosen account is not one of this store's choices")]
    UnknownChoice,
    #[error("the store was uninstalled meanwhile")]
    StoreGone,
    #[error("Amazon's template tag cannot be used: {0}")]
    Template(#[from] links::LinkError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl ConnectError {
    /// What the merchant reads on the Overview page.
    pub fn message(&self) -> String {
        match self {
            Self::MissingState | Self::UnknownState | Self::StateUsed | Self::ForeignState => {
                "That Amazon sign-in link is not valid (it was already used or belongs to another session). Click “Connect Amazon” to start again.".into()
            }
            Self::StateExpired => "The Amazon sign-in took longer than 10 minutes. Click “Connect Amazon” to start again.".into(),
            Self::ConsentRefused(_) => "Amazon access was not granted, so nothing changed. Click “Connect Amazon” whenever you are ready.".into(),
            Self::MissingCode => "Amazon did not complete the sign-in. Please try again.".into(),
            Self::Exchange(lwa::LwaError::InvalidGrant(_)) | Self::Exchange(lwa::LwaError::InvalidRequest(_)) => {
                "Amazon did not accept the sign-in code (it may have expired or been used). Please connect again.".into()
            }
            Self::Exchange(lwa::LwaError::InvalidClient(_)) | Self::Exchange(lwa::LwaError::UnsupportedGrantType(_)) => {
                "This app's Login with Amazon settings are not accepted by Amazon. The operator must check amazon.client_id and client_secret.".into()
            }
            Self::Exchange(e) => format!("Amazon could not be reached to finish the sign-in ({e}). Please try again."),
            Self::Amazon(CallError::Auth(AuthError::NeedsReconnect)) => {
                "Amazon no longer accepts this app's access. Connect Amazon again.".into()
            }
            Self::Amazon(e) => format!("Amazon could not be read: {e}. Please try again in a moment."),
            Self::UnknownChoice => "Please choose one of the listed accounts.".into(),
            Self::StoreGone => "The app was uninstalled from this store meanwhile; nothing was kept.".into(),

            Self::Template(e) => format!("Amazon's link template could not be used: {e}."),
            Self::Db(_) | Self::Crypto(_) => "Something went wrong on our side. Please try again.".into(),
        }
    }
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn verifier_aad(hash: &str) -> String {
    format!("oauth-verifier:{hash}")
}

/// Records a new attempt and returns Amazon's consent URL for it.
pub async fn start(deps: &Deps, store: &StoreId, region: Region) -> Result<Url, ConnectError> {
    let state = random_token(32);
    let verifier = random_token(48);
    let hash = state_hash(&state);
    let now = deps.clock.now();
    let sealed = deps
        .cipher
        .seal(&SecretString::from(verifier.clone()), &verifier_aad(&hash));
    let expires = now + Duration::minutes(STATE_TTL_MINUTES);
    oauth::start(&deps.db, store, &hash, region, sealed, expires, now).await?;
    let endpoints = deps.amazon.endpoints(region);
    Ok(lwa::consent_url(
        &endpoints.authorize,
        &deps.amazon,
        &state,
        &verifier,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the connection became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    MustChoose,
    NotEligible,
}

/// Handles Amazon's redirect for the store of the session. The attempt is consumed whatever
/// happens next, so a replayed callback fails.
pub async fn callback(
    deps: &Deps,
    session_store: &StoreId,
    q: &CallbackQuery,
) -> Result<Outcome, ConnectError> {
    let state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(ConnectError::MissingState)?;
    let hash = state_hash(state);
    let attempt = oauth::find(&deps.db, &hash)
        .await?
        .ok_or(ConnectError::UnknownState)?;
    if attempt.store_id != session_store.as_str() {
        return Err(ConnectError::ForeignState);
    }
    let now = deps.clock.now();
    if !oauth::consume(&deps.db, &hash, now).await? {
        return Err(if attempt.used_at.is_some() {
            ConnectError::StateUsed
        } else {
            ConnectError::StateExpired
        });
    }
    if let Some(error) = &q.error {
        let why = q.error_description.clone().unwrap_or_else(|| error.clone());
        return Err(ConnectError::ConsentRefused(why));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(ConnectError::MissingCode)?;
    let region: Region = attempt
        .region
        .parse()
        .map_err(|_| ConnectError::UnknownState)?;
    let verifier = deps
        .cipher
        .open(&attempt.code_verifier, &verifier_aad(&hash))?;
    let endpoints = deps.amazon.endpoints(region);
    let grant = lwa::exchange_code(
        &deps.amazon,
        &endpoints.token,
        code,
        verifier.expose_secret(),
    )
    .await?;
    let refresh = grant.refresh_token.ok_or_else(|| {
        ConnectError::Exchange(lwa::LwaError::Other {
            status: 200,
            detail: "no refresh token in the answer".into(),
        })
    })?;
    save_tokens(
        deps,
        session_store,
        region,
        &refresh,
        &grant.access_token,
        grant.expires_in,
    )
    .await?;
    tracing::info!(store_id = %session_store, region = %region, "Amazon connected; reading accounts");
    discover(deps, session_store).await
}

async fn save_tokens(
    deps: &Deps,
    store: &StoreId,
    region: Region,
    refresh: &SecretString,
    access: &SecretString,
    expires_in: i64,
) -> Result<(), ConnectError> {
    let now = deps.clock.now();
    let txn = deps.db.begin().await?;
    // An uninstall (or redaction) that came in while Amazon answered wins: no token is kept.
    stores::lock(&txn, store).await?;
    if !stores::is_active(&txn, store).await? {
        txn.rollback().await?;
        return Err(ConnectError::StoreGone);
    }
    connections::replace_after_sign_in(
        &txn,
        store,
        region,
        deps.cipher.seal(refresh, &tokens::refresh_aad(store)),
        deps.cipher.seal(access, &tokens::access_aad(store)),
        now + Duration::seconds(expires_in),
        now,
    )
    .await?;
    Ok(txn.commit().await?)
}

/// Profiles (legacy Attribution-only ones dropped), then their advertisers; chooses by itself when
/// exactly one pair remains.
pub async fn discover(deps: &Deps, store: &StoreId) -> Result<Outcome, ConnectError> {
    let profiles = tokens::with_token(deps, store, |t, r| async move {
        deps.amazon.ads(r).profiles(&t).await
    })
    .await?;
    let mut choices = Vec::new();
    let mut refused = Vec::new();
    let mut unreadable = Vec::new();
    for p in profiles.iter().filter(|p| !p.is_legacy_attribution()) {
        let name = || p.account_info.name.clone().unwrap_or(p.profile_id.clone());
        if let Some(why) = unreadable_profile(p) {
            unreadable.push(format!("{} ({why})", name()));
            continue;
        }
        let pid = p.profile_id.clone();
        let found = tokens::with_token(deps, store, |t, r| {
            let pid = pid.clone();
            async move { deps.amazon.ads(r).advertisers(&t, &pid).await }
        })
        .await;
        match found {
            Ok(list) => choices.extend(list.into_iter().filter_map(|a| {
                Some(Choice {
                    profile_id: p.profile_id.parse().ok()?,
                    advertiser_id: a.advertiser_id?,
                    advertiser_name: a.advertiser_name.unwrap_or_default(),
                    account_name: p.account_info.name.clone().unwrap_or_default(),
                    country_code: p.country_code.clone().unwrap_or_default(),
                    currency_code: p.currency_code.clone().unwrap_or_default(),
                    timezone: p.timezone.clone().unwrap_or_else(|| "UTC".into()),
                    marketplace_id: p
                        .account_info
                        .marketplace_string_id
                        .clone()
                        .unwrap_or_default(),
                })
            })),
            // Explained to the merchant, not retried.
            Err(CallError::Amazon(AmazonError::NotEnabled(detail))) => {
                refused.push(format!("{} ({})", name(), detail));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let now = deps.clock.now();
    if connections::find(&deps.db, store).await?.is_none() {
        return Err(ConnectError::Amazon(CallError::Auth(
            AuthError::NotConnected,
        )));
    }
    match choices.len() {
        0 => {
            let mut problem = Vec::new();
            if !refused.is_empty() {
                problem.push(format!(
                    "Amazon Attribution is not enabled for this account's profiles: {}. Enable Amazon Attribution in the Amazon Ads console, or connect another account.",
                    refused.join("; ")
                ));
            }
            if !unreadable.is_empty() {
                problem.push(format!(
                    "These profiles cannot be used, as their sales could not be read right: {}. Connect another account, or ask Amazon Ads support to correct the profile.",
                    unreadable.join("; ")
                ));
            }
            if problem.is_empty() {
                problem.push("This Amazon account has no Amazon Ads profile in this region that can use Amazon Attribution (legacy Attribution-only profiles are not supported). Try another region or account.".to_owned());
            }
            let problem = problem.join(" ");
            connections::set_not_eligible(&deps.db, store, problem, now).await?;
            Ok(Outcome::NotEligible)
        }
        1 => {
            finalize(deps, store, &choices[0]).await?;
            Ok(Outcome::Connected)
        }
        _ => {
            let json = serde_json::to_string(&choices).expect("choices serialize");
            connections::set_choices(&deps.db, store, json, now).await?;
            Ok(Outcome::MustChoose)
        }
    }
}

/// Why a profile cannot be used, if it cannot: every amount Amazon reports is in its
/// `currencyCode`, which must be an ISO 4217 currency, and its days are in its `timezone`, which
/// must be one the app knows when given (DESIGN §4.3, §5). Refused at connect, not at the first
/// sync, nor read as a default.
fn unreadable_profile(p: &crate::clients::amazon::wire::Profile) -> Option<String> {
    let currency = p.currency_code.as_deref().unwrap_or_default();
    if Currency::parse(currency).is_err() {
        return Some(match currency.trim() {
            "" => "it has no currency".to_owned(),
            _ => format!("its currency {currency:?} is not an ISO 4217 currency"),
        });
    }
    match p.timezone.as_deref() {
        Some(zone) if zone.parse::<chrono_tz::Tz>().is_err() => {
            Some(format!("its time zone {zone:?} is unknown"))
        }
        _ => None,
    }
}

impl Choice {
    /// The pairs a connection lists while the merchant must choose (none when unreadable).
    pub fn listed_on(conn: &connections::Connection) -> Vec<Self> {
        conn.choices
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }
}

/// The merchant's choice among the listed pairs.
pub async fn choose(
    deps: &Deps,
    store: &StoreId,
    profile_id: i64,
    advertiser_id: &str,
) -> Result<(), ConnectError> {
    let conn = connections::find(&deps.db, store)
        .await?
        .ok_or(ConnectError::UnknownChoice)?;
    let choice = Choice::listed_on(&conn)
        .into_iter()
        .find(|c| c.profile_id == profile_id && c.advertiser_id == advertiser_id)
        .ok_or(ConnectError::UnknownChoice)?;
    finalize(deps, store, &choice).await
}

/// Fetches the template tag (which also switches measurement on), records the account and mints
/// the links.
pub async fn finalize(deps: &Deps, store: &StoreId, choice: &Choice) -> Result<(), ConnectError> {
    let pid = choice.profile_id.to_string();
    let template = tokens::with_token(deps, store, |t, r| {
        let pid = pid.clone();
        async move {
            deps.amazon
                .ads(r)
                .template_tag(&t, &pid, &choice.advertiser_id, &deps.amazon.publisher_id)
                .await
        }
    })
    .await?;
    let store_row = stores::find(&deps.db, store)
        .await?
        .ok_or(ConnectError::UnknownChoice)?;
    let campaign = store_row
        .campaign_id
        .clone()
        .unwrap_or_else(|| links::campaign_id_for(store.as_str()));
    // Fail now, loudly, rather than mint broken links later.
    fill_template(&template, &campaign, "a1", "home")?;
    let now = deps.clock.now();
    let account = Account {
        profile_id: choice.profile_id,
        advertiser_id: choice.advertiser_id.clone(),
        advertiser_name: choice.advertiser_name.clone(),
        country_code: choice.country_code.clone(),
        currency_code: choice.currency_code.clone(),
        timezone: choice.timezone.clone(),
        marketplace_id: choice.marketplace_id.clone(),
        template_tag: template,
    };
    if !connections::set_account(&deps.db, store, account, now).await? {
        return Err(ConnectError::UnknownChoice);
    }
    tracing::info!(store_id = %store, profile_id = choice.profile_id, advertiser_id = %choice.advertiser_id, "Amazon account chosen");
    if let Err(e) = crate::flows::roster::sync(deps, store).await {
        tracing::warn!(store_id = %store, error = %e, "roster read after connecting failed; links use the known roster");
    }
    let txn = deps.db.begin().await?;
    crate::flows::links::refresh(&txn, store, now).await?;
    txn.commit().await?;
    Ok(())
}

/// Forgets the connection, its tokens and its sign-in attempts. Links stay on record and come
/// back on reconnect.
pub async fn disconnect(deps: &Deps, store: &StoreId) -> Result<(), DbErr> {
    connections::delete(&deps.db, store).await
}
