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
    InboundAttachment, InboundFormat, InboundHeader, InboundMailbox, InboundParsed, InboundReceivedData,
    InboundReceivedEvent, InboundReceivedType,
};

/// The whole event, ready to store in the outbox as the text that is sent:
/// `data` completed with the message in its `format` (`raw` or `parsed`)
/// and its size.
pub fn event(
    mut data: InboundReceivedData,
    stored: &[u8],
    message: &Message<'_>,
    max_attachment: usize,
    at: DateTime<Utc>,
) -> serde_json::Result<String> {
    match data.format {
        InboundFormat::Raw => data.raw = Some(STANDARD.encode(stored)),
        InboundFormat::Parsed => data.parsed = Some(parsed(message, data.message_id, max_attachment)),
    }
    data.size = stored.len();
    let event = InboundReceivedEvent {
        kind: InboundReceivedType::Value,
        timestamp: at,
        data,
    };
    let text = serde_json::to_string(&event)?;
    // serde_json writes a NUL only as this escape; the rare payload with
    // one takes the slow way.
    if !text.contains("\\u0000") {
        return Ok(text);
    }
    let mut value = serde_json::to_value(&event)?;
    strip_nul(&mut value);
    serde_json::to_string(&value)
}

/// Removes NUL characters (decoded from `=00` or base64 parts) from every
/// string, so that a payload always casts to PostgreSQL's `jsonb`, which
/// refuses `\u0000`.
fn strip_nul(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if text.contains('\0') => text.retain(|c| c != '\0'),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nul),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(strip_nul),
        _ => {}
    }
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
        // `body_html` would make HTML of a plain-text body.
        html: message
            .html_part(0)
            .filter(|part| part.is_text_html())
            .and_then(|part| part.text_contents())
            .map(str::to_string),
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

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const SAMPLE: &[u8] = b"From: \"Ada\" <ada@sender.test>\r\nTo: a@x.test, \"B\" <b@x.test>\r\n\
        Cc: c@x.test\r\nReply-To: r@x.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
        Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@sender.test>\r\n\
        In-Reply-To: <m0@x.test>\r\nReferences: <a@x.test> <m0@x.test>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        --b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
        --b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n\
        --b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n--b2--\r\n\
        --b1\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Disposition: inline\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
        --b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";

    #[test]
    fn a_message_is_taken_apart() {
        let message = MessageParser::default().parse(SAMPLE).unwrap();
        let parsed = parsed(&message, Uuid::nil(), 4);
        assert_eq!(parsed.subject.as_deref(), Some("Grüße"));
        assert_eq!(parsed.to.len(), 2);
        assert_eq!(parsed.references, ["a@x.test", "m0@x.test"]);
        assert_eq!(parsed.text.as_deref(), Some("Hello"));
        assert_eq!(parsed.html.as_deref(), Some("<p>Hello</p>"));
        assert_eq!(parsed.attachments.len(), 2);
        let logo = &parsed.attachments[0];
        assert_eq!((logo.content_id.as_deref(), logo.inline), (Some("logo"), true));
        // 9 bytes: over the limit of 4, so linked rather than included.
        let pdf = &parsed.attachments[1];
        assert_eq!(pdf.filename.as_deref(), Some("a.pdf"));
        assert!(pdf.content.is_none());
        assert_eq!(pdf.url.as_deref(), Some(attachment_path(Uuid::nil(), 1).as_str()));
    }

    #[test]
    fn plain_text_gets_no_made_up_html_and_html_gets_its_text() {
        let plain = MessageParser::default()
            .parse(&b"Subject: plain\r\n\r\nJust <words> & text\r\n"[..])
            .unwrap();
        let parsed_plain = parsed(&plain, Uuid::nil(), 4);
        assert_eq!(parsed_plain.text.as_deref(), Some("Just <words> & text\r\n"));
        assert_eq!(parsed_plain.html, None);
        let html = MessageParser::default()
            .parse(&b"Subject: html\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n"[..])
            .unwrap();
        let parsed_html = parsed(&html, Uuid::nil(), 4);
        assert!(
            parsed_html
                .html
                .as_deref()
                .is_some_and(|h| h.contains("<b>there</b>"))
        );
        assert!(
            parsed_html
                .text
                .as_deref()
                .is_some_and(|t| t.contains("Hi there"))
        );
    }

    fn data(format: InboundFormat) -> InboundReceivedData {
        use crate::webhooks::events::{
            AuthResult, DmarcCheck, InboundChecks, InboundEnvelope, SpamVerdict, SpfCheck,
        };
        let spf = SpfCheck {
            result: AuthResult::Pass,
            domain: "sender.test".into(),
        };
        InboundReceivedData {
            message_id: Uuid::nil(),
            server_id: Uuid::nil(),
            route_id: Uuid::nil(),
            envelope: InboundEnvelope {
                mail_from: "ada@sender.test".into(),
                rcpt_to: vec!["a@x.test".into()],
                client_ip: "192.0.2.1".into(),
                helo: "sender.test".into(),
                tls: false,
            },
            checks: InboundChecks {
                spf: spf.clone(),
                spf_helo: spf,
                dkim: Vec::new(),
                dmarc: DmarcCheck {
                    result: AuthResult::None,
                    domain: String::new(),
                    policy: None,
                },
                arc: AuthResult::None,
                fcrdns: AuthResult::None,
                client_name: None,
                spam: SpamVerdict::Unknown,
                spam_score: None,
            },
            flagged: false,
            format,
            raw: None,
            parsed: None,
            size: 0,
        }
    }

    #[test]
    fn the_payload_is_the_documented_event_as_text_without_nul() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let message = MessageParser::default().parse(SAMPLE).unwrap();
        let text = event(data(InboundFormat::Parsed), SAMPLE, &message, 4, at).unwrap();
        let back: InboundReceivedEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back.data.size, SAMPLE.len());
        assert_eq!(back.data.parsed.unwrap().subject.as_deref(), Some("Grüße"));
        let raw = event(data(InboundFormat::Raw), SAMPLE, &message, 4, at).unwrap();
        let back: InboundReceivedEvent = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            back.data.raw.map(|r| STANDARD.decode(r).unwrap()).as_deref(),
            Some(SAMPLE)
        );

        // `=00` decodes to a NUL, which `jsonb` would refuse.
        let nul =
            b"Subject: a=?utf-8?q?=00?=b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx=00y\r\n";
        let message = MessageParser::default().parse(&nul[..]).unwrap();
        let text = event(data(InboundFormat::Parsed), nul, &message, 4, at).unwrap();
        assert!(!text.contains("\\u0000"), "{text}");
        let parsed = serde_json::from_str::<InboundReceivedEvent>(&text)
            .unwrap()
            .data
            .parsed
            .unwrap();
        assert_eq!(parsed.text.as_deref(), Some("xy\r\n"));
    }

    /// The payload builder on random mutations of a rich message, in every
    /// test run (fuzz/fuzz_targets/inbound_payload.rs is its cargo-fuzz
    /// target): it never panics.
    #[test]
    fn mutated_messages_never_panic() {
        let runs: u64 = std::env::var("TERN_FUZZ_PAYLOADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000);
        let seed: u64 = rand::random();
        for run in 0..runs {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(run));
            let mut bytes = SAMPLE.to_vec();
            for _ in 0..rng.random_range(1..16) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes[at] = rng.random(),
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, [b'\r', b'\n', b'=', b'"', b';', b'-'][rng.random_range(0..6)]),
                    _ => bytes.truncate(at.max(1)),
                }
            }
            if let Some(message) = MessageParser::default().parse(&bytes[..]) {
                let _ = parsed(&message, Uuid::nil(), 8);
            }
        }
    }
}
