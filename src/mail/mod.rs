//! Message building and signing: JSON sends become MIME (mail-builder), raw
//! sends are checked (mail-parser), and both are DKIM-signed (mail-auth).

pub mod build;
pub mod dkim;
pub mod keys;
pub mod raw;
pub mod received;
pub mod report;
pub mod verp;
