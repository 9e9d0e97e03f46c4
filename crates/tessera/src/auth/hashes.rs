//! Password hashes written by other systems, so their users log in without a password reset:
//! Argon2 (PHC strings), bcrypt, crypt(3) SHA-512 / SHA-256 / MD5, Django's hashers, LDAP
//! `{SSHA}`-style values, unsalted hex digests (django-cas-server's `hex_*`), and plain text where
//! the operator explicitly allows it.
//!
//! Every check compares in constant time (or lets the format's crate do so). The work is CPU-bound:
//! callers run [`verify`] on the blocking pool, never on the async threads. Nothing here logs; the
//! stored value and the password never leave this module in an error.

use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq as _;

/// A password hash format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// `$argon2id$v=19$m=…` (also `$argon2i$`, `$argon2d$`).
    Argon2,
    /// `$2b$12$…` (also `$2a$`, `$2x$`, `$2y$`).
    Bcrypt,
    /// crypt(3) `$6$[rounds=N$]salt$hash`.
    Sha512Crypt,
    /// crypt(3) `$5$[rounds=N$]salt$hash`.
    Sha256Crypt,
    /// crypt(3) `$1$salt$hash` (weak; migrate away).
    Md5Crypt,
    /// Django: `pbkdf2_sha256$ITERATIONS$SALT$HASH`, `pbkdf2_sha1$…`, `argon2$argon2id$…`,
    /// `bcrypt_sha256$$2b$…`, `bcrypt$$2b$…`.
    Django,
    /// LDAP `userPassword` values: `{SSHA}`, `{SHA}`, `{SSHA256}`, `{SHA256}`, `{SSHA512}`,
    /// `{SHA512}`, `{SMD5}`, `{MD5}`, `{CRYPT}` followed by a crypt(3) hash, `{ARGON2}`.
    Ldap,
    /// Lower- or upper-case hex of MD5(password), unsalted.
    HexMd5,
    /// Hex of SHA-1(password), unsalted.
    HexSha1,
    /// Hex of SHA-256(password), unsalted.
    HexSha256,
    /// Hex of SHA-512(password), unsalted.
    HexSha512,
    /// The password itself (only where explicitly allowed).
    Plain,
}

impl HashFormat {
    /// Every format, with its configuration name.
    pub const ALL: [(Self, &'static str); 12] = [
        (Self::Argon2, "argon2"),
        (Self::Bcrypt, "bcrypt"),
        (Self::Sha512Crypt, "sha512-crypt"),
        (Self::Sha256Crypt, "sha256-crypt"),
        (Self::Md5Crypt, "md5-crypt"),
        (Self::Django, "django"),
        (Self::Ldap, "ldap"),
        (Self::HexMd5, "hex-md5"),
        (Self::HexSha1, "hex-sha1"),
        (Self::HexSha256, "hex-sha256"),
        (Self::HexSha512, "hex-sha512"),
        (Self::Plain, "plain"),
    ];

    /// The format of a configuration name (`argon2`, `bcrypt`, `sha512-crypt`, …).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }

    /// Its configuration name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }

    /// The configuration names, for error messages.
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The format a stored value is written in, recognised by its prefix. Unsalted hex digests and
/// plain text have no prefix, so they are never detected: name them explicitly.
pub fn detect(stored: &str) -> Option<HashFormat> {
    let s = stored.trim();
    if s.starts_with("$argon2") {
        Some(HashFormat::Argon2)
    } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        Some(HashFormat::Bcrypt)
    } else if s.starts_with("$6$") {
        Some(HashFormat::Sha512Crypt)
    } else if s.starts_with("$5$") {
        Some(HashFormat::Sha256Crypt)
    } else if s.starts_with("$1$") {
        Some(HashFormat::Md5Crypt)
    } else if [
        "pbkdf2_sha256$",
        "pbkdf2_sha1$",
        "argon2$",
        "bcrypt_sha256$",
        "bcrypt$",
    ]
    .iter()
    .any(|p| s.starts_with(p))
    {
        Some(HashFormat::Django)
    } else if s.starts_with('{') && ldap_scheme(s).is_some() {
        Some(HashFormat::Ldap)
    } else {
        None
    }
}

/// What checking a password against a stored value found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right.
    Match,
    /// The password is wrong.
    Mismatch,
    /// The stored value is in no format allowed here (or malformed): nobody can log in with it.
    Unrecognised,
}

