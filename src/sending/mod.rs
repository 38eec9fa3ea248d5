//! Accepting messages: one entry point, [`send`], for every way a message
//! arrives (JSON and raw over HTTP today; SMTP submission and a
//! Postal-compatible API later). It owns authentication, idempotency, the
//! sender-domain check, build and sign, suppression and the insert.
//!
//! Callers parse and validate their own protocol's input into a
//! [`Request`] (no I/O); `send` does the rest.

mod accepted;
mod build;
mod error;
mod idempotency;
mod per_recipient;
mod request;

use tracing::Instrument;

pub use accepted::{Accepted, AcceptedRecipient, SendResponse};
pub use build::check_size;
pub use error::SendError;
pub use idempotency::IdempotencyKey;
pub use request::{Compose, RawSubmission, Request};

use crate::auth::{ApiKeyToken, ServerAuth, server_key};
use crate::config::DeliverySettings;
use crate::db;
use crate::db::messages::{IdempotencyRecord, InsertError, NewMessage};
use crate::domain::{DomainName, Invalid, RecipientStatus, ServerMode, SigningDomain, is_special_use_domain};
use crate::observability::metrics;
use crate::state::AppState;
use per_recipient::Defaults;

/// What authenticating a send looks up alongside the key, read cheaply
/// from the request before anything else is done with it.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// The domain the message is sent as, when the request names it
    /// outright (JSON `from`); a raw message's is read after authentication.
    pub sender_domain: Option<DomainName>,
    /// The recipients in lower case, to find suppressed ones in the same
    /// round trip (suppression entries are matched case-insensitively).
    pub recipients: Vec<String>,
}

/// The rest of a request, worked out after authentication: its
/// idempotency key (fingerprinting hashes the whole request) and the
/// validated message (decoding attachments or a raw message), or why it is
/// invalid.
pub type Completed = (Option<IdempotencyKey>, Result<Request, Invalid>);

/// Accepts a message for delivery: stores it, signed, with one queued (or
/// held, or suppressed) row per recipient, and answers with its ids.
///
/// Authentication comes first: the key, the sender's domain and the
/// suppressed recipients come from one database round trip on `envelope`,
/// then the key's send limits apply, and only then does `complete` do the
/// expensive work (hashing, decoding, validating). A validation error is
/// reported after authentication, so an unauthenticated caller learns
/// nothing about its message but 401 (the HTTP layer still answers 400 to
/// JSON it cannot parse or a malformed `Idempotency-Key` header).
pub async fn send(
    state: &AppState,
    token: &ApiKeyToken,
    envelope: Result<Envelope, Invalid>,
    complete: impl FnOnce() -> Result<Completed, SendError>,
) -> Result<Accepted, SendError> {
    let span = tracing::info_span!(
        "send",
        server.id = tracing::field::Empty,
        message.id = tracing::field::Empty
    );
    async move {
        let (domain, addresses) = match &envelope {
            Ok(e) => (
                e.sender_domain.as_ref().map(DomainName::as_str),
                e.recipients.as_slice(),
            ),
            Err(_) => (None, [].as_slice()),
        };
        let mut found =
            db::api_keys::authenticate_for_sending(&state.db, &token.hash(), domain, addresses).await?;
        let auth = server_key::check(&state.db, found.as_ref().map(|f| &f.key))?;
        // Limits come before any work on the message.
        let _admitted = state.send_limits.admit(auth.key_id)?;
        tracing::Span::current().record("server.id", tracing::field::display(auth.server_id));
        let (idempotency, request) = complete()?;
        if let Some(key) = &idempotency
            && let Some(replay) = idempotency::replay(&state.db, auth.server_id, key).await?
        {
            return Ok(replay);
        }
        envelope?;
        let request = request?;
        check_destinations(&state.settings.delivery, &request)?;
        let name = request.sender_domain();
        let domain = match found.as_mut().and_then(|f| f.domain()) {
            Some(domain) if domain.name == name.as_str() => Some(domain),
            // Not known before the message was read (raw sends).
            _ => db::domains::for_signing(&state.db, auth.server_id, name.as_str()).await?,
        };
        let domain = check_domain(&auth, domain, name, request.sender_field())?;
        let defaults = found.as_ref().map(Defaults::of).unwrap_or_default();
        let suppressed = found.map(|f| f.suppressed).unwrap_or_default();
        let message = build::prepare(state, &auth, domain, request, &suppressed, &defaults).await?;
        tracing::Span::current().record("message.id", tracing::field::display(message.id));
        store(state, &auth, message, idempotency.as_ref()).await
    }
    .instrument(span)
    .await
}

