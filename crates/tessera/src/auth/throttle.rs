//! Login throttling: failures are counted per username and per source address in the store (so
//! every node sees them); past a threshold the key is locked until `lockout` after its last failure.
//! While locked, every attempt is refused, even with the right password.
//!
//! [`authenticate`] is the one throttled password check: the login form and the REST API both call
//! it, so they count against the same keys.

use std::net::IpAddr;

use tessera_protocol::Timestamp;
use tessera_store::LoginFailures;

use super::{is_valid_username, AuthError, AuthenticatedUser, Password};
use crate::app::AppState;
use crate::config::LoginSettings;

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
/// trap T32): while the username or the address is locked, every attempt is refused, even the right
/// password. A failure counts against both keys; a success clears only the username's count, so
/// an address guessing many users' passwords stays locked by one good login.
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
    for (key, max) in &keys {
        if let Some(failures) = app.store.get_login_failures(key).await? {
            if let Some(until) = locked_until(&failures, *max, login, now) {
                tracing::warn!(user = %username, client = %client, "login refused: too many failures");
                return Ok(Verdict::Locked(until));
            }
        }
    }
    let user = if is_valid_username(username) {
        app.authenticator.authenticate(username, password).await?
    } else {
        None
    };
    let Some(user) = user else {
        for (key, _) in &keys {
            app.store
                .record_login_failure(key, now, login.failure_window)
                .await?;
        }
        tracing::warn!(user = %username, client = %client, "login failed");
        return Ok(Verdict::Rejected);
    };
    app.store.delete_login_failures(&keys[0].0).await?;
    Ok(Verdict::Accepted(user))
}

/// Whole minutes until `until`, at least one: what a locked-out user is told to wait.
pub fn minutes_left(until: Timestamp, now: Timestamp) -> u64 {
    until.since(now).as_secs().div_ceil(60).max(1)
}

/// The throttle key for a username.
pub fn user_key(username: &str) -> String {
    format!("user:{username}")
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

/// Until when `failures` keeps its key locked, if it does at `now`.
pub fn locked_until(
    failures: &LoginFailures,
    max_failures: u32,
    settings: &LoginSettings,
    now: Timestamp,
) -> Option<Timestamp> {
    let until = failures.last_at.plus(settings.lockout);
    (failures.failures >= max_failures && now < until).then_some(until)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn locks_after_the_threshold_until_lockout_passes() {
        let settings = LoginSettings::default();
        let t = Timestamp::from_unix_millis(1_000_000);
        let f = |n| LoginFailures {
            failures: n,
            first_at: t,
            last_at: t,
        };
        assert_eq!(locked_until(&f(4), 5, &settings, t), None);
        let until = t.plus(settings.lockout);
        assert_eq!(locked_until(&f(5), 5, &settings, t), Some(until));
        assert_eq!(
            locked_until(&f(9), 5, &settings, until.plus(Duration::from_millis(0))),
            None
        );
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
