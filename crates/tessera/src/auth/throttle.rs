//! Login throttling: failures are counted per username and per source address in the store (so
//! every node sees them). After the first few, each failure makes the next attempt wait longer;
//! past a threshold the key is locked until `lockout` after its last failure. While a key waits,
//! every attempt is refused, even with the right password.
//!
//! [`authenticate`] is the one throttled password check: the login form and the REST API both call
//! it, so they count against the same keys.

use std::net::IpAddr;

use tessera_protocol::Timestamp;
use tessera_store::{LoginFailures, StoreResult};

use super::{is_valid_username, AuthError, AuthenticatedUser, Password};
use crate::app::AppState;
use crate::audit::audit;
use crate::config::LoginSettings;
use crate::metrics::LoginOutcome;

/// What a throttled password check decided.
#[derive(Debug)]
pub enum Verdict {
    /// The username or the address is locked until then; the password was not checked.
    Locked(Timestamp),
    /// Wrong username or password; the failure counts against both keys.
    Rejected,
    /// The right password; the username's failures are forgotten.
    Accepted(AuthenticatedUser),
}

/// Checks `username` and `password`, sent from `client`, under throttling (protocol digest §1.2,
/// trap T32): while the username or the address must wait, every attempt is refused, even the right
/// password. A failure counts against both keys; a success clears only the username's count, so
/// an address guessing many users' passwords stays throttled by one good login.
pub async fn authenticate(
    app: &AppState,
    username: &str,
    password: &Password,
    client: IpAddr,
    now: Timestamp,
) -> Result<Verdict, AuthError> {
    let login = &app.settings.login;
    let keys = [
        (user_key(username), login.max_failures_per_user),
        (address_key(client), login.max_failures_per_address),
    ];
    let standing = standing(app, &keys, now).await?;
    if let Some(until) = standing.blocked_until {
        tracing::warn!(user = %username, client = %client, "login refused: too many failures");
        audit!("login_throttled", user = %username, client = %client);
        app.metrics.login(LoginOutcome::Locked);
        return Ok(Verdict::Locked(until));
    }
    let user = if is_valid_username(username) {
        match app.authenticator.authenticate(username, password).await {
            Ok(user) => user,
            Err(e) => {
                if matches!(e, AuthError::Unavailable { .. }) {
                    app.metrics.login(LoginOutcome::Unavailable);
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    let Some(user) = user else {
        record_failure(app, &keys, now).await?;
        tracing::warn!(user = %username, client = %client, "login failed");
        audit!("login_failed", user = %username, client = %client);
        app.metrics.login(LoginOutcome::Failure);
        return Ok(Verdict::Rejected);
    };
    standing.forgive_first(app, &keys).await?;
    app.metrics.login(LoginOutcome::Success);
    Ok(Verdict::Accepted(user))
}

/// What the store holds against a set of throttle keys (each with its failure limit).
#[derive(Debug)]
pub struct Standing {
    /// Until when the first of the keys that must wait does, if any.
    pub blocked_until: Option<Timestamp>,
    /// Whether the first key (the username or the client) has failures on record.
    first_failed: bool,
}

impl Standing {
    /// Whether the first key (the username or the client) has failures on record.
    pub fn first_failed(&self) -> bool {
        self.first_failed
    }

    /// After a success, forgets the failures of the first of `keys`, if it has any: a success
    /// with a clean record writes nothing.
    pub async fn forgive_first(&self, app: &AppState, keys: &[(String, u32)]) -> StoreResult<()> {
        match keys.first() {
            Some((key, _)) if self.first_failed => app.store.delete_login_failures(key).await,
            _ => Ok(()),
        }
    }
}

/// The failures on record against `keys` (each with its failure limit), and until when the first
/// of them that must wait does.
pub async fn standing(
    app: &AppState,
    keys: &[(String, u32)],
    now: Timestamp,
) -> StoreResult<Standing> {
    let mut standing = Standing {
        blocked_until: None,
        first_failed: false,
    };
    let names: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
    let recorded = app.store.get_login_failures_of(&names).await?;
    for (i, ((_, max), failures)) in keys.iter().zip(recorded).enumerate() {
        if let Some(failures) = failures {
            standing.first_failed |= i == 0;
            if let Some(until) = locked_until(&failures, *max, &app.settings.login, now) {
                let latest = standing.blocked_until.map_or(until, |l| l.max(until));
                standing.blocked_until = Some(latest);
            }
        }
    }
    Ok(standing)
}

/// Counts one failure against each of `keys`.
pub async fn record_failure(
    app: &AppState,
    keys: &[(String, u32)],
    now: Timestamp,
) -> StoreResult<()> {
    for (key, _) in keys {
        app.store
            .record_login_failure(key, now, app.settings.login.failure_window)
            .await?;
    }
    Ok(())
}

/// "12 seconds", "1 minute", "5 minutes": how long a throttled user must wait, rounded up.
pub fn wait_text(until: Timestamp, now: Timestamp) -> String {
    let seconds = until.since(now).as_secs_f64().ceil().max(1.0);
    // Whole seconds fit easily in u64; the cast cannot truncate anything meaningful.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let seconds = seconds as u64;
    let (n, unit) = if seconds < 60 {
        (seconds, "second")
    } else {
        (seconds.div_ceil(60), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The throttle key for a username, whatever its case: login sources that ignore case (MySQL's
/// usual collations, LDAP) accept a name in any of its spellings, which must not multiply the
/// attempts allowed.
pub fn user_key(username: &str) -> String {
    format!("user:{}", username.to_lowercase())
}

/// The throttle key for a source address. IPv6 addresses count per /64, the block one host gets.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Until when `failures` keeps its key waiting, if it does at `now`. The first half of the allowed
/// failures cost nothing (typos); each later one makes the next attempt wait `first_delay`, doubled
/// per failure (never longer than `lockout`); at `max_failures` the key is locked for `lockout`.
pub fn locked_until(
    failures: &LoginFailures,
    max_failures: u32,
    settings: &LoginSettings,
    now: Timestamp,
) -> Option<Timestamp> {
    let n = failures.failures;
    let free = (max_failures / 2).max(1);
    let wait = if n >= max_failures {
        settings.lockout
    } else if n > free && !settings.first_delay.is_zero() {
        let doublings = (n - free - 1).min(20);
        settings
            .first_delay
            .saturating_mul(1 << doublings)
            .min(settings.lockout)
    } else {
        return None;
    };
    let until = failures.last_at.plus(wait);
    (now < until).then_some(until)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn delays_grow_then_the_key_locks_until_lockout_passes() {
        let settings = LoginSettings::default();
        let t = Timestamp::from_unix_millis(1_000_000);
        let f = |n| LoginFailures {
            failures: n,
            first_at: t,
            last_at: t,
        };
        // Limit 5: two free failures, then 1 s, 2 s, then the 5 min lock.
        assert_eq!(locked_until(&f(2), 5, &settings, t), None);
        assert_eq!(
            locked_until(&f(3), 5, &settings, t),
            Some(t.plus(Duration::from_secs(1)))
        );
        assert_eq!(
            locked_until(&f(4), 5, &settings, t),
            Some(t.plus(Duration::from_secs(2)))
        );
        assert_eq!(
            locked_until(&f(4), 5, &settings, t.plus(Duration::from_secs(2))),
            None
        );
        let until = t.plus(settings.lockout);
        assert_eq!(locked_until(&f(5), 5, &settings, t), Some(until));
        assert_eq!(locked_until(&f(9), 5, &settings, until), None);
        // Limit 20 (addresses): ten free, then doubling delays capped by the lockout.
        assert_eq!(locked_until(&f(10), 20, &settings, t), None);
        assert_eq!(
            locked_until(&f(11), 20, &settings, t),
            Some(t.plus(Duration::from_secs(1)))
        );
        assert_eq!(
            locked_until(&f(19), 20, &settings, t),
            Some(t.plus(Duration::from_secs(256)))
        );
        let no_delays = LoginSettings {
            first_delay: Duration::ZERO,
            ..LoginSettings::default()
        };
        assert_eq!(locked_until(&f(4), 5, &no_delays, t), None);
    }

    #[test]
    fn waits_are_told_in_words() {
        let t = Timestamp::from_unix_millis(1_000_000);
        let after = |ms| t.plus(Duration::from_millis(ms));
        assert_eq!(wait_text(after(200), t), "1 second");
        assert_eq!(wait_text(after(2_000), t), "2 seconds");
        assert_eq!(wait_text(after(60_000), t), "1 minute");
        assert_eq!(wait_text(after(61_000), t), "2 minutes");
        assert_eq!(wait_text(after(300_000), t), "5 minutes");
    }

    #[test]
    fn keys_group_ipv6_by_64() {
        assert_eq!(address_key("192.0.2.1".parse().unwrap()), "ip:192.0.2.1");
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "ip:192.0.2.1"
        );
        assert_eq!(
            address_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "ip:2001:db8:1:2::/64"
        );
    }
}
