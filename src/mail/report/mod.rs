//! What a message sent to a return path is: a delivery status
//! notification (RFC 3464, or a plain-text bounce of an MTA that sends
//! none), a feedback report (RFC 5965 ARF), an auto-reply, or something
//! else. MIME is mail-parser's; the report fields are read here.

pub mod fields;
pub mod status;

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use fields::Block;
pub use status::{BounceCategory, BounceType, Classified};

/// What one recipient's block of a DSN says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DsnRecipient {
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded` (lower case).
    pub action: String,
    /// The enhanced status code (RFC 3463).
    pub status: Option<String>,
    /// The remote server's reply, when the DSN quotes it.
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
}

impl DsnRecipient {
    /// The reply code in the diagnostic (`550` of `smtp; 550 5.1.1 ...`).
    pub fn reply_code(&self) -> Option<u16> {
        self.diagnostic.as_deref().and_then(status::find_reply_code)
    }

    /// Whether this is a bounce at all, and how bad: `failed` and `delayed`
    /// are; `delivered`, `relayed` and `expanded` are not.
    pub fn classify(&self) -> Option<Classified> {
        let code = self.reply_code();
        match self.action.as_str() {
            "failed" => status::classify(self.status.as_deref(), code).or(Some(Classified {
                bounce_type: BounceType::Hard,
                category: BounceCategory::Other,
                suppress: true,
            })),
            "delayed" => Some(Classified {
                bounce_type: BounceType::Soft,
                category: status::classify(self.status.as_deref(), code)
                    .map_or(BounceCategory::Other, |c| c.category),
                suppress: false,
            }),
            _ => None,
        }
    }
}

/// A bounce: an RFC 3464 report, or what a plain-text bounce says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// `false` for a plain-text bounce read by heuristics.
    pub structured: bool,
    pub reporting_mta: Option<String>,
    pub recipients: Vec<DsnRecipient>,
}

/// A feedback report (RFC 5965).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// `abuse`, `fraud`, `not-spam`, `virus`, `other`... (lower case).
    pub feedback_type: String,
    pub user_agent: Option<String>,
    pub original_rcpt_to: Vec<String>,
    pub original_mail_from: Option<String>,
    pub source_ip: Option<String>,
    pub reported_domain: Option<String>,
}

/// What a report quotes of the original message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Original {
    /// Its `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// Its `Return-Path` (where a receiver recorded the envelope sender).
    pub return_path: Option<String>,
    /// Its `To` and `Cc` addresses.
    pub recipients: Vec<String>,
}

/// What a message to a return path is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    Delivery {
        #[serde(flatten)]
        delivery: Delivery,
        original: Original,
    },
    Feedback {
        #[serde(flatten)]
        feedback: Feedback,
        original: Original,
    },
    /// An out-of-office or other automatic answer.
    AutoReply { original: Original },
    /// Nothing Tern recognizes.
    Unrecognized { original: Original },
}

impl Report {
    pub fn original(&self) -> &Original {
        match self {
            Report::Delivery { original, .. }
            | Report::Feedback { original, .. }
            | Report::AutoReply { original }
            | Report::Unrecognized { original } => original,
        }
    }
}

/// Reads a received message as a report.
pub fn read(message: &Message<'_>) -> Report {
    let mut delivery_status = None;
    let mut feedback_report = None;
    let mut original = Original::default();
    for part in &message.parts {
        let Some(content_type) = part.content_type() else {
            continue;
        };
        let (ctype, subtype) = (
            content_type.ctype().to_ascii_lowercase(),
            content_type.subtype().unwrap_or_default().to_ascii_lowercase(),
        );
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") if delivery_status.is_none() => {
                delivery_status = Some(fields::blocks(&text_of(part.contents())));
            }
            ("message", "feedback-report") if feedback_report.is_none() => {
                feedback_report = Some(fields::blocks(&text_of(part.contents())));
            }
            ("message", "rfc822" | "global") if original == Original::default() => {
                if let PartType::Message(nested) = &part.body {
                    original = quoted(nested);
                }
            }
            ("text" | "message", "rfc822-headers" | "global-headers") if original == Original::default() => {
                if let Some(headers) = MessageParser::default().parse_headers(part.contents()) {
                    original = quoted(&headers);
                }
            }
            _ => {}
        }
    }
    if let Some(blocks) = feedback_report
        && let Some(feedback) = feedback(&blocks)
    {
        return Report::Feedback { feedback, original };
    }
    if let Some(blocks) = delivery_status {
        let delivery = dsn(&blocks);
        if !delivery.recipients.is_empty() {
            return Report::Delivery { delivery, original };
        }
    }
    if is_auto_reply(message) {
        if original.message_id.is_none() {
            original.message_id = first_id(message.in_reply_to());
        }
        return Report::AutoReply { original };
    }
    if let Some(delivery) = plain_bounce(message) {
        return Report::Delivery { delivery, original };
    }
    Report::Unrecognized { original }
}

/// The per-message block, then one block per recipient.
fn dsn(blocks: &[Block]) -> Delivery {
    let reporting_mta = blocks
        .first()
        .and_then(|b| b.get("Reporting-MTA"))
        .and_then(fields::host);
    let recipients = blocks
        .iter()
        .filter(|b| b.get("Action").is_some())
        .map(|b| DsnRecipient {
            final_recipient: b.get("Final-Recipient").and_then(fields::address),
            original_recipient: b.get("Original-Recipient").and_then(fields::address),
            action: b
                .get("Action")
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            status: b
                .get("Status")
                .and_then(|s| s.split_whitespace().next())
                .and_then(status::enhanced)
                .map(str::to_string),
            diagnostic: b.get("Diagnostic-Code").map(fields::diagnostic),
            remote_mta: b.get("Remote-MTA").and_then(fields::host),
        })
        .collect();
    Delivery {
        structured: true,
        reporting_mta,
        recipients,
    }
}

