//! From a request to the message to store: ids, the source (built from
//! parts, or a raw message completed), the DKIM signature and each
//! recipient's first status.

use mail_builder::headers::date::Date;
use uuid::Uuid;

use super::SendError;
use super::per_recipient::{Defaults, TrackingPlan, tracking_plan, unsubscribe_uris};
use super::request::Request;
use crate::auth::ServerAuth;
use crate::db::messages::{NewMessage, NewRecipient};
use crate::domain::{Invalid, RecipientStatus, ServerMode, SigningDomain, SuppressedAddress};
use crate::mail::build::{self, Composition};
use crate::mail::raw::{self, RawInfo};
use crate::state::AppState;

/// Refuses a message above `limits.max_message_bytes`.
pub fn check_size(max: usize, size: usize) -> Result<(), Invalid> {
    if size > max {
        return Err(Invalid::too_large(
            "message_too_large",
            format!("the message is {size} bytes; the limit is {max} (limits.max_message_bytes)"),
        ));
    }
    Ok(())
}

/// The parts of a stored message that building it decides.
struct Built {
    message_id: String,
    mail_from: String,
    from_header: String,
    subject: String,
    /// Signed source.
    raw: Vec<u8>,
    /// The tracked links' URLs, by index.
    links: Vec<String>,
}

/// Builds and signs the message for `domain` (already checked) and gives
/// each recipient its first status.
pub(super) async fn prepare(
    state: &AppState,
    auth: &ServerAuth,
    domain: SigningDomain,
    request: Request,
    suppressed: &[SuppressedAddress],
    defaults: &Defaults,
) -> Result<NewMessage, SendError> {
    let id = Uuid::now_v7();
    let domain_id = domain.id;
    let recipient_ids: Vec<Uuid> = request.recipients().iter().map(|_| Uuid::now_v7()).collect();
    let (built, recipients, tag, metadata) = match request {
        Request::Compose(mut c) => {
            let has_own = c
                .content
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("List-Unsubscribe"));
            if let Some((url, mailto)) = unsubscribe_uris(
                state,
                c.unsubscribe,
                defaults.list_unsubscribe,
                has_own,
                &recipient_ids,
            )? {
                c.content.list_unsubscribe = vec![url, mailto];
            }
            let asked = (c.track_opens, c.track_clicks);
            let tracking = tracking_plan(state, defaults, asked, c.content.html.is_some(), &recipient_ids)?;
            let (recipients, tag, metadata) = (c.recipients, c.tag, c.metadata);
            (
                composed(state, id, domain, c.content, tracking).await?,
                recipients,
                tag,
                metadata,
            )
        }
        Request::Raw(r) => {
            let fields = unsubscribe_uris(
                state,
                r.unsubscribe,
                defaults.list_unsubscribe,
                r.info.has_list_unsubscribe,
                &recipient_ids,
            )?;
            let (recipients, tag, metadata) = (r.recipients, r.tag, r.metadata);
            let built = completed(
                state,
                id,
                domain,
                r.mail_from.to_string(),
                r.message,
                r.info,
                fields,
            )
            .await?;
            (built, recipients, tag, metadata)
        }
    };
    let recipients = recipients
        .iter()
        .zip(recipient_ids)
        .map(|((address, kind), recipient_id)| {
            let address_text = address.to_string();
            let lower = address_text.to_ascii_lowercase();
            let suppression = suppressed
                .iter()
                .find(|s| s.address == lower)
                .map(|s| s.note.clone());
            let status = if suppression.is_some() {
                RecipientStatus::Suppressed
            } else if auth.mode == ServerMode::Development {
                RecipientStatus::Held
            } else {
                RecipientStatus::Queued
            };
            NewRecipient {
                id: recipient_id,
                address: address_text,
                domain: address.domain().to_string(),
                kind: *kind,
                status,
                suppression,
            }
        })
        .collect();
    Ok(NewMessage {
        id,
        server_id: auth.server_id,
        domain_id: Some(domain_id),
        message_id: built.message_id,
        mail_from: built.mail_from,
        from_header: built.from_header,
        subject: built.subject,
        tag,
        metadata,
        raw: built.raw,
        recipients,
        links: built.links,
    })
}

