//! Checked values: a type here can only hold input that passed validation.

mod domain_name;
mod email_address;

pub use domain_name::DomainName;
pub use email_address::{EmailAddress, Mailbox};
