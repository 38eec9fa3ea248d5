//! Who is calling: admin users with passwords and session tokens
//! (management API) and servers with API keys (send API). No HTTP here: the
//! axum extractors in `api::extract` call into this module.

pub mod api_key;
pub mod password;
pub mod send_limits;
pub mod server_key;
pub mod session;
pub mod throttle;

pub use server_key::{ApiKeyToken, KeyError, ServerAuth};
