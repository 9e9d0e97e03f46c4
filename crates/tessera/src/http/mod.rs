//! HTTP handlers: extract, call the flow or the protocol, render. Each module starts with its
//! `router()`, so path → function is one screen.

pub mod cas;
pub mod extract;
pub mod login;
pub mod logout;
pub mod oidc;
pub mod response;
pub mod rest;
pub mod security;
