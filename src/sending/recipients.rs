//! The envelope recipients of a message: validated, de-duplicated, bounded.

use crate::db::messages::RecipientKind;
use crate::domain::EmailAddress;
use crate::error::ApiError;

/// Collects recipients in order, dropping later duplicates (compared
/// case-insensitively) so each address gets one delivery.
#[derive(Default)]
pub struct RecipientSet {
    pub list: Vec<(EmailAddress, RecipientKind)>,
}

impl RecipientSet {
    pub fn add(&mut self, address: EmailAddress, kind: RecipientKind) {
        let key = address.to_string().to_lowercase();
        if !self.list.iter().any(|(a, _)| a.to_string().to_lowercase() == key) {
            self.list.push((address, kind));
        }
    }

    /// Refuses an empty or oversized set.
    pub fn check(&self, max: usize, field: &str) -> Result<(), ApiError> {
        if self.list.is_empty() {
            return Err(ApiError::unprocessable("no_recipients", "give at least one recipient").field(field));
        }
        if self.list.len() > max {
            return Err(ApiError::too_large(
                "too_many_recipients",
                format!(
                    "{} recipients exceed the limit of {max} (limits.max_recipients)",
                    self.list.len()
                ),
            )
            .field(field));
        }
        Ok(())
    }
}

/// Parses one address, naming the field on failure.
pub fn parse_address(input: &str, field: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(input.trim()).map_err(|reason| {
        ApiError::unprocessable("invalid_address", format!("`{field}` {reason}")).field(field)
    })
}
