//! The inbound SMTP server (`tern serve --role smtp`): receives mail for
//! the servers' routes and for the return path (bounces and feedback
//! reports), checks the sender, and stores each message before it answers
//! `250`. Never a relay: a recipient is accepted only for a route's address
//! or a signed return path, everything else is refused in the dialogue.
//!
//! Data flow: `server` (accept, session limits, `ip_rules` held in
//! memory, `dnsbl`) → `session` (the command state machine, reading with
//! `wire`) → `recipient` (RCPT TO: routes, looked up through the `routes`
//! cache, and return paths) → `message` (end of DATA: `checks`, `spam`,
//! policy, trace fields, `payload`, then `store`: the group commit into
//! `db::inbound`). What is held in memory `follow`s the database's
//! notifications. The dispatcher (`webhooks`) delivers `inbound.received`
//! to route endpoints.

pub mod checks;
pub mod dnsbl;
pub mod follow;
pub mod ip_rules;
pub mod message;
pub mod payload;
pub mod recipient;
pub mod reply;
pub mod report;
pub mod routes;
pub mod server;
pub mod session;
pub mod spam;
pub mod store;
pub mod tls;
pub mod wire;

pub use server::SmtpServer;
