//! The parsed-payload builder (`tern::inbound::payload`) on any bytes a
//! remote server could send as a message: it must not panic, and what it
//! makes must be the documented `inbound.received` event, as JSON that
//! PostgreSQL's `jsonb` would take (no NUL), in both formats, with every
//! attachment's content matching its size.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mail_parser::MessageParser;
use tern::inbound::payload;
use tern::webhooks::events::{InboundFormat, InboundReceivedData, InboundReceivedEvent};

/// An event's data as the SMTP server fills it before the payload.
static DATA: LazyLock<InboundReceivedData> = LazyLock::new(|| {
    let spf = serde_json::json!({"result": "pass", "domain": "sender.test"});
    serde_json::from_value(serde_json::json!({
        "message_id": uuid::Uuid::nil(),
        "server_id": uuid::Uuid::nil(),
        "route_id": uuid::Uuid::nil(),
        "envelope": {"mail_from": "a@sender.test", "rcpt_to": ["b@x.test"],
                     "client_ip": "192.0.2.1", "helo": "sender.test", "tls": false},
        "checks": {"spf": spf, "spf_helo": spf, "dkim": [],
                   "dmarc": {"result": "none", "domain": "", "policy": null},
                   "arc": "none", "fcrdns": "none", "client_name": null,
                   "spam": "unknown", "spam_score": null},
        "flagged": false, "format": "parsed", "raw": null, "parsed": null, "size": 0
    }))
    .expect("the fuzz target's event data matches the event's type")
});

/// Attachments above this size are linked, not included.
const MAX_ATTACHMENT: usize = 64;

fuzz_target!(|bytes: &[u8]| {
    let Some(message) = MessageParser::default().parse(bytes) else {
        return;
    };
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time");
    for format in [InboundFormat::Parsed, InboundFormat::Raw] {
        let mut data = DATA.clone();
        data.format = format;
        let text = payload::event(data, bytes, &message, MAX_ATTACHMENT, at).expect("the payload serializes");
        assert!(!text.contains("\\u0000"), "a NUL reached the payload");
        let event: InboundReceivedEvent =
            serde_json::from_str(&text).expect("the payload is the documented event");
        assert_eq!(event.data.size, bytes.len());
        for attachment in event.data.parsed.iter().flat_map(|p| &p.attachments) {
            match (&attachment.content, &attachment.url) {
                (Some(_), None) => assert!(attachment.size <= MAX_ATTACHMENT),
                (None, Some(_)) => assert!(attachment.size > MAX_ATTACHMENT),
                _ => panic!("an attachment has both or neither of content and url"),
            }
        }
    }
});
