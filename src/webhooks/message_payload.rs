//! `message.*` payloads, built by the dispatcher from the stored event as
//! it sends a delivery (the outbox row only names the event: building the
//! JSON in the trigger, inside the worker's transaction, was a third of
//! what a webhook endpoint cost each message sent). The event, its message
//! and its recipient do not change once written, so every attempt sends
//! the same bytes. The shapes are documented by the types in `events`.
//!
//! Every field the schema lists is present, `null` when the event did not
//! record it; a missing or malformed detail falls back to the documented
//! default rather than failing the delivery.

use serde_json::{Map, Value, json};

use crate::db::webhooks::MessageEvent;

/// The envelope `{"type", "timestamp", "data"}` for `event`, as sent.
pub fn build(event: &MessageEvent) -> String {
    let detail = Detail(&event.detail);
    let mut data = Map::new();
    data.insert("message_id".into(), json!(event.message_id));
    data.insert("server_id".into(), json!(event.server_id));
    data.insert("recipient_id".into(), json!(event.recipient_id));
    data.insert("recipient".into(), json!(event.recipient));
    data.insert("tag".into(), json!(event.tag));
    data.insert("metadata".into(), event.metadata.clone());
    let kind = event.kind.as_str();
    let extra: Vec<(&str, Value)> = match kind {
        "held" => vec![("reason", json!("development_mode"))],
        "suppressed" => vec![("reason", detail.text_or("reason", "suppression_list"))],
        "sent" => detail.attempt(),
        "deferred" => with(
            detail.attempt(),
            [("next_attempt_at", detail.raw("next_attempt_at"))],
        ),
        "bounced" => with(
            detail.attempt(),
            [
                ("bounce_type", detail.text_or("bounce_type", "hard")),
                ("source", detail.text_or("source", "smtp")),
                ("category", detail.text_or("category", "other")),
                ("suppressed", detail.flag("suppressed")),
                ("report_id", detail.raw("report_id")),
                ("remote_mta", detail.raw("remote_mta")),
            ],
        ),
        "failed" => with(
            detail.attempt(),
            [("reason", detail.text_or("reason", "undeliverable"))],
        ),
        "complained" => vec![
            ("feedback_type", detail.text_or("feedback_type", "abuse")),
            ("user_agent", detail.raw("user_agent")),
            ("report_id", detail.raw("report_id")),
            ("suppressed", detail.flag("suppressed")),
        ],
        "unsubscribed" => vec![
            ("method", detail.text_or("method", "one_click")),
            ("report_id", detail.raw("report_id")),
        ],
        "opened" => detail.hit(),
        "clicked" => with(
            detail.hit(),
            [("link", detail.raw("link")), ("url", detail.raw("url"))],
        ),
        _ => Vec::new(),
    };
    data.extend(extra.into_iter().map(|(key, value)| (key.to_string(), value)));
    json!({
        "type": format!("message.{kind}"),
        "timestamp": event.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "data": data,
    })
    .to_string()
}

