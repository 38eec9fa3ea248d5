//! Who is calling: admin users with session tokens (management API) and
//! servers with API keys (send API).

pub mod api_key;
pub mod extract;
pub mod password;
pub mod session;
pub mod throttle;

pub use extract::{ApiKeyToken, ServerAuth, UserSession};
