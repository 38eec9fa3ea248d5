//! Raw sends: decode, check the message and its envelope, complete missing
//! Message-ID/Date, sign unless the domain has signed it already.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_builder::headers::date::Date;
use uuid::Uuid;

use super::accept::{self, Prepared};
use super::compose::tag_and_metadata;
use super::recipients::{RecipientSet, parse_address};
use crate::api::send::{RcptList, SendRawMessage};
use crate::auth::ServerAuth;
use crate::db;
use crate::db::messages::RecipientKind;
use crate::error::ApiError;
use crate::mail::raw;
use crate::startup::AppState;

/// Validates a raw send and returns it signed and ready to store.
pub async fn prepare(state: &AppState, auth: &ServerAuth, req: SendRawMessage) -> Result<Prepared, ApiError> {
    let limits = &state.settings.limits;
    let mail_from = parse_address(&req.mail_from, "mail_from")?;
    let mut recipients = RecipientSet::default();
    let indexed = matches!(req.rcpt_to, RcptList::Many(_));
    for (i, address) in req.rcpt_to.items().into_iter().enumerate() {
        let field = if indexed {
            format!("rcpt_to[{i}]")
        } else {
            "rcpt_to".into()
        };
        recipients.add(parse_address(address, &field)?, RecipientKind::Envelope);
    }
    recipients.check(limits.max_recipients, "rcpt_to")?;
    let (tag, metadata) = tag_and_metadata(req.tag.as_deref(), &req.metadata, limits)?;

    // Bound the work before decoding: base64 is 4/3 of the message.
    if req.raw.len() / 4 * 3 > limits.max_message_bytes + 3 {
        accept::check_size(limits.max_message_bytes, req.raw.len() / 4 * 3)?;
    }
    let cleaned: Vec<u8> = req.raw.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let decoded = STANDARD
        .decode(&cleaned)
        .map_err(|_| ApiError::unprocessable("invalid_base64", "`raw` is not valid base64").field("raw"))?;
    accept::check_size(limits.max_message_bytes, decoded.len())?;
    let info = raw::inspect(&decoded, limits.max_header_bytes).map_err(|err| match err {
        raw::RawError::HeaderTooLong(..) => {
            ApiError::too_large("header_too_long", err.to_string()).field("raw")
        }
        other => ApiError::unprocessable("invalid_message", other.to_string()).field("raw"),
    })?;
    let name = info.from.address.domain();
    let found = db::domains::for_signing(&state.db, auth.server_id, name.as_str()).await?;
    let domain = accept::check_domain(auth, found, name, "raw")?;

    let id = Uuid::now_v7();
    let mut prefix = String::new();
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
    let mut message = prefix.into_bytes();
    message.extend_from_slice(&raw::to_crlf(&decoded));
    let already_signed = info.dkim_domains.iter().any(|d| d == &domain.name);
    let domain_id = domain.id;
    let signed = if already_signed {
        accept::check_size(limits.max_message_bytes, message.len())?;
        message
    } else {
        accept::build_and_sign(state, domain, move || message).await?
    };
    Ok(Prepared {
        id,
        message_id,
        mail_from: mail_from.to_string(),
        from_header: info.from_header,
        subject: info.subject,
        tag,
        metadata,
        domain_id,
        signed,
        recipients,
    })
}
