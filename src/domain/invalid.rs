//! Input that failed a check: the shared shape of every validation error,
//! whether the input came over HTTP, SMTP or the command line.

/// How input was wrong; decides the status a protocol reports it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// Well-formed but not acceptable (HTTP 422, SMTP 5.5.x/5.6.x).
    Unprocessable,
    /// Over a configured limit (HTTP 413, SMTP 5.3.4).
    TooLarge,
}

/// A refused input, with a stable machine-readable code and, where there is
/// one, the field at fault (as a JSON path such as `to[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub kind: InvalidKind,
    /// Stable, e.g. `invalid_address`.
    pub code: &'static str,
    /// Human-readable; wording may change.
    pub message: String,
    pub field: Option<String>,
}

impl Invalid {
    /// Well-formed but unacceptable input.
    pub fn new(code: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            kind: InvalidKind::Unprocessable,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Input over a limit.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            kind: InvalidKind::TooLarge,
            ..Invalid::new(code, message)
        }
    }

    /// Names the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Invalid {
        self.field = Some(field.into());
        self
    }
}