/// Checks `password` against `stored`, written in `format` (`None`: recognised by [`detect`];
/// with `allow_plain`, a value in no known format is then compared as plain text). Plain text is
/// refused unless `allow_plain`, even when `format` names it.
pub fn verify(
    password: &str,
    stored: &str,
    format: Option<HashFormat>,
    allow_plain: bool,
) -> Verification {
    let format = match format.or_else(|| detect(stored)) {
        Some(HashFormat::Plain) | None if allow_plain => HashFormat::Plain,
        Some(HashFormat::Plain) | None => return Verification::Unrecognised,
        Some(f) => f,
    };
    let stored = if format == HashFormat::Plain {
        stored
    } else {
        stored.trim()
    };
    match check(password, stored, format) {
        Some(true) => Verification::Match,
        Some(false) => Verification::Mismatch,
        None => Verification::Unrecognised,
    }
}

/// `Some(matches)`, or `None` when `stored` is not a well-formed value of `format`.
fn check(password: &str, stored: &str, format: HashFormat) -> Option<bool> {
    let pw = password.as_bytes();
    match format {
        HashFormat::Argon2 => argon2_check(pw, stored),
        HashFormat::Bcrypt => bcrypt::verify(pw, stored).ok(),
        HashFormat::Sha512Crypt => sha_crypt_check(password, stored, true),
        HashFormat::Sha256Crypt => sha_crypt_check(password, stored, false),
        HashFormat::Md5Crypt => md5_crypt_check(pw, stored),
        HashFormat::Django => django_check(password, stored),
        HashFormat::Ldap => ldap_check(password, stored),
        HashFormat::HexMd5 => hex_check(&Md5::digest(pw), stored),
        HashFormat::HexSha1 => hex_check(&Sha1::digest(pw), stored),
        HashFormat::HexSha256 => hex_check(&Sha256::digest(pw), stored),
        HashFormat::HexSha512 => hex_check(&Sha512::digest(pw), stored),
        HashFormat::Plain => Some(bool::from(pw.ct_eq(stored.as_bytes()))),
    }
}

fn argon2_check(pw: &[u8], stored: &str) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return None;
    }
    Some(
        argon2::Argon2::default()
            .verify_password(pw, &parsed)
            .is_ok(),
    )
}

/// SHA-crypt (`$5$` / `$6$`, with an optional `rounds=N$`): computed by the `sha-crypt` crate
/// and compared here, in constant time.
fn sha_crypt_check(password: &str, stored: &str, sha512: bool) -> Option<bool> {
    let rest = stored.strip_prefix(if sha512 { "$6$" } else { "$5$" })?;
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r.split_once('$')?;
            (n.parse::<u32>().ok()?, rest)
        }
        None => (5000, rest),
    };
    let (salt, expected) = rest.rsplit_once('$')?;
    // Like glibc: rounds are clamped to 1000..=999999999 and the salt cut at 16 characters.
    let rounds = rounds.clamp(1000, 999_999_999) as usize;
    let salt = salt.get(..salt.len().min(16))?;
    let computed = if sha512 {
        let params = sha_crypt::Sha512Params::new(rounds).ok()?;
        sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params).ok()?
    } else {
        let params = sha_crypt::Sha256Params::new(rounds).ok()?;
        sha_crypt::sha256_crypt_b64(password.as_bytes(), salt.as_bytes(), &params).ok()?
    };
    Some(bool::from(computed.as_bytes().ct_eq(expected.as_bytes())))
}

