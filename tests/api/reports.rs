//! Bounce and complaint reports as real MTAs and mailbox providers write
//! them (fixtures under tests/fixtures/reports, each modelled on a real
//! one: see its README), read by `mail::report`.

use mail_parser::MessageParser;
use serde_json::Value;
use tern::mail::report::{self, BounceType, Report};

pub const MESSAGE_ID: &str = "0192a1b2c3d47e5f8a9b0c1d2e3f4a5b@tern.test";
pub const RECIPIENT: &str = "jane.doe@example.org";
pub const RETURN_PATH: &str = "b+aaaa@rp.tern.test";

/// A fixture with its placeholders filled and CRLF line ends.
pub fn fixture(name: &str, message_id: &str, recipient: &str, return_path: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/reports/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.replace("{{MESSAGE_ID}}", message_id)
        .replace("{{RECIPIENT}}", recipient)
        .replace("{{RETURN_PATH}}", return_path)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

#[test]
fn every_fixture_is_read_as_what_it_is() {
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/reports/expected.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(expected.len() >= 11);
    for case in expected {
        let file = case["file"].as_str().unwrap();
        let raw = fixture(file, MESSAGE_ID, RECIPIENT, RETURN_PATH);
        let message = MessageParser::default().parse(&raw[..]).unwrap();
        let found = report::read(&message);
        let kind = case["kind"].as_str().unwrap();
        match (&found, kind) {
            (Report::Delivery { delivery, .. }, "dsn" | "plain_bounce") => {
                assert_eq!(delivery.structured, kind == "dsn", "{file}");
                let first = &delivery.recipients[0];
                assert_eq!(Some(first.action.as_str()), case["action"].as_str(), "{file}");
                assert_eq!(first.status.as_deref(), case["status"].as_str(), "{file}");
                if let Some(part) = case["diagnostic_contains"].as_str() {
                    let diagnostic = first.diagnostic.as_deref().unwrap_or_default();
                    assert!(diagnostic.contains(part), "{file}: {diagnostic:?}");
                }
                assert_eq!(first.remote_mta.as_deref(), case["remote_mta"].as_str(), "{file}");
                let bounce_type = first.classify().map(|c| match c.bounce_type {
                    BounceType::Hard => "hard",
                    BounceType::Soft => "soft",
                });
                assert_eq!(bounce_type, case["bounce_type"].as_str(), "{file}");
                if case["has_recipient"] == true {
                    assert_eq!(
                        first
                            .final_recipient
                            .as_deref()
                            .map(str::to_ascii_lowercase)
                            .as_deref(),
                        Some(RECIPIENT),
                        "{file}"
                    );
                }
            }
            (Report::Feedback { feedback, original }, "feedback") => {
                assert_eq!(
                    Some(feedback.feedback_type.as_str()),
                    case["feedback_type"].as_str(),
                    "{file}"
                );
                assert_eq!(original.message_id.as_deref(), Some(MESSAGE_ID), "{file}");
                if case["has_recipient"] == true {
                    assert_eq!(feedback.original_rcpt_to, vec![RECIPIENT.to_string()], "{file}");
                }
            }
            (Report::AutoReply { original }, "auto_reply") => {
                assert_eq!(original.message_id.as_deref(), Some(MESSAGE_ID), "{file}");
            }
            (other, _) => panic!("{file}: expected {kind}, read {other:?}"),
        }
    }
}

#[test]
fn a_plain_message_is_no_report() {
    let raw = b"From: someone@example.org\r\nTo: b+x@rp.tern.test\r\nSubject: hello\r\n\r\nJust a note.\r\n";
    let message = MessageParser::default().parse(&raw[..]).unwrap();
    assert!(matches!(report::read(&message), Report::Unrecognized { .. }));
}