/// The sender's domain as looked up: unknown → invalid; on a live server
/// it must be verified.
fn check_domain(
    auth: &ServerAuth,
    domain: Option<SigningDomain>,
    name: &DomainName,
    field: &str,
) -> Result<SigningDomain, Invalid> {
    let domain = domain.ok_or_else(|| {
        Invalid::new(
            "unknown_sender_domain",
            format!("`{name}` is not a sending domain of this server"),
        )
        .field(field)
    })?;
    if auth.mode == ServerMode::Live && !domain.verified {
        return Err(Invalid::new(
            "domain_not_verified",
            format!("`{name}` is not verified yet; publish its DNS records and verify it"),
        )
        .field(field));
    }
    Ok(domain)
}

/// Refuses recipients at special-use names (`.test`, `.local`,
/// `localhost`, …: RFC 6761, 6762) unless the operator routes that domain
/// explicitly (a transport rule or the smart host) or allows private
/// destinations: such names lead to internal hosts, not to mailboxes.
fn check_destinations(settings: &DeliverySettings, request: &Request) -> Result<(), Invalid> {
    if settings.allow_private_destinations || settings.smart_host.is_some() {
        return Ok(());
    }
    let routed = |domain: &str| {
        settings
            .transports
            .iter()
            .any(|rule| rule.domain.eq_ignore_ascii_case(domain))
    };
    for (address, _) in request.recipients().iter() {
        let domain = address.domain().as_str();
        if is_special_use_domain(domain) && !routed(domain) {
            return Err(Invalid::new(
                "undeliverable_domain",
                format!("`{address}`: `{domain}` is a special-use name (RFC 6761) and has no route"),
            )
            .field(request.recipients_field()));
        }
    }
    Ok(())
}

/// Stores the message with its idempotency record; a concurrent request
/// with the same key that won is answered as it was.
async fn store(
    state: &AppState,
    auth: &ServerAuth,
    message: NewMessage,
    idempotency: Option<&IdempotencyKey>,
) -> Result<Accepted, SendError> {
    let answer = SendResponse::for_message(&message);
    // The answer is kept as JSON only for a request with an idempotency key.
    let body = match idempotency {
        Some(_) => Some(serde_json::to_value(&answer).map_err(|e| SendError::Internal(e.into()))?),
        None => None,
    };
    let record = idempotency
        .zip(body.as_ref())
        .map(|(key, body)| IdempotencyRecord {
            key: &key.key,
            request_hash: &key.request_hash,
            status: 202,
            body,
        });
    match db::messages::insert(&state.db, &message, record.as_ref()).await {
        Ok(()) => {
            metrics::message_accepted(auth.mode.as_str());
            let suppressed = message
                .recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Suppressed)
                .count();
            if suppressed > 0 {
                metrics::recipient_outcome(RecipientStatus::Suppressed, suppressed as u64);
            }
            Ok(Accepted {
                answer,
                replayed: false,
            })
        }
        Err(InsertError::DuplicateIdempotencyKey) => {
            let key = idempotency
                .ok_or_else(|| SendError::Internal(anyhow::anyhow!("idempotency conflict without a key")))?;
            idempotency::replay(&state.db, auth.server_id, key)
                .await?
                .ok_or(SendError::IdempotencyKeyInUse)
        }
        Err(InsertError::Database(err)) => Err(err.into()),
    }
}