/// `{SCHEME}` of an LDAP value, upper-cased, and the rest.
fn ldap_scheme(stored: &str) -> Option<(String, &str)> {
    let rest = stored.strip_prefix('{')?;
    let (scheme, value) = rest.split_once('}')?;
    if scheme.is_empty()
        || scheme.len() > 16
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    Some((scheme.to_ascii_uppercase(), value))
}

fn ldap_check(password: &str, stored: &str) -> Option<bool> {
    let (scheme, value) = ldap_scheme(stored)?;
    let pw = password.as_bytes();
    match scheme.as_str() {
        "SHA" => digest_check::<Sha1>(pw, value, false),
        "SSHA" => digest_check::<Sha1>(pw, value, true),
        "SHA256" => digest_check::<Sha256>(pw, value, false),
        "SSHA256" => digest_check::<Sha256>(pw, value, true),
        "SHA512" => digest_check::<Sha512>(pw, value, false),
        "SSHA512" => digest_check::<Sha512>(pw, value, true),
        "MD5" => digest_check::<Md5>(pw, value, false),
        "SMD5" => digest_check::<Md5>(pw, value, true),
        "CRYPT" => match detect(value)? {
            f @ (HashFormat::Sha512Crypt
            | HashFormat::Sha256Crypt
            | HashFormat::Md5Crypt
            | HashFormat::Bcrypt) => check(password, value, f),
            _ => None,
        },
        "ARGON2" => argon2_check(pw, value),
        _ => None,
    }
}

/// `base64(H(password [+ salt]) [+ salt])`: the salt is whatever follows the digest.
fn digest_check<D: Digest>(pw: &[u8], value: &str, salted: bool) -> Option<bool> {
    let decoded = BASE64.decode(value.trim()).ok()?;
    let size = <D as Digest>::output_size();
    if decoded.len() < size || (!salted && decoded.len() != size) {
        return None;
    }
    let (expected, salt) = decoded.split_at(size);
    let mut hasher = D::new();
    hasher.update(pw);
    hasher.update(salt);
    Some(bool::from(hasher.finalize().as_slice().ct_eq(expected)))
}

fn hex_check(digest: &[u8], stored: &str) -> Option<bool> {
    let expected = decode_hex(stored)?;
    if expected.len() != digest.len() {
        return None;
    }
    Some(bool::from(digest.ct_eq(&expected)))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// More PBKDF2 iterations than this in a stored value is taken as corrupt, not computed.
const MAX_PBKDF2_ITERATIONS: u32 = 50_000_000;

fn django_check(password: &str, stored: &str) -> Option<bool> {
    let (algorithm, rest) = stored.split_once('$')?;
    match algorithm {
        "pbkdf2_sha256" | "pbkdf2_sha1" => {
            let mut parts = rest.splitn(3, '$');
            let iterations: u32 = parts.next()?.parse().ok()?;
            let salt = parts.next()?;
            let expected = BASE64.decode(parts.next()?).ok()?;
            if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS || expected.is_empty() {
                return None;
            }
            let mut out = vec![0u8; expected.len()];
            if algorithm == "pbkdf2_sha256" {
                pbkdf2::pbkdf2_hmac::<Sha256>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut out,
                );
            } else {
                pbkdf2::pbkdf2_hmac::<Sha1>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut out,
                );
            }
            Some(bool::from(out.ct_eq(&expected)))
        }
        // Django's Argon2PasswordHasher writes `argon2` + the PHC string without its leading `$`.
        "argon2" => argon2_check(password.as_bytes(), &format!("${rest}")),
        // BCryptSHA256PasswordHasher: bcrypt of the hex SHA-256 of the password; BCryptPasswordHasher:
        // bcrypt of the password. Both write `ALGORITHM$` + the bcrypt string.
        "bcrypt_sha256" => {
            let hex: String = Sha256::digest(password.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            bcrypt::verify(hex.as_bytes(), rest).ok()
        }
        "bcrypt" => bcrypt::verify(password.as_bytes(), rest).ok(),
        _ => None,
    }
}

