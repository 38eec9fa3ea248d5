//! Checks on raw RFC 5322 messages submitted as they are.

use mail_parser::{Message, MessageParser};

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
    /// RFC 5321 §2.3.8: CR and LF only ever occur together. A lone CR is
    /// what SMTP smuggling uses to fake an end of DATA.
    #[error("line {0} has a bare CR (CR without LF)")]
    BareCr(usize),
    /// A message with CRLF line ends and a lone LF somewhere: no safe way to
    /// tell which was meant.
    #[error("line {0} ends in a bare LF while other lines end in CRLF")]
    MixedLineEnds(usize),
    /// RFC 5322 §2.1.1: at most 998 octets a line, without the CRLF.
    #[error("line {0} is longer than 998 octets")]
    LineTooLong(usize),
    #[error("the Message-ID field is empty or malformed")]
    BadMessageId,
    /// RFC 5322 §3.6: these fields occur at most once.
    #[error("the message has more than one `{0}` field")]
    RepeatedField(String),
}

/// Header fields RFC 5322 §3.6 allows at most once.
const SINGLE_FIELDS: &[&str] = &[
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
];

/// Longest line RFC 5322 §2.1.1 allows, without its CRLF.
pub const MAX_LINE: usize = 998;

/// Checks the line structure of a raw message: no NUL, no bare CR, LF-only
/// or CRLF-only line ends (LF-only is normalised later by [`to_crlf`]), no
/// line over [`MAX_LINE`] octets. Lines are numbered from 1.
pub fn check_lines(raw: &[u8]) -> Result<(), RawError> {
    if raw.contains(&0) {
        return Err(RawError::Nul);
    }
    let crlf = raw.windows(2).any(|w| w == b"\r\n");
    let mut line = 1;
    let mut length = 0;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\r' if raw.get(i + 1) != Some(&b'\n') => return Err(RawError::BareCr(line)),
            b'\r' => {}
            b'\n' => {
                if crlf && (i == 0 || raw[i - 1] != b'\r') {
                    return Err(RawError::MixedLineEnds(line));
                }
                line += 1;
                length = 0;
            }
            _ => {
                length += 1;
                if length > MAX_LINE {
                    return Err(RawError::LineTooLong(line));
                }
            }
        }
    }
    Ok(())
}

/// What Tern needs to know of a raw message.
#[derive(Debug)]
pub struct RawInfo {
    pub from: Mailbox,
    pub from_header: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub has_date: bool,
    /// The sender manages unsubscribes itself: Tern adds no header.
    pub has_list_unsubscribe: bool,
    /// `d=` of every DKIM-Signature already present.
    pub dkim_domains: Vec<String>,
    /// Byte ranges of the `Bcc` fields (with their folded lines), to strip
    /// before signing: the envelope carries those recipients.
    pub bcc_fields: Vec<std::ops::Range<usize>>,
}

/// A parsed header section: every field unfolded, and mail-parser's view
/// of the message for the structured ones (From, Subject, Message-ID).
struct Parsed<'a> {
    message: Message<'a>,
    fields: Vec<HeaderField>,
    /// Where each field of `fields` stands in the raw message.
    ranges: Vec<std::ops::Range<usize>>,
}

