//! The field blocks of `message/delivery-status` (RFC 3464 §2.1) and
//! `message/feedback-report` (RFC 5965 §3.1): header-like `Name: value`
//! lines, folded with leading white space, in blocks separated by blank
//! lines. Names compare case-insensitively; values keep their text.

/// One block of fields, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Block(Vec<(String, String)>);

/// Fields one block may hold, and blocks one part may hold: a report is
/// read from hostile mail, so both are bounded.
const MAX_FIELDS: usize = 200;
const MAX_BLOCKS: usize = 100;

impl Block {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits a part's text into blocks of fields. Lines that are not fields
/// (no colon, or a name with spaces) are skipped.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current = Block::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
                if blocks.len() >= MAX_BLOCKS {
                    return blocks;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.0.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) || current.0.len() >= MAX_FIELDS {
            continue;
        }
        current.0.push((name.to_string(), value.trim().to_string()));
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// The address of a typed address field (`rfc822; jane@example.org`),
/// without angle brackets; `None` for other address types or an empty one.
pub fn address(value: &str) -> Option<String> {
    let (kind, address) = value.split_once(';').unwrap_or(("rfc822", value));
    if !kind.trim().eq_ignore_ascii_case("rfc822") {
        return None;
    }
    let address = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (address.contains('@') && address.len() <= 320).then(|| address.to_string())
}

/// The host of a typed host field (`dns; mx.example.org`).
pub fn host(value: &str) -> Option<String> {
    let host = value.split_once(';').map_or(value, |(_, h)| h).trim();
    let host = host.split_whitespace().next()?;
    (!host.is_empty() && host.len() <= 255).then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

/// A diagnostic code's text (`smtp; 550 5.1.1 ...` → `550 5.1.1 ...`).
pub fn diagnostic(value: &str) -> String {
    let text = match value.split_once(';') {
        Some((kind, text)) if !kind.contains(char::is_whitespace) => text,
        _ => value,
    };
    text.trim().chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_folded_fields_in_blocks() {
        let text = "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; Jane@Example.org\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 5.1.1 user\r\n  unknown\r\n\r\n\r\n";
        let blocks = blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].get("reporting-mta"), Some("dns; mx.example.org"));
        assert_eq!(
            blocks[1].get("Diagnostic-Code").map(diagnostic).as_deref(),
            Some("550 5.1.1 user unknown")
        );
        assert_eq!(
            blocks[1].get("final-recipient").and_then(address).as_deref(),
            Some("Jane@Example.org")
        );
    }

    #[test]
    fn typed_values() {
        assert_eq!(address("rfc822;<a@b.org>").as_deref(), Some("a@b.org"));
        assert_eq!(address("x400; whatever"), None);
        assert_eq!(address("rfc822; nobody"), None);
        assert_eq!(
            host("dns; MX1.Example.ORG. [192.0.2.1]").as_deref(),
            Some("mx1.example.org")
        );
        assert_eq!(diagnostic("X-Postfix; host said: 550 no"), "host said: 550 no");
    }
}
