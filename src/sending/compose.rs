//! JSON sends: validate every field, build MIME, sign.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;

use super::accept::{self, Prepared};
use super::recipients::RecipientSet;
use crate::api::send::{AddressInput, AddressList, SendMessage};
use crate::config::Limits;
use crate::db::domains::SigningDomain;
use crate::db::messages::RecipientKind;
use crate::domain::Mailbox;
use crate::error::ApiError;
use crate::mail::build::{self, Attachment, Composition};
use crate::startup::AppState;

/// Headers Tern writes itself, or that only a receiving system may add.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "sender",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "dkim-signature",
    "return-path",
    "received",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
];

fn mailbox(input: &AddressInput, field: &str) -> Result<Mailbox, ApiError> {
    let parsed = match input {
        AddressInput::Text(text) => Mailbox::parse(text),
        AddressInput::Structured(named) => Mailbox::new(named.name.as_deref(), &named.email),
    };
    parsed.map_err(|reason| {
        ApiError::unprocessable("invalid_address", format!("`{field}` {reason}")).field(field)
    })
}

fn mailboxes(list: &AddressList, field: &str) -> Result<Vec<Mailbox>, ApiError> {
    let items = list.items();
    let indexed = matches!(list, AddressList::Many(_));
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = if indexed {
                format!("{field}[{i}]")
            } else {
                field.to_string()
            };
            mailbox(item, &name)
        })
        .collect()
}

fn check_text(field: &str, value: &str, max: usize, allow_tab: bool) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(ApiError::too_large(
            "header_too_long",
            format!("`{field}` is longer than {max} bytes (limits.max_header_bytes)"),
        )
        .field(field));
    }
    let bad = value.chars().any(|c| c.is_control() && !(allow_tab && c == '\t'));
    if bad {
        return Err(ApiError::unprocessable(
            "invalid_header",
            format!("`{field}` contains a control character or line break"),
        )
        .field(field));
    }
    Ok(())
}

/// Checks custom headers: well-formed names (RFC 5322 §3.6.8), one-line
/// values, none of Tern's own.
fn custom_headers(
    headers: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<Vec<(String, String)>, ApiError> {
    if headers.len() > limits.max_custom_headers {
        return Err(ApiError::too_large(
            "too_many_headers",
            format!(
                "at most {} custom headers (limits.max_custom_headers)",
                limits.max_custom_headers
            ),
        )
        .field("headers"));
    }
    headers
        .iter()
        .map(|(name, value)| {
            let field = format!("headers.{name}");
            let valid_name = !name.is_empty()
                && name.len() <= 76
                && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
            if !valid_name {
                return Err(ApiError::unprocessable(
                    "invalid_header",
                    format!("`{name}` is not a valid header name"),
                )
                .field(field));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-tern-") {
                return Err(ApiError::unprocessable(
                    "forbidden_header",
                    format!("`{name}` is set by Tern and cannot be given as a custom header"),
                )
                .field(field));
            }
            check_text(&field, value, limits.max_header_bytes, true)?;
            Ok((name.clone(), value.clone()))
        })
        .collect()
}

/// Checks `tag` and `metadata`, returning metadata as JSON.
pub fn tag_and_metadata(
    tag: Option<&str>,
    metadata: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<(Option<String>, serde_json::Value), ApiError> {
    if let Some(tag) = tag
        && (tag.is_empty() || tag.chars().count() > 100 || tag.chars().any(char::is_control))
    {
        return Err(ApiError::unprocessable("invalid_tag", "`tag` must be 1 to 100 characters").field("tag"));
    }
    if metadata.len() > limits.max_metadata_entries {
        return Err(ApiError::too_large(
            "too_much_metadata",
            format!(
                "at most {} metadata entries (limits.max_metadata_entries)",
                limits.max_metadata_entries
            ),
        )
        .field("metadata"));
    }
    for (key, value) in metadata {
        if key.is_empty() || key.len() > 100 || value.len() > limits.max_header_bytes {
            return Err(ApiError::unprocessable(
                "invalid_metadata",
                "metadata keys must be 1 to 100 bytes and values at most limits.max_header_bytes",
            )
            .field(format!("metadata.{key}")));
        }
    }
    let json = serde_json::to_value(metadata).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((tag.map(str::to_string), json))
}

fn attachments(
    input: &[crate::api::send::AttachmentInput],
    limits: &Limits,
) -> Result<Vec<Attachment>, ApiError> {
    if input.len() > limits.max_attachments {
        return Err(ApiError::too_large(
            "too_many_attachments",
            format!(
                "at most {} attachments (limits.max_attachments)",
                limits.max_attachments
            ),
        )
        .field("attachments"));
    }
    input
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let field = |name: &str| format!("attachments[{i}].{name}");
            if a.filename.trim().is_empty()
                || a.filename.len() > 255
                || a.filename.chars().any(char::is_control)
            {
                return Err(ApiError::unprocessable(
                    "invalid_attachment",
                    "filename must be 1 to 255 characters",
                )
                .field(field("filename")));
            }
            let content_type = a
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            let valid_type = content_type.split_once('/').is_some_and(|(t, s)| {
                let token = |x: &str| {
                    !x.is_empty()
                        && x.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
                };
                token(t) && token(s)
            });
            if !valid_type || content_type.len() > 127 {
                return Err(ApiError::unprocessable(
                    "invalid_content_type",
                    "content_type must be `type/subtype`",
                )
                .field(field("content_type")));
            }
            if let Some(cid) = &a.content_id
                && (cid.is_empty()
                    || cid.len() > 255
                    || !cid
                        .bytes()
                        .all(|b| (33..=126).contains(&b) && b != b'<' && b != b'>'))
            {
                return Err(ApiError::unprocessable(
                    "invalid_content_id",
                    "content_id must be 1 to 255 printable characters without <>",
                )
                .field(field("content_id")));
            }
            let cleaned: String = a.content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let content = STANDARD.decode(cleaned.as_bytes()).map_err(|_| {
                ApiError::unprocessable("invalid_base64", "attachment content is not valid base64")
                    .field(field("content"))
            })?;
            Ok(Attachment {
                filename: a.filename.clone(),
                content_type,
                content,
                content_id: a.content_id.clone(),
            })
        })
        .collect()
}

