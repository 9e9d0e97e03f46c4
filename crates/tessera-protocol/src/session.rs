//! The SSO session: one per browser login, shared by every protocol. Its secret is the ticket-granting
//! ticket in the TGC cookie (CAS 3.0 §3.6); the store keeps only that ticket's [`TicketKey`].
//!
//! A session ends at the first of: its hard timeout after login, its idle timeout after last use, or
//! logout. A "remember me" session uses the long-term timeout instead of both (CAS 3.0 §4.1.3).

use std::fmt;
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};

use crate::attributes::Attributes;
use crate::ticket::{random_base62, TicketKey};
use crate::time::Timestamp;

/// A session's public identifier: shown to operators and used to revoke it. Knowing it grants
/// nothing; the secret is the TGT.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh identifier (`s-` + 22 base62 characters).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self(format!("s-{}", random_base62(rng, 22)))
    }

    /// An identifier read back from storage or typed by an operator.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The identifier text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ends a session this long after its last use.
    pub idle_timeout: Duration,
    /// Ends a session this long after login, however busy.
    pub hard_timeout: Duration,
    /// Lifetime of a "remember me" session, from login (replaces both timeouts).
    pub long_term_timeout: Duration,
}

impl Default for SessionPolicy {
    /// Apereo's defaults: 2 h idle, 8 h hard; 14 days when remembered.
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(2 * 3600),
            hard_timeout: Duration::from_secs(8 * 3600),
            long_term_timeout: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    /// Public identifier.
    pub id: SessionId,
    /// Key of the ticket-granting ticket.
    pub tgt: TicketKey,
    /// The login name.
    pub username: String,
    /// The user's attributes, as resolved at login.
    pub attributes: Attributes,
    /// When the password was checked.
    pub authenticated_at: Timestamp,
    /// Last time the session was used to enter a service.
    pub last_used_at: Timestamp,
    /// A "remember me" session.
    pub long_term: bool,
    /// The user asked to be warned before being sent to a service with this session (CAS 3.0 §2.2.1 `warn`).
    pub warn: bool,
}

/// A use of a session less than the idle timeout divided by this after the recorded one is not
/// recorded (see [`SsoSession::used_at`]).
pub const USE_GRANULARITY_DIVISOR: u32 = 100;
/// The most a recorded use may lag behind the last one.
pub const MAX_USE_GRANULARITY: Duration = Duration::from_secs(60);

impl SsoSession {
    /// When this session ends if it is not used again.
    pub fn expires_at(&self, policy: &SessionPolicy) -> Timestamp {
        if self.long_term {
            return self.authenticated_at.plus(policy.long_term_timeout);
        }
        let hard = self.authenticated_at.plus(policy.hard_timeout);
        let idle = self.last_used_at.plus(policy.idle_timeout);
        hard.min(idle)
    }

    /// The session used at `now` (an application entered with it): its new last use and the expiry
    /// that follows, or `None` when the recorded last use is recent enough to stand, less than
    /// [`USE_GRANULARITY_DIVISOR`]th of the idle timeout ago (and under [`MAX_USE_GRANULARITY`]).
    /// A busy session is then not rewritten for every ticket it is used for, at the price of
    /// ending at most that much before a full idle timeout after its very last use.
    pub fn used_at(
        &self,
        policy: &SessionPolicy,
        now: Timestamp,
    ) -> Option<(Timestamp, Timestamp)> {
        let granularity = (policy.idle_timeout / USE_GRANULARITY_DIVISOR).min(MAX_USE_GRANULARITY);
        if now.since(self.last_used_at) < granularity {
            return None;
        }
        let used = Self {
            last_used_at: now,
            ..self.clone()
        };
        Some((now, used.expires_at(policy)))
    }

    /// Whether the session has ended by time.
    pub fn is_expired(&self, policy: &SessionPolicy, now: Timestamp) -> bool {
        now >= self.expires_at(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(long_term: bool) -> SsoSession {
        SsoSession {
            id: SessionId::from_stored("s-1".into()),
            tgt: TicketKey::of("TGT-1"),
            username: "u".into(),
            attributes: Attributes::new(),
            authenticated_at: Timestamp::from_unix_millis(0),
            last_used_at: Timestamp::from_unix_millis(0),
            long_term,
            warn: false,
        }
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn idle_then_hard_timeout() {
        let policy = SessionPolicy::default();
        let mut s = session(false);
        assert!(!s.is_expired(&policy, Timestamp::from_unix_millis(2 * HOUR - 1)));
        assert!(s.is_expired(&policy, Timestamp::from_unix_millis(2 * HOUR)));
        s.last_used_at = Timestamp::from_unix_millis(7 * HOUR);
        assert!(!s.is_expired(&policy, Timestamp::from_unix_millis(8 * HOUR - 1)));
        assert!(s.is_expired(&policy, Timestamp::from_unix_millis(8 * HOUR)));
    }

    #[test]
    fn a_use_is_recorded_unless_the_last_one_is_recent_enough() {
        let at = Timestamp::from_unix_millis;
        let s = session(false);
        let policy = SessionPolicy {
            idle_timeout: Duration::from_secs(600),
            ..SessionPolicy::default()
        };
        // Granularity: 600 s / 100 = 6 s.
        assert_eq!(s.used_at(&policy, at(5_999)), None);
        assert_eq!(
            s.used_at(&policy, at(6_000)),
            Some((at(6_000), at(606_000)))
        );
        assert_eq!(
            s.used_at(&policy, at(-1)),
            None,
            "a use before the recorded one"
        );
        // The default idle timeout (2 h) would give 72 s: capped at a minute.
        let policy = SessionPolicy::default();
        assert_eq!(s.used_at(&policy, at(59_999)), None);
        assert_eq!(
            s.used_at(&policy, at(60_000)),
            Some((at(60_000), at(60_000 + 2 * HOUR)))
        );
        // The hard timeout still bounds the expiry; a remembered session's stays fixed.
        assert_eq!(
            s.used_at(&policy, at(7 * HOUR)),
            Some((at(7 * HOUR), at(8 * HOUR)))
        );
        assert_eq!(
            session(true).used_at(&policy, at(HOUR)),
            Some((at(HOUR), at(14 * 24 * HOUR)))
        );
    }

    #[test]
    fn remembered_sessions_outlive_both() {
        let policy = SessionPolicy::default();
        let s = session(true);
        assert!(!s.is_expired(&policy, Timestamp::from_unix_millis(13 * 24 * HOUR)));
        assert!(s.is_expired(&policy, Timestamp::from_unix_millis(14 * 24 * HOUR)));
    }
}
