//! The rules of Tessera's protocols, free of I/O.
//!
//! Everything here is a function from inputs the caller already fetched (request fields, the stored
//! ticket or session, the registered service) and `now` to a decision or a rendered body. Nothing in
//! this crate reads a clock, draws randomness on its own, touches the network or a database: time and
//! randomness are arguments, so every rule is testable with plain values.
#![warn(missing_docs)]

pub mod attributes;
pub mod cas;
pub mod oidc;
pub mod service;
pub mod session;
pub mod ticket;
pub mod time;

pub use attributes::Attributes;
pub use time::Timestamp;
