//! The `inbound.received` payload of a stored message, in the route's
//! format: `raw` (the message, base64) or `parsed` (taken apart with
//! mail-parser). Attachments over the size limit are left out, with the
//! API path that serves them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, Message, MessagePart, MimeHeaders};
use uuid::Uuid;

use crate::webhooks::events::{
    InboundAttachment, InboundChecks, InboundEnvelope, InboundFormat, InboundHeader, InboundMailbox,
    InboundParsed, InboundReceivedData, InboundReceivedEvent, InboundReceivedType,
};

/// What the payload is about, beside the message itself.
pub struct About {
    pub message_id: Uuid,
    pub server_id: Uuid,
    pub route_id: Uuid,
    pub envelope: InboundEnvelope,
    pub checks: InboundChecks,
    pub flagged: bool,
}

/// The whole event, ready to store in the outbox.
pub fn event(
    about: About,
    format: InboundFormat,
    stored: &[u8],
    message: &Message<'_>,
    max_attachment: usize,
    at: DateTime<Utc>,
) -> serde_json::Result<serde_json::Value> {
    let (raw, parsed) = match format {
        InboundFormat::Raw => (Some(STANDARD.encode(stored)), None),
        InboundFormat::Parsed => (None, Some(parsed(message, about.message_id, max_attachment))),
    };
    serde_json::to_value(InboundReceivedEvent {
        kind: InboundReceivedType::Value,
        timestamp: at,
        data: InboundReceivedData {
            message_id: about.message_id,
            server_id: about.server_id,
            route_id: about.route_id,
            envelope: about.envelope,
            checks: about.checks,
            flagged: about.flagged,
            format,
            raw,
            parsed,
            size: stored.len(),
        },
    })
}

/// The API path of one attachment of a stored message.
pub fn attachment_path(message_id: Uuid, index: usize) -> String {
    format!("/v1/messages/{message_id}/attachments/{index}")
}

/// The parsed form of a message.
pub fn parsed(message: &Message<'_>, message_id: Uuid, max_attachment: usize) -> InboundParsed {
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| {
            let contents = part.contents();
            let fits = contents.len() <= max_attachment;
            InboundAttachment {
                index,
                filename: part.attachment_name().map(str::to_string),
                content_type: content_type(part),
                content_id: part
                    .content_id()
                    .map(|id| id.trim_matches(['<', '>']).to_string()),
                inline: part
                    .content_disposition()
                    .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline")),
                size: contents.len(),
                content: fits.then(|| STANDARD.encode(contents)),
                url: (!fits).then(|| attachment_path(message_id, index)),
            }
        })
        .collect();
    InboundParsed {
        from: message.from().and_then(|a| mailboxes(a).into_iter().next()),
        to: message.to().map(mailboxes).unwrap_or_default(),
        cc: message.cc().map(mailboxes).unwrap_or_default(),
        reply_to: message.reply_to().map(mailboxes).unwrap_or_default(),
        subject: message.subject().map(str::to_string),
        date: message
            .date()
            .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        message_id: message.message_id().map(str::to_string),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        text: message.body_text(0).map(|t| t.into_owned()),
        html: message.body_html(0).map(|h| h.into_owned()),
        attachments,
        headers: message
            .headers_raw()
            .map(|(name, value)| InboundHeader {
                name: name.to_string(),
                value: unfold(value),
            })
            .collect(),
    }
}

/// A part's media type (`type/subtype`), `application/octet-stream` when
/// it has none or one that is not a valid header value.
pub fn content_type(part: &MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .filter(|ct| ct.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

fn mailboxes(address: &Address<'_>) -> Vec<InboundMailbox> {
    address
        .iter()
        .map(|a| InboundMailbox {
            name: a.name().map(str::to_string),
            address: a.address().map(str::to_string),
        })
        .collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// A raw header value without its folding and surrounding space.
fn unfold(value: &str) -> String {
    value.replace("\r\n", "").replace('\n', "").trim().to_string()
}
