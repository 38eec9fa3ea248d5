//! Turns a validated JSON send into an RFC 5322 / MIME message.
//!
//! Structure: `multipart/mixed` (only with attachments) around
//! `multipart/alternative` (text and HTML) whose HTML part is wrapped in
//! `multipart/related` with its inline images (RFC 2387).

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;

use crate::domain::Mailbox;

/// A file attached to a message; with a `content_id` it is an inline part.
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
    pub content_id: Option<String>,
}

/// Everything a message is built from, already validated.
pub struct Composition {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
}

fn address(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.name.as_deref(), m.address.to_string())
}

fn address_list(list: &[Mailbox]) -> Address<'_> {
    Address::new_list(list.iter().map(address).collect())
}

/// Serialises the message (unsigned). `message_id` is without angle
/// brackets; `date` is in seconds since the Unix epoch.
pub fn build(c: &Composition, message_id: &str, date: i64) -> Vec<u8> {
    let mut builder = MessageBuilder::new()
        .from(address(&c.from))
        .subject(Text::new(c.subject.as_str()))
        .message_id(MessageId::new(message_id))
        .date(Date::new(date));
    if !c.to.is_empty() {
        builder = builder.to(address_list(&c.to));
    }
    if !c.cc.is_empty() {
        builder = builder.cc(address_list(&c.cc));
    }
    if !c.reply_to.is_empty() {
        builder = builder.reply_to(address_list(&c.reply_to));
    }
    for (name, value) in &c.headers {
        builder = builder.header(name.as_str(), Text::new(value.as_str()));
    }
    builder.body(body(c)).write_to_vec().unwrap_or_default()
}

fn body(c: &Composition) -> MimePart<'_> {
    let text = c.text.as_deref().map(|t| MimePart::new("text/plain", t));
    let inline: Vec<MimePart<'_>> = c
        .attachments
        .iter()
        .filter_map(|a| {
            a.content_id.as_deref().map(|cid| {
                MimePart::new(a.content_type.as_str(), a.content.as_slice())
                    .inline()
                    .cid(cid)
            })
        })
        .collect();
    let html = c.html.as_deref().map(|h| {
        let part = MimePart::new("text/html", h);
        if inline.is_empty() {
            part
        } else {
            let mut parts = vec![part];
            parts.extend(inline);
            MimePart::new("multipart/related", parts)
        }
    });
    let content = match (text, html) {
        (Some(text), Some(html)) => MimePart::new("multipart/alternative", vec![text, html]),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => MimePart::new("text/plain", ""),
    };
    let files: Vec<MimePart<'_>> = c
        .attachments
        .iter()
        .filter(|a| a.content_id.is_none())
        .map(|a| {
            MimePart::new(a.content_type.as_str(), a.content.as_slice())
                .attachment(Cow::Borrowed(a.filename.as_str()))
        })
        .collect();
    if files.is_empty() {
        content
    } else {
        let mut parts = vec![content];
        parts.extend(files);
        MimePart::new("multipart/mixed", parts)
    }
}
