//! Tessera: a single sign-on server. CAS 1.0/2.0/3.0 today, on an SSO session that every
//! protocol shares.
//!
//! [`Server::bind`] opens the store, binds the listener and builds the router; `run` serves it.
//! Tests use the same entry point with a [`clock::ManualClock`].

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod import;
pub mod metrics;
pub mod oidc;
pub mod registry;
pub mod slo;
pub mod sso;
pub mod telemetry;
pub mod tls;
pub mod web;

pub use app::{AppState, Server, StartError};
pub use config::{Loaded, Settings};
