//! Ticket identifiers (CAS 3.0 §3): made from caller-supplied randomness, compared in constant time,
//! printed redacted, and stored only as a hash.
//!
//! Every ticket is a prefix (`ST-`, `TGT-`, …) followed by base62 characters, so it satisfies the
//! strictest client charset (`[A-Za-z0-9-]`, trap T6) and carries at least 128 bits of entropy. The
//! store keys tickets by [`TicketKey`], the SHA-256 of the ticket, so a database lookup compares
//! hashes, never the secret itself, and a copy of the database holds no usable ticket.
//!
//! Tickets issued and used by the thousand (service, proxy and login tickets, authorization codes,
//! tokens) are made with [`Ticket::generate_at`]: after the prefix come six characters that follow
//! the time of issue and a dash (`ST-0kP3xq-…`), then the random part. Their key starts with those
//! six characters, so the store's index files tickets issued together side by side and a busy
//! server writes a few pages per batch of tickets instead of one page per ticket scattered across
//! the whole index. The time part is not secret and adds no entropy; the random part alone still
//! carries more than 128 bits.

use std::fmt;
use std::marker::PhantomData;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::time::Timestamp;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from the base62 alphabet (rejection sampling, no modulo bias).
pub fn random_base62(rng: &mut (impl RngCore + CryptoRng), len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 248 = 4 * 62: bytes at or above it would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// A kind of ticket: its prefix and how many characters follow it.
pub trait TicketKind {
    /// The literal prefix, with its dash.
    const PREFIX: &'static str;
    /// Base62 characters after the prefix (each carries log2(62) ≈ 5.95 bits). A time-ordered
    /// ticket ([`Ticket::generate_at`]) spends [`ORDER_LEN`] + 1 of them on its time part, so both
    /// layouts have the same length.
    const RANDOM_LEN: usize;
}

/// Base62 characters of a time-ordered ticket's time part: milliseconds modulo 62⁶ (they wrap
/// every 657 days, which only means that tickets issued across the wrap are not filed together).
pub const ORDER_LEN: usize = 6;

/// The random characters a time-ordered ticket keeps: at least 22, 131 bits.
const fn ordered_random_len(random_len: usize) -> usize {
    let left = random_len - ORDER_LEN - 1;
    assert!(
        left >= 22,
        "a time-ordered ticket must keep 128 bits of randomness"
    );
    left
}

/// The time part of a ticket issued at `now`.
fn order_chars(now: Timestamp) -> [u8; ORDER_LEN] {
    const WRAP: i64 = 62_i64.pow(ORDER_LEN as u32);
    let mut left = now.unix_millis().rem_euclid(WRAP);
    let mut out = [b'0'; ORDER_LEN];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[usize::try_from(left % 62).unwrap_or(0)];
        left /= 62;
    }
    out
}

/// An identifier that sorts by `now`: the time part of a ticket issued then, and `random_len`
/// random base62 characters. For rows the store files by id (grants), so those made together are
/// stored together.
pub fn time_ordered_id(
    now: Timestamp,
    rng: &mut (impl RngCore + CryptoRng),
    random_len: usize,
) -> String {
    let mut id = String::with_capacity(ORDER_LEN + random_len);
    id.extend(order_chars(now).map(char::from));
    id.push_str(&random_base62(rng, random_len));
    id
}

/// The time part of a time-ordered ticket (`ST-0kP3xq-…` → `0kP3xq`), or `None` for a ticket of
/// the purely random layout (or anything else).
fn order_part(ticket: &str) -> Option<&str> {
    let (_, rest) = ticket.split_once('-')?;
    let order = rest.get(..ORDER_LEN)?;
    let ordered = rest.as_bytes().get(ORDER_LEN) == Some(&b'-')
        && order.bytes().all(|b| b.is_ascii_alphanumeric());
    ordered.then_some(order)
}

/// Service ticket: `ST-` + 29 characters, 32 in all, the length every client must accept (CAS 3.0
/// §3.1.1): ≈ 172 random bits, or ≈ 131 after the time part of [`Ticket::generate_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {}
impl TicketKind for Service {
    const PREFIX: &'static str = "ST-";
    const RANDOM_LEN: usize = 29;
}

/// Ticket-granting ticket, the SSO session's secret held in the TGC cookie (≈ 285 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketGranting {}
impl TicketKind for TicketGranting {
    const PREFIX: &'static str = "TGT-";
    const RANDOM_LEN: usize = 48;
}

/// Proxy ticket: `PT-` + 29 characters, like a service ticket (CAS 3.0 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {}
impl TicketKind for Proxy {
    const PREFIX: &'static str = "PT-";
    const RANDOM_LEN: usize = 29;
}

/// Proxy-granting ticket: `PGT-` + 60 characters, 64 in all (CAS 3.0 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyGranting {}
impl TicketKind for ProxyGranting {
    const PREFIX: &'static str = "PGT-";
    const RANDOM_LEN: usize = 60;
}

