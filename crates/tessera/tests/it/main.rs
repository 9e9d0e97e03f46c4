//! Tessera's integration tests: one binary (each file under `tests/` would be another link).
//! HTTP tests start the real router in-process on 127.0.0.1:0 with a temporary SQLite database and a
//! clock they move; CLI tests run the built `tessera` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test that cannot go on should stop loudly

mod authsources;
mod browser;
mod cas;
mod cli;
mod cluster;
mod django_import;
mod hostile;
mod login;
mod logout;
mod oidc;
mod oidc_rp;
mod pages;
mod pages_i18n;
mod proxy;
mod rest;
mod saml;
mod slo;
mod support;