fn feedback(blocks: &[Block]) -> Option<Feedback> {
    let block = blocks.first()?;
    let feedback_type = block.get("Feedback-Type")?.trim().to_ascii_lowercase();
    let address = |v: &str| fields::address(v).map(|a| a.to_string());
    Some(Feedback {
        feedback_type,
        user_agent: block.get("User-Agent").map(str::to_string),
        original_rcpt_to: block
            .all("Original-Rcpt-To")
            .filter_map(address)
            .take(100)
            .collect(),
        original_mail_from: block.get("Original-Mail-From").and_then(address),
        source_ip: block.get("Source-IP").map(|v| v.trim().to_string()),
        reported_domain: block
            .get("Reported-Domain")
            .map(|v| v.trim().to_ascii_lowercase()),
    })
}

/// RFC 3834's `Auto-Submitted: auto-replied`, and the fields and subjects
/// of vacation programs that do not set it.
fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if header("Auto-Submitted").is_some_and(|v| v.starts_with("auto-replied")) {
        return true;
    }
    if header("X-Autoreply").is_some() || header("X-Autorespond").is_some() {
        return true;
    }
    if header("Precedence").is_some_and(|v| v == "auto_reply") {
        return true;
    }
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    [
        "automatic reply",
        "auto:",
        "autoreply",
        "out of office",
        "out of the office",
    ]
    .iter()
    .any(|p| subject.starts_with(p))
}

/// Subjects of bounces that carry no delivery-status part (qmail, Yahoo,
/// older Exchange).
const BOUNCE_SUBJECTS: [&str; 8] = [
    "failure notice",
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
    "delivery failure",
    "mail delivery system",
];

/// A bounce written as prose: recognized by a null-sender origin
/// (`MAILER-DAEMON`, `postmaster`) or a bounce subject, read for the
/// address and codes it names.
fn plain_bounce(message: &Message<'_>) -> Option<Delivery> {
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let daemon = from.starts_with("mailer-daemon@") || from.starts_with("postmaster@");
    if !daemon && !BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s)) {
        return None;
    }
    let text = message.body_text(0)?.replace('\0', "");
    // Only the explanation: not the returned copy after it.
    let text: String = text
        .lines()
        .take_while(|l| !l.starts_with("--- Below this line") && !l.starts_with("--- Original message"))
        .take(200)
        .collect::<Vec<_>>()
        .join("\n");
    let lower = text.to_ascii_lowercase();
    let status = status::find_enhanced(&text);
    let code = status::find_reply_code(&text);
    let permanent = lower.contains("permanent error")
        || lower.contains("permanent failure")
        || lower.contains("does not exist")
        || lower.contains("doesn't have")
        || lower.contains("unknown user")
        || lower.contains("user unknown")
        || lower.contains("no mailbox");
    let temporary =
        lower.contains("temporary") || lower.contains("will be retried") || lower.contains("delayed");
    let class = status
        .as_deref()
        .and_then(|s| s.chars().next())
        .or_else(|| code.and_then(|c| char::from_digit(u32::from(c / 100), 10)));
    let action = match class {
        Some('5') => "failed",
        Some('4') => "delayed",
        _ if permanent => "failed",
        _ if temporary => "delayed",
        _ => return None,
    };
    let final_recipient = text
        .split(|c: char| c.is_whitespace() || "<>:;,()\"'".contains(c))
        .find(|w| {
            w.contains('@')
                && !w.to_ascii_lowercase().starts_with("mailer-daemon@")
                && !w.to_ascii_lowercase().starts_with("postmaster@")
        })
        .map(|w| w.trim_end_matches('.').to_string());
    let diagnostic = text
        .lines()
        .map(str::trim)
        .find(|l| code.is_some_and(|c| l.contains(&c.to_string())))
        .map(|l| l.chars().take(1000).collect());
    Some(Delivery {
        structured: false,
        reporting_mta: None,
        recipients: vec![DsnRecipient {
            final_recipient,
            original_recipient: None,
            action: action.to_string(),
            status,
            diagnostic,
            remote_mta: None,
        }],
    })
}

/// The ids and addresses a quoted original (or its headers) carries.
fn quoted(message: &Message<'_>) -> Original {
    let mut recipients: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .take(100)
        .map(str::to_string)
        .collect();
    recipients.dedup();
    let recipients = recipients.into_iter().map(|r| r.replace('\0', "")).collect();
    Original {
        message_id: message.message_id().map(|id| id.replace('\0', "")),
        return_path: first_id(message.return_path())
            .map(|a| {
                a.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .replace('\0', "")
            })
            .filter(|a| !a.is_empty()),
        recipients,
    }
}

/// A part's text, without NUL characters (decoded content may hold them;
/// PostgreSQL's text and jsonb refuse them).
fn text_of(contents: &[u8]) -> String {
    String::from_utf8_lossy(contents).replace('\0', "")
}

fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(id) => Some(id.to_string()),
        HeaderValue::TextList(ids) => ids.first().map(|id| id.to_string()),
        _ => None,
    }
}