/// Proxy-granting ticket IOU: `PGTIOU-` + 57 characters, 64 in all, drawn independently of its PGT
/// (CAS 3.0 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyGrantingIou {}
impl TicketKind for ProxyGrantingIou {
    const PREFIX: &'static str = "PGTIOU-";
    const RANDOM_LEN: usize = 57;
}

/// Login ticket: the one-time token of a rendered form (CAS 3.0 §3.5), also its CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {}
impl TicketKind for Login {
    const PREFIX: &'static str = "LT-";
    const RANDOM_LEN: usize = 29;
}

/// OpenID Connect authorization code: `OC-` + 43 characters (≈ 256 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationCode {}
impl TicketKind for AuthorizationCode {
    const PREFIX: &'static str = "OC-";
    const RANDOM_LEN: usize = 43;
}

/// OAuth access token (opaque): `AT-` + 43 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessToken {}
impl TicketKind for AccessToken {
    const PREFIX: &'static str = "AT-";
    const RANDOM_LEN: usize = 43;
}

/// OAuth refresh token (opaque): `RT-` + 60 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshToken {}
impl TicketKind for RefreshToken {
    const PREFIX: &'static str = "RT-";
    const RANDOM_LEN: usize = 60;
}

/// A ticket of kind `K`. Holds a syntactically valid value; says nothing about whether it is stored.
pub struct Ticket<K> {
    value: String,
    kind: PhantomData<K>,
}

/// A service ticket (`ST-…`).
pub type ServiceTicketId = Ticket<Service>;
/// A ticket-granting ticket (`TGT-…`).
pub type TicketGrantingTicketId = Ticket<TicketGranting>;
/// A proxy ticket (`PT-…`).
pub type ProxyTicketId = Ticket<Proxy>;
/// A proxy-granting ticket (`PGT-…`).
pub type ProxyGrantingTicketId = Ticket<ProxyGranting>;
/// A proxy-granting ticket IOU (`PGTIOU-…`).
pub type PgtIou = Ticket<ProxyGrantingIou>;
/// A login ticket (`LT-…`).
pub type LoginTicketId = Ticket<Login>;
/// An authorization code (`OC-…`).
pub type AuthorizationCodeId = Ticket<AuthorizationCode>;
/// An access token (`AT-…`).
pub type AccessTokenId = Ticket<AccessToken>;
/// A refresh token (`RT-…`).
pub type RefreshTokenId = Ticket<RefreshToken>;

impl<K: TicketKind> Ticket<K> {
    /// A fresh ticket from `rng`, which must be a cryptographic RNG seeded by the OS: the prefix
    /// and [`TicketKind::RANDOM_LEN`] random characters.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut value = String::with_capacity(K::PREFIX.len() + K::RANDOM_LEN);
        value.push_str(K::PREFIX);
        value.push_str(&random_base62(rng, K::RANDOM_LEN));
        Self {
            value,
            kind: PhantomData,
        }
    }

    /// A fresh time-ordered ticket issued at `now` (see the module documentation): the prefix,
    /// the time part, a dash and the random characters from `rng`, the same length as
    /// [`Ticket::generate`]'s.
    pub fn generate_at(now: Timestamp, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let random_len = const { ordered_random_len(K::RANDOM_LEN) };
        let mut value = String::with_capacity(K::PREFIX.len() + K::RANDOM_LEN);
        value.push_str(K::PREFIX);
        value.extend(order_chars(now).map(char::from));
        value.push('-');
        value.push_str(&random_base62(rng, random_len));
        Self {
            value,
            kind: PhantomData,
        }
    }

    /// Accepts `s` when it has this kind's prefix followed by 1 to 256 characters of `[A-Za-z0-9-]`.
    /// Length is not pinned to what we issue, so a forged or foreign ticket is simply not found.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(K::PREFIX)?;
        let ok = !rest.is_empty()
            && rest.len() <= 256
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| Self {
            value: s.to_owned(),
            kind: PhantomData,
        })
    }

    /// The ticket as it goes on the wire. Never log it; log [`Ticket::redacted`].
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The prefix and a few characters, enough to correlate log lines, useless to an attacker.
    pub fn redacted(&self) -> String {
        let shown = (K::PREFIX.len() + 4).min(self.value.len());
        format!("{}…", &self.value[..shown])
    }

    /// The key the store files this ticket under.
    pub fn key(&self) -> TicketKey {
        TicketKey::of(&self.value)
    }
}

impl<K> Clone for Ticket<K> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for Ticket<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value.as_bytes().ct_eq(other.value.as_bytes()).into()
    }
}
impl<K> Eq for Ticket<K> {}

impl<K: TicketKind> fmt::Debug for Ticket<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// What the store keeps and looks tickets up by: the SHA-256 of the ticket in lowercase hex, after
/// the time part of a time-ordered ticket (`0kP3xq` + 64 hex digits), so keys sort by time of issue.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketKey(String);

