//! The part of accepting a message that JSON and raw sends share: the
//! sender's domain, signing, suppression, one atomic insert, the answer.

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::idempotency::IdempotencyKey;
use super::recipients::RecipientSet;
use crate::auth::ServerAuth;
use crate::db;
use crate::db::domains::SigningDomain;
use crate::db::messages::{IdempotencyRecord, NewMessage, NewRecipient, RecipientKind, RecipientStatus};
use crate::db::servers::ServerMode;
use crate::domain::DomainName;
use crate::error::ApiError;
use crate::startup::AppState;

/// A recipient as accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedRecipient {
    pub id: Uuid,
    #[schema(example = "jane@example.org")]
    pub address: String,
    pub kind: RecipientKind,
    /// `queued` (live servers), `held` (development servers) or `suppressed`.
    pub status: RecipientStatus,
}

/// The answer to a send: the message's id and one entry per recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendResponse {
    /// Tern's id of the message, for `GET /v1/messages/{id}`.
    pub id: Uuid,
    /// The `Message-ID` header, without angle brackets.
    #[schema(example = "0190f1c2-7b1e-7cc3-9f0a-2b4c6d8e0f12@tern.example.com")]
    pub message_id: String,
    pub recipients: Vec<AcceptedRecipient>,
}

/// A built, signed message ready to be stored.
pub struct Prepared {
    pub id: Uuid,
    pub message_id: String,
    pub mail_from: String,
    pub from_header: String,
    pub subject: String,
    pub tag: Option<String>,
    pub metadata: serde_json::Value,
    pub domain_id: Uuid,
    pub signed: Vec<u8>,
    pub recipients: RecipientSet,
}

/// Checks the sender's domain as looked up: unknown → 422; on a live
/// server it must be verified.
pub fn check_domain(
    auth: &ServerAuth,
    domain: Option<SigningDomain>,
    name: &DomainName,
    field: &str,
) -> Result<SigningDomain, ApiError> {
    let domain = domain.ok_or_else(|| {
        ApiError::unprocessable(
            "unknown_sender_domain",
            format!("`{name}` is not a sending domain of this server"),
        )
        .field(field)
    })?;
    if auth.mode == ServerMode::Live && !domain.verified {
        return Err(ApiError::unprocessable(
            "domain_not_verified",
            format!("`{name}` is not verified yet; publish its DNS records and verify it"),
        )
        .field(field));
    }
    Ok(domain)
}

/// Refuses a message above `limits.max_message_bytes`.
pub fn check_size(max: usize, size: usize) -> Result<(), ApiError> {
    if size > max {
        return Err(ApiError::too_large(
            "message_too_large",
            format!("the message is {size} bytes; the limit is {max} (limits.max_message_bytes)"),
        ));
    }
    Ok(())
}

/// Builds the message, checks its size and DKIM-signs it, in one task on
/// the blocking pool (MIME encoding, body hashing and the RSA signature are
/// CPU work).
pub async fn build_and_sign(
    state: &AppState,
    domain: SigningDomain,
    build: impl FnOnce() -> Vec<u8> + Send + 'static,
) -> Result<Vec<u8>, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let message = build();
        check_size(state.settings.limits.max_message_bytes, message.len())?;
        state
            .signers
            .sign(&domain, &message)
            .map_err(|e| ApiError::Internal(e.into()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

/// Stores the message and answers `202`, or replays an earlier answer.
pub async fn accept(
    state: &AppState,
    auth: &ServerAuth,
    prepared: Prepared,
    suppressed: &[String],
    idempotency: Option<&IdempotencyKey>,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let recipients: Vec<NewRecipient> = prepared
        .recipients
        .list
        .iter()
        .map(|(address, kind)| {
            let address_text = address.to_string();
            let status = if suppressed.contains(&address_text) {
                RecipientStatus::Suppressed
            } else if auth.mode == ServerMode::Development {
                RecipientStatus::Held
            } else {
                RecipientStatus::Queued
            };
            NewRecipient {
                id: Uuid::now_v7(),
                address: address_text,
                domain: address.domain().to_string(),
                kind: *kind,
                status,
            }
        })
        .collect();
    let response = SendResponse {
        id: prepared.id,
        message_id: prepared.message_id.clone(),
        recipients: recipients
            .iter()
            .map(|r| AcceptedRecipient {
                id: r.id,
                address: r.address.clone(),
                kind: r.kind,
                status: r.status,
            })
            .collect(),
    };
    let body = serde_json::to_value(&response).map_err(|e| ApiError::Internal(e.into()))?;
    let record = idempotency.map(|key| IdempotencyRecord {
        key: &key.key,
        request_hash: &key.request_hash,
        status: 202,
        body: &body,
    });
    let message = NewMessage {
        id: prepared.id,
        server_id: auth.server_id,
        domain_id: Some(prepared.domain_id),
        message_id: &prepared.message_id,
        mail_from: &prepared.mail_from,
        from_header: &prepared.from_header,
        subject: &prepared.subject,
        tag: prepared.tag.as_deref(),
        metadata: &prepared.metadata,
        raw: &prepared.signed,
        recipients: &recipients,
    };
    match db::messages::insert(&state.db, &message, record.as_ref()).await {
        Ok(()) => {
            let mode = match auth.mode {
                ServerMode::Live => "live",
                ServerMode::Development => "development",
            };
            crate::monitoring::message_accepted(mode);
            let suppressed = recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Suppressed)
                .count();
            if suppressed > 0 {
                crate::monitoring::recipient_outcome(RecipientStatus::Suppressed, suppressed as u64);
            }
            Ok((StatusCode::ACCEPTED, body))
        }
        // A concurrent request with the same key won: answer as it did.
        Err(sqlx::Error::Database(err)) if err.constraint() == Some("idempotency_keys_pkey") => {
            let key = idempotency
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("idempotency conflict without key")))?;
            let replay = super::idempotency::replay(state, auth.server_id, key)
                .await?
                .ok_or_else(|| {
                    ApiError::conflict(
                        "idempotency_conflict",
                        "a request with this Idempotency-Key is in progress",
                    )
                })?;
            Ok((
                StatusCode::from_u16(replay.status).unwrap_or(StatusCode::ACCEPTED),
                replay.body,
            ))
        }
        Err(err) => Err(err.into()),
    }
}