/// The crypt(3) alphabet.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt (`$1$`, Poul-Henning Kamp's FreeBSD algorithm). No maintained crate implements it on
/// the current RustCrypto digests, and it is short: 1000 rounds of MD5 over password and salt.
fn md5_crypt_check(pw: &[u8], stored: &str) -> Option<bool> {
    let rest = stored.strip_prefix("$1$")?;
    let (salt, expected) = rest.split_once('$')?;
    if salt.len() > 8 || expected.len() != 22 {
        return None;
    }
    let computed = md5_crypt(pw, salt.as_bytes());
    Some(bool::from(computed.as_bytes().ct_eq(expected.as_bytes())))
}

/// The 22-character checksum of MD5-crypt for `pw` and `salt` (at most 8 bytes).
fn md5_crypt(pw: &[u8], salt: &[u8]) -> String {
    let alternate = {
        let mut h = Md5::new();
        h.update(pw);
        h.update(salt);
        h.update(pw);
        h.finalize()
    };
    let mut h = Md5::new();
    h.update(pw);
    h.update(b"$1$");
    h.update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        h.update(&alternate[..n]);
        left -= n;
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            h.update([0u8]);
        } else {
            h.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut digest = h.finalize();
    for round in 0..1000 {
        let mut h = Md5::new();
        if round & 1 == 1 {
            h.update(pw);
        } else {
            h.update(digest);
        }
        if round % 3 != 0 {
            h.update(salt);
        }
        if round % 7 != 0 {
            h.update(pw);
        }
        if round & 1 == 1 {
            h.update(digest);
        } else {
            h.update(pw);
        }
        digest = h.finalize();
    }
    let mut out = String::with_capacity(22);
    let mut push = |value: u32, chars: usize| {
        let mut v = value;
        for _ in 0..chars {
            out.push(char::from(CRYPT64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push(
            (u32::from(digest[a]) << 16) | (u32::from(digest[b]) << 8) | u32::from(digest[c]),
            4,
        );
    }
    push(u32::from(digest[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors made by other implementations: `openssl passwd -1/-5/-6 -salt …`, `slappasswd`,
    // Python's hashlib (Django's algorithm), and the crates' own documentation.
    const PASSWORD: &str = "password";

    #[test]
    fn md5_crypt_matches_openssl() {
        // openssl passwd -1 -salt saltsalt password
        let stored = "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/";
        assert_eq!(detect(stored), Some(HashFormat::Md5Crypt));
        assert_eq!(verify(PASSWORD, stored, None, false), Verification::Match);
        assert_eq!(
            verify("Password", stored, None, false),
            Verification::Mismatch
        );
        // pwhash's documented example (an independent implementation).
        assert_eq!(
            verify(PASSWORD, "$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0", None, false),
            Verification::Match
        );
    }

    #[test]
    fn sha_crypt_matches_openssl() {
        // openssl passwd -6 -salt saltsalt password / openssl passwd -5 -salt saltsalt password
        let six = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
        let five = "$5$saltsalt$gOjOtoMpVhru2uyjeJSEc/JaLQWOXMNmlOnj6T4AtC.";
        assert_eq!(verify(PASSWORD, six, None, false), Verification::Match);
        assert_eq!(verify(PASSWORD, five, None, false), Verification::Match);
        assert_eq!(verify("nope", six, None, false), Verification::Mismatch);
        assert_eq!(verify("nope", five, None, false), Verification::Mismatch);
        let params = sha_crypt::Sha512Params::new(5000).unwrap();
        let generated = sha_crypt::sha512_simple("s3cret", &params).unwrap();
        assert_eq!(
            verify("s3cret", &generated, None, false),
            Verification::Match
        );
    }

    #[test]
    fn django_pbkdf2_matches_python() {
        // hashlib.pbkdf2_hmac('sha256', b'password', b'seasalt', 1000) in Django's layout.
        let stored = "pbkdf2_sha256$1000$seasalt$YIWkt6M1JFXrHg5s0jZjBSc7C2Cz6QvchSJ0h8Y+i7c=";
        assert_eq!(detect(stored), Some(HashFormat::Django));
        assert_eq!(verify(PASSWORD, stored, None, false), Verification::Match);
        assert_eq!(verify("wrong", stored, None, false), Verification::Mismatch);
        assert_eq!(
            verify(PASSWORD, "pbkdf2_sha256$x$salt$AAAA", None, false),
            Verification::Unrecognised
        );
    }

    #[test]
    fn ldap_values() {
        // slappasswd -h {SSHA} -s password (salt chosen by slappasswd).
        let ssha = "{SSHA}vCMjQ0zyg2UcnymEFOzvHEEBFAzJ/28l";
        // base64(sha1("password"))
        let sha = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=";
        for stored in [ssha, sha] {
            assert_eq!(detect(stored), Some(HashFormat::Ldap), "{stored}");
            assert_eq!(
                verify(PASSWORD, stored, None, false),
                Verification::Match,
                "{stored}"
            );
            assert_eq!(
                verify("x", stored, None, false),
                Verification::Mismatch,
                "{stored}"
            );
        }
        assert_eq!(
            verify(
                PASSWORD,
                "{CRYPT}$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/",
                None,
                false
            ),
            Verification::Match
        );
        assert_eq!(
            verify(PASSWORD, "{NOPE}abc", None, false),
            Verification::Unrecognised
        );
    }

    #[test]
    fn hex_digests_only_when_named() {
        let md5 = "5f4dcc3b5aa765d61d8327deb882cf99";
        assert_eq!(detect(md5), None);
        assert_eq!(
            verify(PASSWORD, md5, None, false),
            Verification::Unrecognised
        );
        assert_eq!(
            verify(PASSWORD, md5, Some(HashFormat::HexMd5), false),
            Verification::Match
        );
        assert_eq!(
            verify(
                PASSWORD,
                "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8",
                Some(HashFormat::HexSha1),
                false
            ),
            Verification::Match
        );
    }

    #[test]
    fn plain_text_needs_permission() {
        assert_eq!(
            verify(PASSWORD, PASSWORD, None, false),
            Verification::Unrecognised
        );
        assert_eq!(
            verify(PASSWORD, PASSWORD, Some(HashFormat::Plain), false),
            Verification::Unrecognised
        );
        assert_eq!(verify(PASSWORD, PASSWORD, None, true), Verification::Match);
        assert_eq!(
            verify("other", PASSWORD, None, true),
            Verification::Mismatch
        );
        // A value in a known format is never compared as text.
        let sha = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=";
        assert_eq!(verify(sha, sha, None, true), Verification::Mismatch);
    }

    #[test]
    fn bcrypt_and_argon2() {
        let b = bcrypt::hash(PASSWORD, 4).unwrap();
        assert_eq!(detect(&b), Some(HashFormat::Bcrypt));
        assert_eq!(verify(PASSWORD, &b, None, false), Verification::Match);
        assert_eq!(verify("x", &b, None, false), Verification::Mismatch);
        // A $2y$ value (PHP's password_hash), from the bcrypt crate's tests.
        assert_eq!(
            verify(
                "hunter2",
                "$2y$04$/ECALbDR5qdwSsVSMkGWSeeF.n0F2HSlDDW6OGYrnYuIk6SSiO7pa",
                None,
                false
            ),
            Verification::Mismatch
        );
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let a = argon2::Argon2::default()
            .hash_password(PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(detect(&a), Some(HashFormat::Argon2));
        assert_eq!(verify(PASSWORD, &a, None, false), Verification::Match);
        let django = format!("argon2{a}");
        assert_eq!(verify(PASSWORD, &django, None, false), Verification::Match);
    }

    #[test]
    fn format_names_round_trip() {
        for (f, n) in HashFormat::ALL {
            assert_eq!(HashFormat::parse(n), Some(f));
            assert_eq!(f.name(), n);
        }
        assert_eq!(HashFormat::parse("sha1"), None);
    }
}
