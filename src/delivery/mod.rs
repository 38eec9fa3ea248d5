//! Delivery to receiving servers: `worker` claims due recipients from the
//! queue, `routing` finds where their domain's mail goes, `sessions` keeps
//! SMTP sessions (`smtp_client` over a `connection`, with `tls`) open
//! between messages, and `verp` makes the per-recipient return path.

pub mod connection;
pub mod routing;
pub mod sessions;
pub mod smtp_client;
pub mod tls;
pub mod verp;
pub mod worker;
