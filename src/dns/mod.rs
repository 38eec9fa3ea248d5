//! DNS: the records a sending domain must publish, and checking them.

pub mod records;
pub mod resolver;
pub mod verify;