impl TicketKey {
    /// The key of the ticket text `ticket`.
    pub fn of(ticket: &str) -> Self {
        let digest = Sha256::digest(ticket.as_bytes());
        let order = order_part(ticket).unwrap_or("");
        let mut hex = String::with_capacity(order.len() + 64);
        hex.push_str(order);
        for b in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Self(hex)
    }

    /// A key read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketKey({}…)", &self.0[..8.min(self.0.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn service_tickets_are_32_safe_characters() {
        let mut rng = StdRng::seed_from_u64(7);
        let st = ServiceTicketId::generate(&mut rng);
        assert_eq!(st.as_str().len(), 32);
        assert!(st.as_str().starts_with("ST-"));
        assert!(st.as_str()[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(st, ServiceTicketId::generate(&mut rng));
    }

    #[test]
    fn proxy_tickets_fit_what_clients_store() {
        let mut rng = StdRng::seed_from_u64(9);
        assert_eq!(ProxyTicketId::generate(&mut rng).as_str().len(), 32);
        assert_eq!(ProxyGrantingTicketId::generate(&mut rng).as_str().len(), 64);
        let iou = PgtIou::generate(&mut rng);
        assert_eq!(iou.as_str().len(), 64);
        assert!(iou.as_str().starts_with("PGTIOU-"));
    }

    #[test]
    fn parse_takes_only_its_own_prefix_and_charset() {
        assert!(ServiceTicketId::parse("ST-abc123").is_some());
        assert!(ServiceTicketId::parse("PT-abc123").is_none());
        assert!(ServiceTicketId::parse("ST-").is_none());
        assert!(ServiceTicketId::parse("ST-ab_c").is_none());
        assert!(ServiceTicketId::parse("ST-ab c").is_none());
        assert!(ServiceTicketId::parse(&format!("ST-{}", "a".repeat(257))).is_none());
        assert!(TicketGrantingTicketId::parse("ST-abc").is_none());
    }

    #[test]
    fn debug_never_shows_the_whole_ticket() {
        let st = ServiceTicketId::parse("ST-abcdefghijklmnop").unwrap();
        assert_eq!(format!("{st:?}"), "ST-abcd…");
    }

    #[test]
    fn time_ordered_tickets_keep_their_length_and_sort_by_time() {
        let mut rng = StdRng::seed_from_u64(11);
        let at = |ms| Timestamp::from_unix_millis(ms);
        let now = 1_796_000_000_000;
        let st = ServiceTicketId::generate_at(at(now), &mut rng);
        assert_eq!(st.as_str().len(), 32, "{}", st.as_str());
        assert_eq!(st.as_str().as_bytes()[9], b'-');
        assert!(st.as_str()[10..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(ServiceTicketId::parse(st.as_str()).is_some());
        assert_eq!(
            ProxyTicketId::generate_at(at(now), &mut rng).as_str().len(),
            32
        );
        assert_eq!(
            AuthorizationCodeId::generate_at(at(now), &mut rng)
                .as_str()
                .len(),
            AuthorizationCodeId::generate(&mut rng).as_str().len()
        );

        // Keys follow the time of issue, millisecond by millisecond, whatever the random part.
        let keys: Vec<TicketKey> = [now, now + 1, now + 1_000, now + 86_400_000]
            .into_iter()
            .map(|ms| ServiceTicketId::generate_at(at(ms), &mut rng).key())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(keys[0].as_str().len(), ORDER_LEN + 64);
        assert_eq!(&keys[0].as_str()[..ORDER_LEN], &st.as_str()[3..9]);
    }

    #[test]
    fn keys_of_both_layouts_never_meet() {
        // A random-layout ticket (every ticket issued before time-ordered ones existed) keeps
        // its plain hash; a dash elsewhere or a short ticket is not mistaken for a time part.
        assert_eq!(TicketKey::of("ST-abcdefghij").as_str().len(), 64);
        assert_eq!(TicketKey::of("ST-abcde-fghij").as_str().len(), 64);
        assert_eq!(TicketKey::of("ST-abcdef").as_str().len(), 64);
        assert_eq!(TicketKey::of("ST-ab_def-ghij").as_str().len(), 64);
        let ordered = TicketKey::of("ST-abcdef-ghij");
        assert_eq!(ordered.as_str().len(), 70);
        assert!(ordered.as_str().starts_with("abcdef"));
        let digest: String = Sha256::digest(b"ST-abcdef-ghij")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&ordered.as_str()[6..], digest);
    }

    #[test]
    fn keys_are_sha256_hex() {
        assert_eq!(
            TicketKey::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base62_is_roughly_uniform() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = random_base62(&mut rng, 62_000);
        let zeros = s.bytes().filter(|&b| b == b'0').count();
        let zs = s.bytes().filter(|&b| b == b'z').count();
        assert!(
            (800..1200).contains(&zeros) && (800..1200).contains(&zs),
            "{zeros} {zs}"
        );
    }
}
