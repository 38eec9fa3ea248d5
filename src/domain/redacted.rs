//! A value that must not reach a log: secrets, keys, credentials.

use serde::{Deserialize, Serialize};

/// Holds a secret. `Debug` prints `<redacted>`, so a `{:?}` of any struct
/// that holds one (settings, a signing domain, a key lookup) shows no
/// secret; the value is read only through [`Redacted::expose`]. Serialises
/// as the value itself, for configuration layering.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub fn new(value: T) -> Redacted<T> {
        Redacted(value)
    }

    /// The secret itself; name the reason at the call site.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Redacted(value)
    }
}

impl<T> std::fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_shows_no_secret() {
        let secret = super::Redacted::new("hunter2-hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }
}