async fn composed(
    state: &AppState,
    id: Uuid,
    domain: SigningDomain,
    content: Composition,
    tracking: Option<TrackingPlan>,
) -> Result<Built, SendError> {
    let from_header = match &content.from.name {
        Some(name) => format!("{name} <{}>", content.from.address),
        None => content.from.address.to_string(),
    };
    let message_id = format!("{}@{}", id.simple(), state.settings.public_hostname);
    let mail_from = content.from.address.to_string();
    let subject = content.subject.clone();
    let date = chrono::Utc::now().timestamp();
    let built_id = message_id.clone();
    let (raw, links) = sign(state, domain, move || {
        let mut content = content;
        let links = match &tracking {
            Some(plan) => plan.apply(&mut content),
            None => Vec::new(),
        };
        (build::build(&content, &built_id, date), links)
    })
    .await?;
    Ok(Built {
        message_id,
        mail_from,
        from_header,
        subject,
        raw,
        links,
    })
}

/// A raw message completed with Message-ID and Date where missing, with
/// CRLF line ends, signed unless the sender's domain has signed it already.
async fn completed(
    state: &AppState,
    id: Uuid,
    domain: SigningDomain,
    mail_from: String,
    source: Vec<u8>,
    info: RawInfo,
    unsubscribe: Option<(String, String)>,
) -> Result<Built, SendError> {
    let mut prefix = String::new();
    if let Some((url, mailto)) = unsubscribe {
        prefix.push_str(&format!(
            "List-Unsubscribe: <{url}>,\r\n <{mailto}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        ));
    }
    let message_id = match &info.message_id {
        Some(existing) => existing.clone(),
        None => {
            let generated = format!("{}@{}", id.simple(), state.settings.public_hostname);
            prefix.push_str(&format!("Message-ID: <{generated}>\r\n"));
            generated
        }
    };
    if !info.has_date {
        prefix.push_str(&format!(
            "Date: {}\r\n",
            Date::new(chrono::Utc::now().timestamp()).to_rfc822()
        ));
    }
    let headers_added = !prefix.is_empty();
    let mut completed = prefix.into_bytes();
    // Bcc fields name recipients the others must not see: the envelope
    // carries them, the header goes (as Postfix's cleanup removes it).
    let source = raw::without(&source, &info.bcc_fields);
    completed.extend_from_slice(&raw::to_crlf(&source));
    // Signed by the sender's domain already, and left as signed: then
    // Tern adds no signature. Any header Tern adds or removes (Message-ID,
    // Date, Bcc) may break that signature, so then Tern signs too.
    let already_signed =
        info.dkim_domains.iter().any(|d| d == &domain.name) && !headers_added && info.bcc_fields.is_empty();
    let raw = if already_signed {
        check_size(state.settings.limits.max_message_bytes, completed.len())?;
        completed
    } else {
        sign(state, domain, move || (completed, ())).await?.0
    };
    Ok(Built {
        message_id,
        mail_from,
        from_header: info.from_header,
        subject: info.subject,
        raw,
        links: Vec::new(),
    })
}

/// Builds the message, checks its size and DKIM-signs it, in one task on
/// the blocking pool (MIME encoding, body hashing and the RSA signature are
/// CPU work).
async fn sign<T: Send + 'static>(
    state: &AppState,
    domain: SigningDomain,
    build: impl FnOnce() -> (Vec<u8>, T) + Send + 'static,
) -> Result<(Vec<u8>, T), SendError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let (message, extra) = build();
        check_size(state.settings.limits.max_message_bytes, message.len())?;
        state
            .signers
            .sign(
                &domain,
                |domain| {
                    state
                        .sealing()
                        .map_err(|e| e.to_string())?
                        .open_stored(domain.sealed_dkim_key.expose(), domain.id.as_bytes())
                        .map_err(|e| e.to_string())
                },
                &message,
            )
            .map(|signed| (signed, extra))
            .map_err(|e| SendError::Internal(e.into()))
    })
    .await
    .map_err(|e| SendError::Internal(e.into()))?
}
