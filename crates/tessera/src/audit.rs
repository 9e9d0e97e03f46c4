//! The audit log: one structured event per security-relevant action, on the tracing target `audit`,
//! so operators can route it apart from the rest (`TESSERA_LOG=audit=info,tessera=warn`, or by the
//! `target` field of JSON logs). Every event has an `event` field naming what happened:
//!
//! | event | fields |
//! |---|---|
//! | `login` | user, client (address), session, via (`form`, `rest`) |
//! | `login_failed` | user, client |
//! | `login_throttled` | user, client |
//! | `logout` | user, session, reason, services, clients |
//! | `ticket_validated` | user, service, attributes (released names) |
//! | `tokens_issued` | user, client_id, scope |
//! | `admin` | action, subject (from the command line) |
//! | `client_auth_failed`, `client_auth_throttled` | client_id, client |
//!
//! Passwords, tickets, tokens and cookies never appear.

/// Emits an audit event: `audit!("login_failed", user = %name, client = %ip)`.
macro_rules! audit {
    ($event:literal $(, $($fields:tt)*)?) => {
        ::tracing::info!(target: "audit", event = $event $(, $($fields)*)?)
    };
}

pub(crate) use audit;
