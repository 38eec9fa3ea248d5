//! Delivery to receiving servers: `worker` claims due recipients from the
//! queue, `routing` finds where their domain's mail goes, `connect` opens
//! SMTP sessions (`smtp_client` over a `connection`, upgraded by `tls`),
//! `sessions` keeps them open between messages, and `verp` makes the
//! per-recipient return path.

pub mod connect;
pub mod connection;
pub mod routing;
pub mod sessions;
pub mod smtp_client;
pub mod tls;
pub mod verp;
pub mod worker;
