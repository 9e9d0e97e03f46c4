//! Ticket identifiers as they arrive in parameters and cookies (`Ticket::parse` of every kind).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::text;
use tessera_protocol::ticket::{
    AccessToken, AuthorizationCode, Login, Proxy, ProxyGranting, ProxyGrantingIou, RefreshToken,
    Service, Ticket, TicketGranting, TicketKey, TicketKind, ORDER_LEN,
};

/// Parses `s` as a `K` and checks what a parsed ticket promises; whether it parsed.
fn check<K: TicketKind>(s: &str) -> bool {
    let Some(t) = Ticket::<K>::parse(s) else {
        return false;
    };
    // A ticket that parses re-serialises to the same string.
    assert_eq!(t.as_str(), s);
    let rest = s
        .strip_prefix(K::PREFIX)
        .expect("a parsed ticket has its prefix");
    assert!((1..=256).contains(&rest.len()));
    assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let redacted = t.redacted();
    let shown = redacted
        .strip_suffix('…')
        .expect("redacted ends with an ellipsis");
    assert!(s.starts_with(shown) && shown.len() <= K::PREFIX.len() + 4);
    assert_eq!(format!("{t:?}"), redacted);
    assert!(t == Ticket::<K>::parse(s).expect("parses twice"));
    let key = t.key();
    assert_eq!(key, TicketKey::of(s));
    // The SHA-256 in hex, after the time part of a time-ordered ticket (`ST-0kP3xq-…`).
    let hash = match rest.as_bytes().get(ORDER_LEN) {
        Some(b'-') if rest[..ORDER_LEN].bytes().all(|b| b.is_ascii_alphanumeric()) => {
            let (order, hash) = key.as_str().split_at(ORDER_LEN);
            assert_eq!(order, &rest[..ORDER_LEN]);
            hash
        }
        _ => key.as_str(),
    };
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    true
}

fuzz_target!(|data: &[u8]| {
    let s = text(data);
    let parsed = [
        check::<Service>(&s),
        check::<TicketGranting>(&s),
        check::<Proxy>(&s),
        check::<ProxyGranting>(&s),
        check::<ProxyGrantingIou>(&s),
        check::<Login>(&s),
        check::<AuthorizationCode>(&s),
        check::<AccessToken>(&s),
        check::<RefreshToken>(&s),
    ];
    // The prefixes are distinct: a ticket is of one kind at most.
    assert!(
        parsed.iter().filter(|p| **p).count() <= 1,
        "{s:?} parses as several kinds"
    );
});