/// The 1-based line of `raw` that `offset` falls on.
fn line_of(raw: &[u8], offset: usize) -> usize {
    raw[..offset.min(raw.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Unfolds a raw field value (RFC 5322 §2.2.3: a line break followed by
/// white space is removed, the white space kept), trimmed.
fn unfold(value: &str) -> String {
    value.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// Parses the header section once, with mail-parser, and checks what
/// mail-parser tolerates: a field name that is not RFC 5322 §3.6.8 ftext,
/// a continuation line before any field, a header that is not UTF-8
/// (RFC 6532), a value over `max_value` bytes, no empty line before the
/// body.
fn parse(raw: &[u8], max_value: usize) -> Result<Parsed<'_>, RawError> {
    let message = MessageParser::default()
        .parse_headers(raw)
        .ok_or(RawError::BadHeader(1))?;
    let headers = message.headers();
    let first = headers.first().ok_or(RawError::BadHeader(1))?;
    if first.offset_field != 0 {
        return Err(RawError::BadHeader(1));
    }
    let header_end = headers.last().map_or(0, |h| h.offset_end as usize);
    // The section ends with an empty line: CRLF or LF after the last field.
    let rest = raw.get(header_end..).unwrap_or_default();
    if !(rest.starts_with(b"\r\n") || rest.starts_with(b"\n")) {
        return Err(RawError::NoBody);
    }
    if let Err(err) = std::str::from_utf8(&raw[..header_end]) {
        return Err(RawError::BadHeader(line_of(raw, err.valid_up_to())));
    }
    let mut fields = Vec::with_capacity(headers.len());
    let mut ranges = Vec::with_capacity(headers.len());
    // Fields follow each other without gaps: mail-parser skips a line
    // without a colon, which must not pass unseen into a signed message.
    let mut expected = 0;
    for header in headers {
        if header.offset_field as usize != expected {
            return Err(RawError::BadHeader(line_of(raw, expected)));
        }
        expected = header.offset_end as usize;
        let (field, start, end) = (
            header.offset_field as usize,
            header.offset_start as usize,
            header.offset_end as usize,
        );
        let name = String::from_utf8_lossy(&raw[field..start]);
        let name = name.trim_end().trim_end_matches(':');
        let valid_name = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !valid_name {
            return Err(RawError::BadHeader(line_of(raw, field)));
        }
        let value = unfold(&String::from_utf8_lossy(&raw[start..end]));
        if value.len() > max_value {
            return Err(RawError::HeaderTooLong(name.to_string(), max_value));
        }
        fields.push(HeaderField {
            name: name.to_string(),
            value,
        });
        ranges.push(field..end);
    }
    Ok(Parsed {
        message,
        fields,
        ranges,
    })
}

/// The header section as unfolded fields, in order. Accepts CRLF or LF.
pub fn header_fields(raw: &[u8], max_value: usize) -> Result<Vec<HeaderField>, RawError> {
    parse(raw, max_value).map(|parsed| parsed.fields)
}

/// Inspects a raw message; `max_header` bounds each header value.
pub fn inspect(raw: &[u8], max_header: usize) -> Result<RawInfo, RawError> {
    check_lines(raw)?;
    let Parsed {
        message,
        fields,
        ranges,
    } = parse(raw, max_header)?;
    // Two From fields (one shown, one signed for) and the like: refused,
    // as RFC 5322 §3.6 allows one of each.
    for single in SINGLE_FIELDS {
        if fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(single))
            .count()
            > 1
        {
            return Err(RawError::RepeatedField((*single).to_string()));
        }
    }
    let find = |name: &str| fields.iter().find(|f| f.name.eq_ignore_ascii_case(name));
    let from_header = find("From")
        .map(|f| f.value.clone())
        .ok_or_else(|| RawError::BadFrom("missing".into()))?;
    let from = message
        .from()
        .and_then(|a| a.first())
        .ok_or_else(|| RawError::BadFrom("no address".into()))?;
    let from_count = message.from().map(|a| a.iter().count()).unwrap_or(0);
    if from_count != 1 {
        return Err(RawError::BadFrom("exactly one From address is required".into()));
    }
    let address = from.address().unwrap_or_default();
    let from =
        Mailbox::new(from.name(), address).map_err(|e| RawError::BadFrom(format!("`{address}` {e}")))?;
    // Only signatures a verifier can parse count (mail-auth's parser, which
    // requires v, a, d, s, h, bh and b): a broken one is no signature.
    let dkim_domains = fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("DKIM-Signature"))
        .filter_map(|f| mail_auth::dkim::Signature::parse(f.value.as_bytes()).ok())
        .map(|signature| signature.d.to_ascii_lowercase())
        .collect();
    Ok(RawInfo {
        from,
        from_header,
        // Stored as text: a control character (an encoded NUL) is a space.
        subject: message
            .subject()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        message_id: match (message.message_id(), find("Message-ID")) {
            (Some(id), _) if !id.is_empty() => Some(id.to_string()),
            // Present but unusable: Tern would add a second one.
            (_, Some(_)) => return Err(RawError::BadMessageId),
            (_, None) => None,
        },
        has_date: find("Date").is_some(),
        has_list_unsubscribe: find("List-Unsubscribe").is_some(),
        dkim_domains,
        bcc_fields: fields
            .iter()
            .zip(ranges)
            .filter(|(f, _)| f.name.eq_ignore_ascii_case("Bcc"))
            .map(|(_, range)| range)
            .collect(),
    })
}

/// The message without the byte ranges given (sorted, not overlapping).
pub fn without(raw: &[u8], ranges: &[std::ops::Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    for range in ranges {
        out.extend_from_slice(&raw[at..range.start.max(at)]);
        at = range.end.max(at);
    }
    out.extend_from_slice(&raw[at.min(raw.len())..]);
    out
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

    const MSG: &[u8] = b"From: Ann <ann@example.com>\r\nSubject: Hi\r\n there\r\nDKIM-Signature: v=1; a=rsa-sha256; d=Example.com; s=x; h=From; bh=eA==; b=eQ==\r\n\r\nBody\r\n";

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
        assert_eq!(
            inspect(b" folded: x\r\nFrom: a@b.com\r\n\r\nb", 100).unwrap_err(),
            RawError::BadHeader(1)
        );
        assert_eq!(
            inspect(b"From: a@b.com\r\nBad Name: y\r\n\r\nb", 100).unwrap_err(),
            RawError::BadHeader(2)
        );
        assert_eq!(
            inspect(b"From: a@b.com\r\nX-A: \xff\r\n\r\nb", 100).unwrap_err(),
            RawError::BadHeader(2)
        );
        assert_eq!(
            inspect(b"From: a@b.com\r\nno colon here\r\nX-A: 1\r\n\r\nb", 100).unwrap_err(),
            RawError::BadHeader(2)
        );
        for empty in [&b"Message-ID:\r\n"[..], b"Message-ID: <>\r\n"] {
            let raw = [b"From: a@b.com\r\n".as_slice(), empty, b"\r\nb"].concat();
            assert_eq!(inspect(&raw, 100).unwrap_err(), RawError::BadMessageId);
        }
    }

    #[test]
    fn line_structure_is_checked() {
        assert_eq!(check_lines(b"a\r\nb\r\n"), Ok(()));
        assert_eq!(check_lines(b"a\nb\n"), Ok(()));
        assert_eq!(check_lines(b"a\r\nb\rc\r\n"), Err(RawError::BareCr(2)));
        assert_eq!(check_lines(b"a\r\nb\nc\r\n"), Err(RawError::MixedLineEnds(2)));
        assert_eq!(check_lines(b"a\0"), Err(RawError::Nul));
        let long = [b"a\r\n".as_slice(), &[b'x'; 999], b"\r\n"].concat();
        assert_eq!(check_lines(&long), Err(RawError::LineTooLong(2)));
        let fits = [&[b'x'; 998][..], b"\r\n"].concat();
        assert_eq!(check_lines(&fits), Ok(()));
    }

    #[test]
    fn single_fields_occur_once() {
        let two_froms = b"From: ceo@bank.test\r\nFrom: a@shop.test\r\n\r\nb";
        assert_eq!(
            inspect(two_froms, 1000).unwrap_err(),
            RawError::RepeatedField("From".into())
        );
        let two_subjects = b"From: a@shop.test\r\nsubject: a\r\nSubject: b\r\n\r\nb";
        assert!(matches!(
            inspect(two_subjects, 1000),
            Err(RawError::RepeatedField(_))
        ));
        let two_received = b"Received: a\r\nReceived: b\r\nFrom: a@shop.test\r\n\r\nb";
        assert!(inspect(two_received, 1000).is_ok());
    }

    #[test]
    fn bcc_fields_are_found_and_removed_whole() {
        let raw =
            b"From: a@shop.test\r\nBcc: secret@x.test,\r\n other@x.test\r\nTo: b@x.test\r\n\r\nbody\r\n";
        let info = inspect(raw, 1000).unwrap();
        let stripped = without(raw, &info.bcc_fields);
        assert_eq!(
            stripped,
            b"From: a@shop.test\r\nTo: b@x.test\r\n\r\nbody\r\n".to_vec()
        );
    }

    #[test]
    fn fields_are_unfolded_in_order_with_lf_or_crlf() {
        let fields = header_fields(b"From: a@b.com\nX-A: 1\n\tcont\n\nbody", 100).unwrap();
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(pairs, [("From", "a@b.com"), ("X-A", "1\tcont")]);
    }

    #[test]
    fn only_parseable_signatures_count() {
        let broken = b"DKIM-Signature: v=1; d=shop.test; s=x\r\nFrom: a@shop.test\r\n\r\nb";
        assert!(inspect(broken, 1000).unwrap().dkim_domains.is_empty());
    }

    #[test]
    fn crlf_normalisation_keeps_existing_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc".to_vec());
    }
}
