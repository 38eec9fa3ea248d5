//! DNS: the records a sending domain must publish, and checking them; the
//! records the operator publishes once for the installation (`doctor`).

pub mod doctor;
pub mod records;
pub mod resolver;
pub mod verify;
