//! Tern's vocabulary: checked values (a type here can only hold input that
//! passed validation) and the states and kinds every layer shares. Pure: no
//! I/O, and no imports of the layers above (db, api, delivery, sending).

mod bounce;
mod domain_name;
mod email_address;
mod event_type;
mod invalid;
mod recipient;
mod record_status;
mod redacted;
mod server;
mod signing;
mod special_use;
mod suppression;

pub use bounce::{BounceCategory, BounceType};
pub use domain_name::DomainName;
pub use email_address::{EmailAddress, Mailbox};
pub use event_type::EventType;
pub use invalid::{Invalid, InvalidKind};
pub use recipient::{RecipientKind, RecipientSet, RecipientStatus};
pub use record_status::{CheckResult, DomainDns, RecordStatus};
pub use redacted::Redacted;
pub use server::{Role, ServerMode};
pub use signing::{DkimAlgorithm, SigningDomain};
pub use special_use::{is_private_address, is_special_use_domain};
pub use suppression::{SuppressedAddress, SuppressionNote, SuppressionReason};
