//! What a refusal means for the address: RFC 3463 enhanced status codes
//! (`class.subject.detail`) and plain SMTP reply codes, classified the
//! same way for a DSN and for a reply Tern got during its own delivery.

pub use crate::domain::{BounceCategory, BounceType};

/// A refusal, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    pub bounce_type: BounceType,
    pub category: BounceCategory,
    /// Whether the address goes on the suppression list: hard bounces about
    /// the address, not about this message or the sender's reputation.
    pub suppress: bool,
}

/// An enhanced status code, checked: `2|4|5 . 1-3 digits . 1-3 digits`.
pub fn enhanced(text: &str) -> Option<&str> {
    let text = text.trim();
    let mut parts = text.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let digits = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    (parts.next().is_none() && matches!(class, "2" | "4" | "5") && digits(subject) && digits(detail))
        .then_some(text)
}

/// The first enhanced status code in a text (`550 5.1.1 <x>: unknown`).
pub fn find_enhanced(text: &str) -> Option<String> {
    text.split(|c: char| {
        c.is_whitespace() || c == '-' || c == '#' || c == '(' || c == ')' || c == ',' || c == ';'
    })
    .find_map(enhanced)
    .map(str::to_string)
}

/// The first SMTP reply code in a text: a word of three digits, perhaps
/// followed by `-` or `:` (`550`, `550-5.1.1`, `554:`). Digits inside a
/// longer word (an address `209.85.1.1`, a queue id) are not codes.
pub fn find_reply_code(text: &str) -> Option<u16> {
    text.split_whitespace()
        .map(|word| word.trim_start_matches(['(', '#', '[']))
        .map(|word| word.split(['-', ':']).next().unwrap_or_default())
        .filter(|word| word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|word| word.parse::<u16>().ok())
        .find(|code| (200..600).contains(code) && matches!(code / 100, 2 | 4 | 5))
}

/// Classifies a refusal from its enhanced code (preferred) or reply code.
/// `None` for a success or when neither says anything.
pub fn classify(enhanced_code: Option<&str>, reply_code: Option<u16>) -> Option<Classified> {
    let (class, subject, detail) = match enhanced_code.and_then(enhanced) {
        Some(code) => {
            let mut parts = code.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
            (
                parts.next().unwrap_or(0),
                parts.next().unwrap_or(0),
                parts.next().unwrap_or(0),
            )
        }
        None => (reply_code? / 100, 0, 0),
    };
    let category = match (subject, detail) {
        // X.1.7 and X.1.8 are about the sender's address.
        (1, 7 | 8) => BounceCategory::Policy,
        (1, _) => BounceCategory::BadAddress,
        (2, 2) => BounceCategory::MailboxFull,
        // X.2.3: the message is too long for the mailbox.
        (2, 3) | (3, 4) | (6, _) => BounceCategory::Message,
        (2, 0 | 1) => BounceCategory::MailboxDisabled,
        (7, _) => BounceCategory::Policy,
        // X.2.4 (list expansion), X.3.x (the receiving system), X.4.x
        // (routing), X.5.x (protocol): the path, not the address.
        (2, _) | (3, _) | (4, _) | (5, _) => BounceCategory::Network,
        _ => BounceCategory::Other,
    };
    let bounce_type = match class {
        5 if category != BounceCategory::MailboxFull => BounceType::Hard,
        4 | 5 => BounceType::Soft,
        _ => return None,
    };
    let suppress = bounce_type == BounceType::Hard
        && matches!(
            category,
            BounceCategory::BadAddress | BounceCategory::MailboxDisabled | BounceCategory::Other
        );
    Some(Classified {
        bounce_type,
        category,
        suppress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_and_checked() {
        assert_eq!(enhanced("5.1.1"), Some("5.1.1"));
        assert_eq!(enhanced("5.1.10"), Some("5.1.10"));
        assert_eq!(enhanced("3.1.1"), None);
        assert_eq!(enhanced("5.1"), None);
        assert_eq!(
            find_enhanced("550-5.1.1 The email account").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            find_enhanced("no mailbox here (#5.1.1)").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find_reply_code("host said: 554 delivery error"), Some(554));
        assert_eq!(find_reply_code("552-5.2.2 over quota"), Some(552));
        assert_eq!(find_reply_code("no code 12345"), None);
        assert_eq!(
            find_reply_code("209.85.1.1 does not like recipient. 452 full"),
            Some(452)
        );
        assert_eq!(find_reply_code("said: 554: delivery error"), Some(554));
    }

    #[test]
    fn rfc_3463_detail_decides() {
        let c = |e: &str| classify(Some(e), None).unwrap();
        assert_eq!(
            (c("5.1.1").bounce_type, c("5.1.1").category, c("5.1.1").suppress),
            (BounceType::Hard, BounceCategory::BadAddress, true)
        );
        assert_eq!(c("5.2.2").bounce_type, BounceType::Soft);
        assert!(!c("5.2.2").suppress);
        assert_eq!(c("5.2.1").category, BounceCategory::MailboxDisabled);
        assert!(c("5.2.1").suppress);
        assert_eq!(
            (c("5.7.1").bounce_type, c("5.7.1").suppress),
            (BounceType::Hard, false)
        );
        assert!(!c("5.3.4").suppress);
        assert!(!c("5.6.0").suppress);
        assert_eq!(
            (c("4.2.2").bounce_type, c("4.2.2").suppress),
            (BounceType::Soft, false)
        );
        assert!(c("5.0.0").suppress);
        for not_the_address in ["5.1.7", "5.1.8", "5.2.3", "5.2.4", "5.3.2", "5.5.1", "5.4.4"] {
            assert!(!c(not_the_address).suppress, "{not_the_address}");
        }
        assert_eq!(classify(None, Some(550)).map(|c| c.suppress), Some(true));
        assert_eq!(
            classify(None, Some(421)).map(|c| c.bounce_type),
            Some(BounceType::Soft)
        );
        assert_eq!(classify(Some("2.0.0"), Some(250)), None);
        assert_eq!(classify(None, None), None);
    }
}