/// A JSON send that passed every check that needs no database.
pub struct Validated {
    pub from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    reply_to: Vec<Mailbox>,
    pub recipients: RecipientSet,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    headers: Vec<(String, String)>,
    files: Vec<Attachment>,
    tag: Option<String>,
    metadata: serde_json::Value,
}

/// Checks every field of a JSON send (no I/O).
pub fn validate(limits: &Limits, req: SendMessage) -> Result<Validated, ApiError> {
    let from = mailbox(&req.from, "from")?;
    let to = mailboxes(&req.to, "to")?;
    let cc = mailboxes(&req.cc, "cc")?;
    let bcc = mailboxes(&req.bcc, "bcc")?;
    let reply_to = mailboxes(&req.reply_to, "reply_to")?;
    let mut recipients = RecipientSet::default();
    for (list, kind) in [
        (&to, RecipientKind::To),
        (&cc, RecipientKind::Cc),
        (&bcc, RecipientKind::Bcc),
    ] {
        for mailbox in list {
            recipients.add(mailbox.address.clone(), kind);
        }
    }
    recipients.check(limits.max_recipients, "to")?;
    if req.subject.chars().count() > limits.max_subject_chars {
        return Err(ApiError::too_large(
            "subject_too_long",
            format!(
                "the subject is longer than {} characters (limits.max_subject_chars)",
                limits.max_subject_chars
            ),
        )
        .field("subject"));
    }
    if req.subject.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_subject",
            "the subject contains a control character or line break",
        )
        .field("subject"));
    }
    if req.text.is_none() && req.html.is_none() {
        return Err(ApiError::unprocessable("missing_body", "give `text`, `html` or both").field("text"));
    }
    let headers = custom_headers(&req.headers, limits)?;
    let files = attachments(&req.attachments, limits)?;
    let (tag, metadata) = tag_and_metadata(req.tag.as_deref(), &req.metadata, limits)?;
    Ok(Validated {
        from,
        to,
        cc,
        reply_to,
        recipients,
        subject: req.subject,
        text: req.text,
        html: req.html,
        headers,
        files,
        tag,
        metadata,
    })
}

/// Builds and signs a validated send from `domain` (already checked).
pub async fn prepare(state: &AppState, domain: SigningDomain, v: Validated) -> Result<Prepared, ApiError> {
    let id = Uuid::now_v7();
    let message_id = format!("{}@{}", id.simple(), state.settings.public_hostname);
    let from_header = match &v.from.name {
        Some(name) => format!("{name} <{}>", v.from.address),
        None => v.from.address.to_string(),
    };
    let mail_from = v.from.address.to_string();
    let subject = v.subject.clone();
    let composition = Composition {
        from: v.from,
        to: v.to,
        cc: v.cc,
        reply_to: v.reply_to,
        subject: v.subject,
        text: v.text,
        html: v.html,
        headers: v.headers,
        attachments: v.files,
        message_id: message_id.clone(),
        date: chrono::Utc::now().timestamp(),
    };
    let domain_id = domain.id;
    let signed = accept::build_and_sign(state, domain, move || build::build(&composition)).await?;
    Ok(Prepared {
        id,
        message_id,
        mail_from,
        from_header,
        subject,
        tag: v.tag,
        metadata: v.metadata,
        domain_id,
        signed,
        recipients: v.recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        let limits = crate::config::Settings::default().limits;
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(custom_headers(&one("X-Campaign", "spring"), &limits).is_ok());
        for (k, v) in [
            ("Subject", "x"),
            ("dkim-signature", "x"),
            ("Bad Name", "x"),
            ("X-A", "a\r\nBcc: b@c.d"),
        ] {
            assert!(
                custom_headers(&one(k, v), &limits).is_err(),
                "{k}: {v:?} accepted"
            );
        }
    }
}
