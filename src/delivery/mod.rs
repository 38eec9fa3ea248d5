//! Delivery to receiving servers. So far: the VERP return path that lets
//! bounces be matched to the recipient they are about.

pub mod routing;
pub mod smtp_client;
pub mod tls;
pub mod verp;
pub mod worker;
