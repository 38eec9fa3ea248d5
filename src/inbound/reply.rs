//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463).

use std::borrow::Cow;

/// One reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub const TEMPORARY: Reply = Reply::new(451, "4.3.0", "Temporary failure, try again later");
    pub const OK: Reply = Reply::new(250, "2.0.0", "OK");
    pub const BAD_SEQUENCE: Reply = Reply::new(503, "5.5.1", "Bad sequence of commands");

    pub const fn new(code: u16, enhanced: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            enhanced,
            text: Cow::Borrowed(text),
        }
    }

    /// A reply with text made at run time; CR and LF in it become spaces.
    pub fn owned(code: u16, enhanced: &'static str, text: String) -> Reply {
        let text = if text.contains(['\r', '\n']) {
            text.replace(['\r', '\n'], " ")
        } else {
            text
        };
        Reply {
            code,
            enhanced,
            text: Cow::Owned(text),
        }
    }

    /// 4xx and 5xx count against the session's error budget.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let line = if self.enhanced.is_empty() {
            format!("{} {}\r\n", self.code, self.text)
        } else {
            format!("{} {} {}\r\n", self.code, self.enhanced, self.text)
        };
        out.extend_from_slice(line.as_bytes());
    }
}

/// A multi-line 250 reply (EHLO): the first line, then one per keyword.
pub fn write_multiline(out: &mut Vec<u8>, code: u16, lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        let separator = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("{code}{separator}{line}\r\n").as_bytes());
    }
}