fn with<const N: usize>(
    mut fields: Vec<(&'static str, Value)>,
    more: [(&'static str, Value); N],
) -> Vec<(&'static str, Value)> {
    fields.extend(more);
    fields
}

/// An event's `detail`, as the worker, the bounce processor or the
/// tracker wrote it.
struct Detail<'a>(&'a Value);

impl Detail<'_> {
    /// The value as stored; `null` when absent.
    fn raw(&self, key: &str) -> Value {
        self.0.get(key).cloned().unwrap_or(Value::Null)
    }

    /// The value as text (a number as its digits), or `default`.
    fn text_or(&self, key: &str, default: &str) -> Value {
        match self.0.get(key) {
            Some(Value::String(text)) => Value::String(text.clone()),
            None | Some(Value::Null) => Value::String(default.into()),
            Some(other) => Value::String(other.to_string()),
        }
    }

    /// A boolean (`true`, or the text `"true"`); false otherwise.
    fn flag(&self, key: &str) -> Value {
        Value::Bool(match self.0.get(key) {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
            _ => false,
        })
    }

    /// A delivery attempt's fields: its number, the host and TLS, and the
    /// reply when it has a numeric code.
    fn attempt(&self) -> Vec<(&'static str, Value)> {
        let reply = if self.0.get("code").is_some_and(Value::is_number) {
            json!({
                "code": self.raw("code"),
                "enhanced_code": self.raw("enhanced_code"),
                "text": self.raw("reply"),
            })
        } else {
            Value::Null
        };
        vec![
            ("attempt", self.raw("attempt")),
            ("host", self.raw("host")),
            ("tls", self.raw("tls")),
            ("reply", reply),
        ]
    }

    /// An open's or a click's fields.
    fn hit(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("first", self.flag("first")),
            ("machine", self.flag("machine")),
            ("user_agent", self.raw("user_agent")),
            ("ip", self.raw("ip")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;

    fn event(kind: &str, detail: Value) -> MessageEvent {
        MessageEvent {
            kind: kind.into(),
            at: chrono::Utc
                .with_ymd_and_hms(2026, 12, 1, 9, 30, 5)
                .single()
                .expect("a valid time"),
            detail,
            message_id: Uuid::from_u128(1),
            server_id: Uuid::from_u128(2),
            tag: Some("welcome".into()),
            metadata: json!({"user": "42"}),
            recipient_id: Some(Uuid::from_u128(3)),
            recipient: Some("bob@example.org".into()),
        }
    }

    fn payload(kind: &str, detail: Value) -> Value {
        serde_json::from_str(&build(&event(kind, detail))).expect("the payload is JSON")
    }

    #[test]
    fn the_envelope_and_the_message_fields() {
        let sent = payload(
            "sent",
            json!({"attempt": 2, "host": "mx.example.org", "tls": true, "code": 250,
                   "enhanced_code": "2.0.0", "reply": "OK queued"}),
        );
        assert_eq!(sent["type"], "message.sent");
        assert_eq!(sent["timestamp"], "2026-12-01T09:30:05.000000Z");
        assert_eq!(
            sent["data"],
            json!({
                "message_id": Uuid::from_u128(1), "server_id": Uuid::from_u128(2),
                "recipient_id": Uuid::from_u128(3), "recipient": "bob@example.org",
                "tag": "welcome", "metadata": {"user": "42"},
                "attempt": 2, "host": "mx.example.org", "tls": true,
                "reply": {"code": 250, "enhanced_code": "2.0.0", "text": "OK queued"},
            })
        );
    }

    #[test]
    fn absent_details_are_null_or_their_default() {
        let failed = payload("failed", json!({"reason": "retries_exhausted"}));
        assert_eq!(failed["data"]["reply"], Value::Null);
        assert_eq!(failed["data"]["attempt"], Value::Null);
        assert_eq!(failed["data"]["reason"], "retries_exhausted");
        assert_eq!(payload("failed", json!({}))["data"]["reason"], "undeliverable");

        let bounced = payload("bounced", json!({"code": 550, "suppressed": true}));
        assert_eq!(bounced["data"]["bounce_type"], "hard");
        assert_eq!(bounced["data"]["source"], "smtp");
        assert_eq!(bounced["data"]["category"], "other");
        assert_eq!(bounced["data"]["suppressed"], true);
        assert_eq!(bounced["data"]["reply"]["code"], 550);
        assert_eq!(bounced["data"]["reply"]["text"], Value::Null);
        assert_eq!(bounced["data"]["remote_mta"], Value::Null);

        let deferred = payload("deferred", json!({"next_attempt_at": "2026-12-01T10:00:00Z"}));
        assert_eq!(deferred["data"]["next_attempt_at"], "2026-12-01T10:00:00Z");

        assert_eq!(payload("held", json!({}))["data"]["reason"], "development_mode");
        assert_eq!(
            payload("suppressed", json!({}))["data"]["reason"],
            "suppression_list"
        );
        assert_eq!(payload("complained", json!({}))["data"]["feedback_type"], "abuse");
        assert_eq!(payload("unsubscribed", json!({}))["data"]["method"], "one_click");
    }

    #[test]
    fn opens_and_clicks() {
        let opened = payload("opened", json!({"first": true, "user_agent": "Mail"}));
        assert_eq!(opened["data"]["first"], true);
        assert_eq!(opened["data"]["machine"], false);
        assert_eq!(opened["data"]["ip"], Value::Null);
        let clicked = payload("clicked", json!({"link": 0, "url": "https://shop.example.com/"}));
        assert_eq!(clicked["data"]["link"], 0);
        assert_eq!(clicked["data"]["url"], "https://shop.example.com/");
        assert_eq!(clicked["data"]["first"], false);
    }

    #[test]
    fn a_malformed_detail_falls_back_instead_of_failing() {
        let bounced = payload(
            "bounced",
            json!({"suppressed": "maybe", "code": "550", "category": 7}),
        );
        assert_eq!(bounced["data"]["suppressed"], false);
        assert_eq!(bounced["data"]["reply"], Value::Null);
        assert_eq!(bounced["data"]["category"], "7");
        assert_eq!(payload("sent", json!(null))["data"]["host"], Value::Null);
    }
}
