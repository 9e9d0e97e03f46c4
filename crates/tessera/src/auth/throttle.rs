//! Login throttling: failures are counted per username and per source address in the store (so
//! every node sees them); past a threshold the key is locked until `lockout` after its last failure.
//! While locked, every attempt is refused, even with the right password.

use std::net::IpAddr;

use tessera_protocol::Timestamp;
use tessera_store::LoginFailures;

use crate::config::LoginSettings;

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
