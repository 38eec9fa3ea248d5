//! A DNS host name, normalised to lower-case ASCII (IDNA for Unicode names).

use std::fmt;

/// A syntactically valid host name with at least two labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    /// Parses a name; Unicode labels are converted to their `xn--` form.
    pub fn parse(input: &str) -> Result<DomainName, String> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() || trimmed.len() > 253 {
            return Err("must be 1 to 253 characters".into());
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(trimmed).map_err(|_| "is not a valid domain name".to_string())?
        };
        if ascii.len() > 253 {
            return Err("is too long".into());
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        for label in &labels {
            let valid = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(format!("has an invalid label `{label}`"));
            }
        }
        Ok(DomainName(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::DomainName;

    #[test]
    fn normalises_case_and_trailing_dot() {
        assert_eq!(DomainName::parse("Example.COM.").unwrap().as_str(), "example.com");
    }

    #[test]
    fn converts_unicode_to_ascii() {
        assert_eq!(
            DomainName::parse("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a-.com",
            "a b.com",
            &"a".repeat(64),
            "x@y.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
