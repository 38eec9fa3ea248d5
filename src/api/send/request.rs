//! The JSON bodies of `POST /v1/messages` and `POST /v1/messages/raw`, as
//! documented in the OpenAPI schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An address: `"jane@example.org"`, `"Jane Doe <jane@example.org>"`, or an
/// object with `email` and `name`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AddressInput {
    #[schema(example = "Jane Doe <jane@example.org>")]
    Text(String),
    Structured(NamedAddress),
}

/// An address with an optional display name.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedAddress {
    #[schema(example = "jane@example.org", max_length = 254)]
    pub email: String,
    #[schema(example = "Jane Doe", max_length = 256)]
    pub name: Option<String>,
}

/// One address or a list of them.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AddressList {
    // Many first: serde would otherwise read `["a", "b"]` as the struct form.
    Many(Vec<AddressInput>),
    One(AddressInput),
}

impl Default for AddressList {
    fn default() -> Self {
        AddressList::Many(Vec::new())
    }
}

impl AddressList {
    pub fn items(&self) -> Vec<&AddressInput> {
        match self {
            AddressList::One(one) => vec![one],
            AddressList::Many(many) => many.iter().collect(),
        }
    }
}

/// A file to attach; with `content_id` it is an inline part that HTML
/// refers to as `cid:<content_id>`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    /// Up to 255 bytes, no control characters.
    #[schema(
        example = "invoice.pdf",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub filename: String,
    /// Base64 (RFC 4648 §4) of the file.
    #[schema(example = "JVBERi0xLjQK", content_encoding = "base64")]
    pub content: String,
    /// Default `application/octet-stream`.
    #[schema(
        example = "application/pdf",
        max_length = 127,
        pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )]
    pub content_type: Option<String>,
    /// Printable ASCII without `<` and `>`.
    #[schema(example = "logo", min_length = 1, max_length = 255, pattern = r"^[!-;=?-~]+$")]
    pub content_id: Option<String>,
}

/// A message to build, sign and send.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "from": "Acme <hello@example.com>",
    "to": ["jane@example.org"],
    "subject": "Your receipt",
    "text": "Thanks for your order.",
    "html": "<p>Thanks for your order.</p>",
    "tag": "receipt",
    "metadata": {"order_id": "1234"}
}))]
pub struct SendMessage {
    /// The sender; its domain must be a sending domain of this server.
    pub from: AddressInput,
    #[serde(default)]
    pub to: AddressList,
    #[serde(default)]
    pub cc: AddressList,
    /// Recipients not shown in the headers.
    #[serde(default)]
    pub bcc: AddressList,
    #[serde(default)]
    pub reply_to: AddressList,
    /// Up to 998 characters (`limits.max_subject_chars`), no control
    /// characters or line breaks.
    #[serde(default)]
    #[schema(max_length = 998, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub subject: String,
    /// Plain-text body; `text`, `html` or both are required.
    #[schema(pattern = r"^[^\u0000]*$")]
    pub text: Option<String>,
    /// HTML body; `text`, `html` or both are required.
    #[schema(pattern = r"^[^\u0000]*$")]
    pub html: Option<String>,
    /// Extra headers. Headers Tern sets itself (From, To, Subject, Date,
    /// Message-ID, MIME and DKIM headers, …) are refused.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// At most 20 (`limits.max_attachments`).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub attachments: Vec<AttachmentInput>,
    /// A label to filter messages by: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub tag: Option<String>,
    /// Your own key/value data, returned with the message and its events.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Add `List-Unsubscribe` (RFC 2369: a one-click URL, RFC 8058, and a
    /// `mailto:` address) so the recipient can unsubscribe; default: the
    /// server's `list_unsubscribe`. Needs exactly one recipient (each
    /// recipient gets its own link). Not added when `headers` has one.
    pub unsubscribe: Option<bool>,
    /// Open and click tracking in the HTML part; absent fields take the
    /// server's `track_opens` / `track_clicks`. Needs exactly one recipient
    /// (each recipient gets their own pixel and links).
    pub track: Option<TrackOptions>,
}

/// What to track in one message.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackOptions {
    pub opens: Option<bool>,
    pub clicks: Option<bool>,
}

/// An RFC 5322 message as it is, with its envelope.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "mail_from": "hello@example.com",
    "rcpt_to": ["jane@example.org"],
    "raw": "RnJvbTogaGVsbG9AZXhhbXBsZS5jb20NClRvOiBqYW5lQGV4YW1wbGUub3JnDQpTdWJqZWN0OiBIaQ0KDQpIZWxsby4NCg==",
    "tag": "raw"
}))]
pub struct SendRawMessage {
    /// The envelope sender (`MAIL FROM`).
    #[schema(example = "hello@example.com", max_length = 254)]
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    #[schema(value_type = Vec<String>, example = json!(["jane@example.org"]))]
    pub rcpt_to: RcptList,
    /// Base64 of the whole message (headers and body), at most
    /// `limits.max_message_bytes` once decoded.
    #[schema(
        content_encoding = "base64",
        content_media_type = "message/rfc822",
        example = "RnJvbTogaGVsbG9AZXhhbXBsZS5jb20NClRvOiBqYW5lQGV4YW1wbGUub3JnDQpTdWJqZWN0OiBIaQ0KDQpIZWxsby4NCg=="
    )]
    pub raw: String,
    /// A label to filter messages by: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub tag: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// As for JSON sends; not added when the message has a
    /// `List-Unsubscribe` field of its own.
    pub unsubscribe: Option<bool>,
}

/// One address or a list of them (plain strings).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RcptList {
    Many(Vec<String>),
    One(String),
}

impl RcptList {
    pub fn items(&self) -> Vec<&str> {
        match self {
            RcptList::One(one) => vec![one.as_str()],
            RcptList::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}
