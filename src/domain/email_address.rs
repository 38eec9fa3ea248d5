//! Email addresses (RFC 5321 §4.1.2 dot-atom local parts, RFC 6531 UTF-8)
//! and mailboxes with an optional display name.

use std::fmt;

use mail_parser::parsers::MessageStream;

use super::DomainName;

/// `local@domain`, with the domain normalised to lower-case ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    local: String,
    domain: DomainName,
}

/// Characters RFC 5322 §3.2.3 allows in an atom besides letters and digits.
const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

impl EmailAddress {
    /// Parses a bare address. Quoted local parts and address literals are
    /// refused: no transactional sender needs them, and they are a common
    /// source of injection bugs.
    pub fn parse(input: &str) -> Result<EmailAddress, String> {
        if input.len() > 254 {
            return Err("is longer than 254 characters".into());
        }
        let (local, domain) = input.rsplit_once('@').ok_or_else(|| "has no `@`".to_string())?;
        if local.is_empty() || local.len() > 64 {
            return Err("has a local part that is empty or longer than 64 bytes".into());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err("has a misplaced `.` in its local part".into());
        }
        let valid_local = local.chars().all(|c| {
            if c.is_ascii() {
                c.is_ascii_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(&(c as u8))
            } else {
                !c.is_control() && !c.is_whitespace()
            }
        });
        if !valid_local {
            return Err("has a character that is not allowed in its local part".into());
        }
        let domain = DomainName::parse(domain).map_err(|e| format!("domain {e}"))?;
        if !domain.as_str().contains('.') {
            return Err("domain must have at least two labels".into());
        }
        Ok(EmailAddress {
            local: local.to_string(),
            domain,
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// True when the address needs SMTPUTF8 to be sent (RFC 6531).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// An address with an optional display name, as in `From:` or `To:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl Mailbox {
    /// Parses one mailbox as a header would give it: `addr`, `<addr>`, or
    /// `Display Name <addr>` with the name quoted or RFC 2047-encoded
    /// (mail-parser's RFC 5322 address parser), then checks the address
    /// strictly ([`EmailAddress::parse`]).
    pub fn parse(input: &str) -> Result<Mailbox, String> {
        let input = input.trim();
        // A line break would end the header field: refuse it outright.
        if input.chars().any(char::is_control) {
            return Err("contains a control character or line break".into());
        }
        // The parser reads a header value up to its line end.
        let line = format!("{input}\n");
        let parsed = MessageStream::new(line.as_bytes()).parse_address();
        let mut mailboxes = parsed.as_address().into_iter().flat_map(|list| list.iter());
        let mailbox = mailboxes
            .next()
            .ok_or_else(|| "is not a valid email address".to_string())?;
        if mailboxes.next().is_some() {
            return Err("must be one address, not a list".into());
        }
        let address = mailbox
            .address()
            .ok_or_else(|| "is not a valid email address".to_string())?;
        // mail-parser is lenient; a name it read from around a bracket that
        // was never closed is malformed input.
        if input.contains('<') != input.ends_with('>') {
            return Err("has an unmatched `<` or `>`".into());
        }
        Mailbox::new(mailbox.name(), address)
    }

    /// Builds a mailbox from separate name and address fields.
    pub fn new(name: Option<&str>, address: &str) -> Result<Mailbox, String> {
        let name = match name.map(str::trim) {
            Some(n) if n.len() >= 2 && n.starts_with('"') && n.ends_with('"') => {
                Some(n[1..n.len() - 1].to_string())
            }
            Some("") | None => None,
            Some(n) => Some(n.to_string()),
        };
        if let Some(n) = &name {
            if n.chars().any(|c| c.is_control()) {
                return Err("display name contains a control character".into());
            }
            if n.len() > 256 {
                return Err("display name is longer than 256 bytes".into());
            }
        }
        Ok(Mailbox {
            name,
            address: EmailAddress::parse(address.trim())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_and_utf8_addresses() {
        for ok in [
            "a@b.co",
            "first.last+tag@example.com",
            "用户@例子.测试",
            "o'neil@x.org",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok} refused");
        }
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@b.com",
            "a@",
            "a@b",
            "a..b@c.com",
            ".a@c.com",
            "a b@c.com",
            "a@b.com\r\nBcc: x@y.com",
            "\"q\"@c.com",
            "a@[127.0.0.1]",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parses_display_names() {
        let m = Mailbox::parse("\"Zoë Ω 🚀\" <zoe@example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Zoë Ω 🚀"));
        assert_eq!(m.address.to_string(), "zoe@example.com");
        let bare = Mailbox::parse("<x@example.com>").unwrap();
        assert_eq!(bare.name, None);
        assert!(Mailbox::parse("Name <x@example.com").is_err());
        assert!(Mailbox::parse("Name x@example.com>").is_err());
        let encoded = Mailbox::parse("=?utf-8?q?J=C3=BCrgen?= <j@example.org>").unwrap();
        assert_eq!(encoded.name.as_deref(), Some("Jürgen"));
        let plain_name = Mailbox::parse("Jane Doe <jane@example.org>").unwrap();
        assert_eq!(plain_name.name.as_deref(), Some("Jane Doe"));
        assert_eq!(Mailbox::parse("jane@example.org").unwrap().name, None);
        for bad in [
            "a@b.com, c@d.com",
            "plain",
            "Name <not an address>",
            "undisclosed-recipients:;",
            "Name <a@b.com>\r\nBcc: x@y.com",
            "",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
