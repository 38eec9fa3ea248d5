//! Checks on raw RFC 5322 messages submitted as they are.

use mail_parser::MessageParser;

use crate::domain::Mailbox;

/// A header field, unfolded (RFC 5322 §2.2.3), value without leading space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

/// Why a raw message is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RawError {
    #[error("the message has no header/body separator (empty line)")]
    NoBody,
    #[error("header line {0} is malformed")]
    BadHeader(usize),
    #[error("header `{0}` is longer than {1} bytes")]
    HeaderTooLong(String, usize),
    #[error("the message has no valid From address: {0}")]
    BadFrom(String),
    #[error("the message contains NUL bytes")]
    Nul,
}

/// What Tern needs to know of a raw message.
#[derive(Debug)]
pub struct RawInfo {
    pub from: Mailbox,
    pub from_header: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub has_date: bool,
    /// `d=` of every DKIM-Signature already present.
    pub dkim_domains: Vec<String>,
}

/// Splits the header section into unfolded fields. Accepts CRLF or LF.
pub fn header_fields(raw: &[u8], max_value: usize) -> Result<Vec<HeaderField>, RawError> {
    let mut fields: Vec<HeaderField> = Vec::new();
    let mut terminated = false;
    for (n, line) in raw.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            terminated = true;
            break;
        }
        let text = std::str::from_utf8(line).map_err(|_| RawError::BadHeader(n + 1))?;
        if text.starts_with([' ', '\t']) {
            let last = fields.last_mut().ok_or(RawError::BadHeader(n + 1))?;
            last.value.push(' ');
            last.value.push_str(text.trim());
        } else {
            let (name, value) = text.split_once(':').ok_or(RawError::BadHeader(n + 1))?;
            let valid_name = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
            if !valid_name {
                return Err(RawError::BadHeader(n + 1));
            }
            fields.push(HeaderField {
                name: name.to_string(),
                value: value.trim().to_string(),
            });
        }
        if let Some(last) = fields.last()
            && last.value.len() > max_value
        {
            return Err(RawError::HeaderTooLong(last.name.clone(), max_value));
        }
    }
    if terminated {
        Ok(fields)
    } else {
        Err(RawError::NoBody)
    }
}

/// Inspects a raw message; `max_header` bounds each header value.
pub fn inspect(raw: &[u8], max_header: usize) -> Result<RawInfo, RawError> {
    if raw.contains(&0) {
        return Err(RawError::Nul);
    }
    let fields = header_fields(raw, max_header)?;
    let find = |name: &str| fields.iter().find(|f| f.name.eq_ignore_ascii_case(name));
    let from_header = find("From")
        .map(|f| f.value.clone())
        .ok_or_else(|| RawError::BadFrom("missing".into()))?;
    let parsed = MessageParser::default()
        .parse_headers(raw)
        .ok_or_else(|| RawError::BadFrom("unparseable".into()))?;
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .ok_or_else(|| RawError::BadFrom("no address".into()))?;
    let from_count = parsed.from().map(|a| a.iter().count()).unwrap_or(0);
    if from_count != 1 {
        return Err(RawError::BadFrom("exactly one From address is required".into()));
    }
    let address = from.address().unwrap_or_default();
    let from =
        Mailbox::new(from.name(), address).map_err(|e| RawError::BadFrom(format!("`{address}` {e}")))?;
    let dkim_domains = fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("DKIM-Signature"))
        .filter_map(|f| {
            f.value
                .split(';')
                .filter_map(|tag| tag.trim().split_once('='))
                .find(|(k, _)| k.trim() == "d")
                .map(|(_, v)| v.trim().to_ascii_lowercase())
        })
        .collect();
    Ok(RawInfo {
        from,
        from_header,
        subject: parsed.subject().unwrap_or_default().to_string(),
        message_id: parsed.message_id().map(str::to_string),
        has_date: find("Date").is_some(),
        dkim_domains,
    })
}

/// Converts bare LF line ends to CRLF (SMTP and DKIM need CRLF).
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Ann <ann@example.com>\r\nSubject: Hi\r\n there\r\nDKIM-Signature: v=1; d=Example.com; s=x\r\n\r\nBody\r\n";

    #[test]
    fn reads_from_subject_and_signatures() {
        let info = inspect(MSG, 1000).unwrap();
        assert_eq!(info.from.address.to_string(), "ann@example.com");
        assert_eq!(info.subject, "Hi there");
        assert_eq!(info.dkim_domains, vec!["example.com".to_string()]);
        assert!(!info.has_date);
        assert!(info.message_id.is_none());
    }

    #[test]
    fn refuses_broken_messages() {
        assert_eq!(
            inspect(b"From: a@b.com\r\nSubject: x", 100).unwrap_err(),
            RawError::NoBody
        );
        assert!(matches!(
            inspect(b"Subject: x\r\n\r\nb", 100),
            Err(RawError::BadFrom(_))
        ));
        assert!(matches!(
            inspect(b"bad header\r\n\r\nb", 100),
            Err(RawError::BadHeader(1))
        ));
        assert!(matches!(inspect(MSG, 5), Err(RawError::HeaderTooLong(..))));
    }

    #[test]
    fn crlf_normalisation_keeps_existing_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc".to_vec());
    }
}
