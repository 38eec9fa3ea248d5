//! What Tern does to the header of a message it receives: removes
//! `Authentication-Results` fields that claim to be its own (RFC 8601 §5:
//! a receiver must not trust them) and prepends its trace fields.

use std::ops::Range;

use mail_parser::Message;

use super::raw::without;

/// The byte ranges of the `Authentication-Results` fields of `message`
/// (parsed from `raw`) whose authserv-id is `authserv_id`.
fn forged(message: &Message<'_>, raw: &[u8], authserv_id: &str) -> Vec<Range<usize>> {
    message
        .headers()
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case("Authentication-Results"))
        .filter_map(|h| {
            let value = raw.get(h.offset_start as usize..h.offset_end as usize)?;
            let id_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
            (authserv_id_of(&value[..id_end]).eq_ignore_ascii_case(authserv_id.as_bytes()))
                .then_some(h.offset_field as usize..h.offset_end as usize)
        })
        .collect()
}

/// The authserv-id of the part of a field's value before its first `;`:
/// without comments (`(...)`), quotes, and a version number after it.
fn authserv_id_of(head: &[u8]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(head.len());
    let mut depth = 0usize;
    for &b in head {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'"' => {}
            _ if depth == 0 => plain.push(b),
            _ => {}
        }
    }
    plain
        .split(|b| b.is_ascii_whitespace())
        .find(|p| !p.is_empty())
        .unwrap_or_default()
        .to_vec()
}

/// The message as stored: `prepend` (Tern's trace fields), then `raw`
/// without the fields that claim to be `authserv_id`'s results.
pub fn with_trace(raw: &[u8], message: &Message<'_>, authserv_id: &str, prepend: &str) -> Vec<u8> {
    let mut stored = Vec::with_capacity(raw.len() + prepend.len());
    stored.extend_from_slice(prepend.as_bytes());
    stored.extend_from_slice(&without(raw, &forged(message, raw, authserv_id)));
    stored
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    #[test]
    fn forged_results_go_and_others_stay() {
        let raw = b"Authentication-Results: tern.test; dkim=pass\r\n\
            From: a@example.org\r\nSubject: folded\r\n  line\r\n\
            Authentication-Results: other.example; spf=pass\r\n\
            Authentication-Results:  TERN.TEST 1;\r\n  spf=pass\r\n\
            Authentication-Results: \"tern.test\"; dkim=pass\r\n\
            Authentication-Results: (forged) tern.test (really); dmarc=pass\r\n\
            \r\nbody\r\n";
        let message = MessageParser::default().parse(&raw[..]).unwrap();
        let stored = with_trace(raw, &message, "tern.test", "Received: x\r\n");
        let text = String::from_utf8(stored).unwrap();
        assert_eq!(
            text,
            "Received: x\r\nFrom: a@example.org\r\nSubject: folded\r\n  line\r\n\
             Authentication-Results: other.example; spf=pass\r\n\r\nbody\r\n"
        );
    }
}
