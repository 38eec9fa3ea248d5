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
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::url::URL;
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
    /// `List-Unsubscribe` (RFC 2369) URIs, with `List-Unsubscribe-Post`
    /// (RFC 8058 one-click) when the first is `https:`.
    pub list_unsubscribe: Vec<String>,
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
    if !c.list_unsubscribe.is_empty() {
        builder = builder.header(
            "List-Unsubscribe",
            URL::new_list(c.list_unsubscribe.iter().map(String::as_str)),
        );
        if c.list_unsubscribe[0].starts_with("https:") {
            builder = builder.header("List-Unsubscribe-Post", Raw::new("List-Unsubscribe=One-Click"));
        }
    }
    // Every line end in the text parts becomes CRLF: a bare CR would reach
    // the wire as it is in a 7bit part, and receivers that take it for a
    // line end could be fooled into an early end of DATA (SMTP smuggling).
    let text = c.text.as_deref().map(crlf_lines);
    let html = c.html.as_deref().map(crlf_lines);
    builder
        .body(body(c, text.as_deref(), html.as_deref()))
        .write_to_vec()
        .unwrap_or_default()
}

/// `text` with every line end (CRLF, a bare CR or a bare LF) as CRLF.
pub fn crlf_lines(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let clean = bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        _ => true,
    });
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

fn body<'x>(c: &'x Composition, text: Option<&'x str>, html: Option<&'x str>) -> MimePart<'x> {
    let text = text.map(|t| MimePart::new("text/plain", t));
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
    let html = html.map(|h| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mailbox;

    fn composition(text: &str, html: Option<&str>) -> Composition {
        Composition {
            from: Mailbox::parse("a@shop.test").unwrap(),
            to: vec![Mailbox::parse("b@example.org").unwrap()],
            cc: Vec::new(),
            reply_to: Vec::new(),
            subject: "s".into(),
            text: Some(text.into()),
            html: html.map(str::to_string),
            headers: Vec::new(),
            list_unsubscribe: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// Every CR and LF of the built message is part of a CRLF.
    fn only_crlf(message: &[u8]) -> bool {
        message.iter().enumerate().all(|(i, &b)| match b {
            b'\r' => message.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && message[i - 1] == b'\r',
            _ => true,
        })
    }

    #[test]
    fn smuggling_line_ends_become_crlf() {
        let hostile = "line1\r.\r\nMAIL FROM:<x@y>\rline2\n.\nend";
        let message = build(&composition(hostile, Some("<p>a\rb</p>\n")), "id@x.test", 0);
        assert!(only_crlf(&message), "{}", String::from_utf8_lossy(&message));
        assert_eq!(crlf_lines("a\r\nb"), Cow::Borrowed("a\r\nb"));
        assert_eq!(crlf_lines("a\rb\nc\r\n"), "a\r\nb\r\nc\r\n");
    }

    #[test]
    fn json_sends_are_built_seven_bit_clean() {
        let mut c = composition("Grüße, こんにちは 👋", Some("<p>Привет</p>"));
        c.subject = "Ünïcödé 🎉".into();
        c.from = Mailbox::parse("Zoë <a@shop.test>").unwrap();
        let message = build(&c, "id@x.test", 0);
        assert!(message.is_ascii(), "{}", String::from_utf8_lossy(&message));
    }

    #[test]
    fn long_lines_are_encoded_to_fit_rfc_5322() {
        let long = "x".repeat(5000);
        let message = build(&composition(&long, None), "id@x.test", 0);
        let longest = message.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
        assert!(longest <= 1000, "a line of {longest} octets");
    }
}
