//! Turns the JSON bodies of the send endpoints into a validated
//! [`Request`]: every field checked, nothing looked up (no I/O), errors
//! naming the field at fault as a JSON path.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::request::{AddressInput, AddressList, AttachmentInput, RcptList, SendMessage, SendRawMessage};
use crate::config::Limits;
use crate::domain::{EmailAddress, Invalid, Mailbox, RecipientKind, RecipientSet};
use crate::mail::build::{Attachment, Composition};
use crate::mail::raw;
use crate::sending::{Compose, Envelope, RawSubmission, Request, check_size};

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

fn mailbox(input: &AddressInput, field: &str) -> Result<Mailbox, Invalid> {
    let parsed = match input {
        AddressInput::Text(text) => Mailbox::parse(text),
        AddressInput::Structured(named) => Mailbox::new(named.name.as_deref(), &named.email),
    };
    parsed.map_err(|reason| Invalid::new("invalid_address", format!("`{field}` {reason}")).field(field))
}

fn mailboxes(list: &AddressList, field: &str) -> Result<Vec<Mailbox>, Invalid> {
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

fn check_text(field: &str, value: &str, max: usize, allow_tab: bool) -> Result<(), Invalid> {
    if value.len() > max {
        return Err(Invalid::too_large(
            "header_too_long",
            format!("`{field}` is longer than {max} bytes (limits.max_header_bytes)"),
        )
        .field(field));
    }
    let bad = value.chars().any(|c| c.is_control() && !(allow_tab && c == '\t'));
    if bad {
        return Err(Invalid::new(
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
) -> Result<Vec<(String, String)>, Invalid> {
    if headers.len() > limits.max_custom_headers {
        return Err(Invalid::too_large(
            "too_many_headers",
            format!(
                "at most {} custom headers (limits.max_custom_headers)",
                limits.max_custom_headers
            ),
        )
        .field("headers"));
    }
    let mut seen = std::collections::HashSet::new();
    headers
        .iter()
        .map(|(name, value)| {
            let field = format!("headers.{name}");
            let valid_name = !name.is_empty()
                && name.len() <= 76
                && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
            if !valid_name {
                return Err(
                    Invalid::new("invalid_header", format!("`{name}` is not a valid header name"))
                        .field(field),
                );
            }
            let lower = name.to_ascii_lowercase();
            if !seen.insert(lower.clone()) {
                return Err(Invalid::new(
                    "invalid_header",
                    format!("`{name}` is given twice (header names are case-insensitive)"),
                )
                .field(field));
            }
            if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-tern-") {
                return Err(Invalid::new(
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
) -> Result<(Option<String>, serde_json::Value), Invalid> {
    if let Some(tag) = tag
        && (tag.is_empty() || tag.chars().count() > 100 || tag.chars().any(char::is_control))
    {
        return Err(Invalid::new("invalid_tag", "`tag` must be 1 to 100 characters").field("tag"));
    }
    if metadata.len() > limits.max_metadata_entries {
        return Err(Invalid::too_large(
            "too_much_metadata",
            format!(
                "at most {} metadata entries (limits.max_metadata_entries)",
                limits.max_metadata_entries
            ),
        )
        .field("metadata"));
    }
    for (key, value) in metadata {
        if key.is_empty()
            || key.len() > 100
            || value.len() > limits.max_header_bytes
            || key.chars().chain(value.chars()).any(|c| c == '\0')
        {
            return Err(Invalid::new(
                "invalid_metadata",
                "metadata keys must be 1 to 100 bytes and values at most limits.max_header_bytes",
            )
            .field(format!("metadata.{key}")));
        }
    }
    let json = serde_json::Value::Object(
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    Ok((tag.map(str::to_string), json))
}

fn attachments(input: &[AttachmentInput], limits: &Limits) -> Result<Vec<Attachment>, Invalid> {
    if input.len() > limits.max_attachments {
        return Err(Invalid::too_large(
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
                return Err(
                    Invalid::new("invalid_attachment", "filename must be 1 to 255 characters")
                        .field(field("filename")),
                );
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
                return Err(
                    Invalid::new("invalid_content_type", "content_type must be `type/subtype`")
                        .field(field("content_type")),
                );
            }
            if let Some(cid) = &a.content_id
                && (cid.is_empty()
                    || cid.len() > 255
                    || !cid
                        .bytes()
                        .all(|b| (33..=126).contains(&b) && b != b'<' && b != b'>'))
            {
                return Err(Invalid::new(
                    "invalid_content_id",
                    "content_id must be 1 to 255 printable characters without <>",
                )
                .field(field("content_id")));
            }
            let cleaned: String = a.content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let content = STANDARD.decode(cleaned.as_bytes()).map_err(|_| {
                Invalid::new("invalid_base64", "attachment content is not valid base64")
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

/// What authentication looks up alongside the key, from a JSON send: the
/// sender's domain and the recipients (addresses only; no body work).
/// Bounded like the request: no more than `limits.max_recipients`, so the
/// lookup before authentication stays small.
pub fn compose_envelope(limits: &Limits, req: &SendMessage) -> Result<Envelope, Invalid> {
    let from = mailbox(&req.from, "from")?;
    let listed = req.to.items().len() + req.cc.items().len() + req.bcc.items().len();
    check_listed(limits, listed, "to")?;
    let mut set = RecipientSet::default();
    for (list, field) in [(&req.to, "to"), (&req.cc, "cc"), (&req.bcc, "bcc")] {
        for mailbox in mailboxes(list, field)? {
            set.add(mailbox.address, RecipientKind::To);
        }
    }
    set.check(limits.max_recipients, "to")?;
    Ok(Envelope {
        sender_domain: Some(from.address.domain().clone()),
        recipients: set
            .iter()
            .map(|(a, _)| a.to_string().to_ascii_lowercase())
            .collect(),
    })
}

/// The envelope of a raw send; its sender's domain is in the message,
/// read after authentication.
pub fn raw_envelope(limits: &Limits, req: &SendRawMessage) -> Result<Envelope, Invalid> {
    let items = req.rcpt_to.items();
    check_listed(limits, items.len(), "rcpt_to")?;
    let indexed = matches!(req.rcpt_to, RcptList::Many(_));
    let mut set = RecipientSet::default();
    for (i, address) in items.into_iter().enumerate() {
        let field = if indexed {
            format!("rcpt_to[{i}]")
        } else {
            "rcpt_to".into()
        };
        set.add(parse_address(address, &field)?, RecipientKind::Envelope);
    }
    set.check(limits.max_recipients, "rcpt_to")?;
    Ok(Envelope {
        sender_domain: None,
        recipients: set
            .iter()
            .map(|(a, _)| a.to_string().to_ascii_lowercase())
            .collect(),
    })
}

/// Refuses a request listing far more addresses than a message may have
/// recipients before they are parsed (duplicates allowed for, up to 4×).
fn check_listed(limits: &Limits, listed: usize, field: &str) -> Result<(), Invalid> {
    if listed > limits.max_recipients.saturating_mul(4) {
        return Err(Invalid::too_large(
            "too_many_recipients",
            format!(
                "{listed} addresses listed; a message has at most {} recipients (limits.max_recipients)",
                limits.max_recipients
            ),
        )
        .field(field));
    }
    Ok(())
}

/// Checks every field of a JSON send.
pub fn compose(limits: &Limits, req: SendMessage) -> Result<Request, Invalid> {
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
        return Err(Invalid::too_large(
            "subject_too_long",
            format!(
                "the subject is longer than {} characters (limits.max_subject_chars)",
                limits.max_subject_chars
            ),
        )
        .field("subject"));
    }
    if req.subject.chars().any(char::is_control) {
        return Err(Invalid::new(
            "invalid_subject",
            "the subject contains a control character or line break",
        )
        .field("subject"));
    }
    if req.text.is_none() && req.html.is_none() {
        return Err(Invalid::new("missing_body", "give `text`, `html` or both").field("text"));
    }
    // NUL has no place in mail text (RFC 5322 §2.3); line ends are
    // normalised to CRLF when the message is built.
    for (field, body) in [("text", &req.text), ("html", &req.html)] {
        if body.as_deref().is_some_and(|b| b.contains('\0')) {
            return Err(
                Invalid::new("invalid_body", format!("`{field}` contains a NUL character")).field(field),
            );
        }
    }
    let headers = custom_headers(&req.headers, limits)?;
    let attachments = attachments(&req.attachments, limits)?;
    let (tag, metadata) = tag_and_metadata(req.tag.as_deref(), &req.metadata, limits)?;
    Ok(Request::Compose(Compose {
        content: Composition {
            from,
            to,
            cc,
            reply_to,
            subject: req.subject,
            text: req.text,
            html: req.html,
            headers,
            attachments,
            list_unsubscribe: Vec::new(),
        },
        recipients,
        tag,
        metadata,
        unsubscribe: req.unsubscribe,
        track_opens: req.track.and_then(|t| t.opens),
        track_clicks: req.track.and_then(|t| t.clicks),
    }))
}

/// Parses one address, naming the field on failure.
fn parse_address(input: &str, field: &str) -> Result<EmailAddress, Invalid> {
    EmailAddress::parse(input.trim())
        .map_err(|reason| Invalid::new("invalid_address", format!("`{field}` {reason}")).field(field))
}

/// Checks a raw send: its envelope, size and encoding, and the headers Tern
/// needs (From, Message-ID, Date, existing DKIM signatures).
pub fn raw(limits: &Limits, req: SendRawMessage) -> Result<Request, Invalid> {
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
        check_size(limits.max_message_bytes, req.raw.len() / 4 * 3)?;
    }
    let cleaned: Vec<u8> = req.raw.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let message = STANDARD
        .decode(&cleaned)
        .map_err(|_| Invalid::new("invalid_base64", "`raw` is not valid base64").field("raw"))?;
    check_size(limits.max_message_bytes, message.len())?;
    let info = raw::inspect(&message, limits.max_header_bytes).map_err(|err| match err {
        raw::RawError::HeaderTooLong(..) => {
            Invalid::too_large("header_too_long", err.to_string()).field("raw")
        }
        other => Invalid::new("invalid_message", other.to_string()).field("raw"),
    })?;
    Ok(Request::Raw(RawSubmission {
        mail_from,
        recipients,
        message,
        info,
        tag,
        metadata,
        unsubscribe: req.unsubscribe,
    }))
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
        let twice = BTreeMap::from([
            ("References".to_string(), "<a@x.test>".to_string()),
            ("references".to_string(), "<b@y.test>".to_string()),
        ]);
        assert!(custom_headers(&twice, &limits).is_err(), "a field given twice");
    }
}
