//! JOSE signing keys of the OpenID Connect provider: generation, PKCS#8 PEM loading, the public
//! JWK / JWKS documents, compact JWS signing (ID tokens, logout tokens) and verification of tokens
//! Tessera issued itself (`id_token_hint`).
//!
//! Rules followed (see the OIDC interop reference, §1.10, §3 rules 8 and 12, §4 traps 5, 6, 11):
//!
//! * RS256 keys are RSA ≥ 2048 bits, ES256 keys are P-256; every JWK carries `kid`, `alg` and
//!   `use: "sig"`, and never a private parameter.
//! * The `kid` of a generated key is its RFC 7638 JWK thumbprint, so it is unique and never reused.
//! * Every JWS header carries `kid`, `alg` and `typ`; ES256 signatures are 64-byte `R || S`.
//! * Rotation is driven by time: a key is published in the JWKS as soon as it is loaded (even if it
//!   only starts signing later: pre-publication), signs from `active_from` until `retired_at`, stays
//!   published for a grace period after retirement, and stays in the set (so `id_token_hint`s it
//!   signed still verify) for as long as the caller keeps loading it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rand::rngs::OsRng;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use tessera_protocol::oidc::SigningAlg;
use tessera_protocol::Timestamp;

/// Size of generated RSA keys, and the smallest RSA key [`SigningKey::from_pem`] accepts.
pub const RSA_BITS: usize = 2048;

/// What can go wrong with signing keys and tokens.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation failed (the OS random source or the key arithmetic).
    #[error("generating a {alg} signing key failed: {reason}")]
    Generate {
        /// The algorithm the key was for.
        alg: SigningAlg,
        /// What failed.
        reason: String,
    },
    /// A key's `kid` is empty.
    #[error("a signing key has an empty kid")]
    EmptyKid,
    /// The PEM text is not a usable PKCS#8 private key of the expected algorithm.
    #[error("signing key {kid:?}: not a usable PKCS#8 PEM {alg} private key: {reason}")]
    InvalidKey {
        /// The key's id.
        kid: String,
        /// The algorithm the key is declared for.
        alg: SigningAlg,
        /// What is wrong with it.
        reason: String,
    },
    /// Two keys of one key set share a `kid`.
    #[error("signing key id {0:?} appears more than once")]
    DuplicateKid(String),
    /// The claims could not be serialised to a JSON object.
    #[error("token claims are not a JSON object: {0}")]
    Claims(String),
    /// Signing failed.
    #[error("signing with key {kid:?} failed: {reason}")]
    Sign {
        /// The key's id.
        kid: String,
        /// What failed.
        reason: String,
    },
    /// A token presented for verification was rejected.
    #[error("token rejected: {0}")]
    BadToken(String),
}

/// A freshly generated private key.
pub struct GeneratedKey {
    /// RFC 7638 JWK SHA-256 thumbprint of the public key (base64url, no padding).
    pub kid: String,
    /// The algorithm the key signs with.
    pub alg: SigningAlg,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), LF line endings.
    pub private_pem: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pem", &"<redacted>")
            .finish()
    }
}

/// Generates a signing key: RSA 2048-bit (e = 65537) for RS256, P-256 for ES256, from the OS
/// random source. The `kid` is the RFC 7638 thumbprint of the public key.
///
/// RSA generation is CPU-heavy (tens to hundreds of milliseconds, seconds without optimisation):
/// async callers must run it in `tokio::task::spawn_blocking`.
pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, KeyError> {
    let fail = |reason: String| KeyError::Generate { alg, reason };
    let (private_pem, public) = match alg {
        SigningAlg::Rs256 => {
            let key =
                rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS).map_err(|e| fail(e.to_string()))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| fail(e.to_string()))?;
            (pem.to_string(), PublicParams::rsa(&key))
        }
        SigningAlg::Es256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| fail(e.to_string()))?;
            (pem.to_string(), PublicParams::ec(&key).map_err(fail)?)
        }
    };
    Ok(GeneratedKey {
        kid: public.thumbprint(),
        alg,
        private_pem,
    })
}

/// The public parameters of a key, base64url without padding, as they appear in the JWK.
#[derive(Clone)]
enum PublicParams {
    Rsa { n: String, e: String },
    Ec { x: String, y: String },
}

impl PublicParams {
    fn rsa(key: &rsa::RsaPrivateKey) -> Self {
        // `to_bytes_be` is the minimal unsigned big-endian form: no leading zero byte.
        Self::Rsa {
            n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }
    }

    fn ec(key: &p256::SecretKey) -> Result<Self, String> {
        let point = key.public_key().to_encoded_point(false);
        // Uncompressed SEC1 coordinates are field elements: exactly 32 bytes, left-padded.
        match (point.x(), point.y()) {
            (Some(x), Some(y)) => Ok(Self::Ec {
                x: URL_SAFE_NO_PAD.encode(x),
                y: URL_SAFE_NO_PAD.encode(y),
            }),
            _ => Err("the public key is the point at infinity".to_owned()),
        }
    }

    /// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Self::Ec { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// One loaded signing key. The private part never leaves it: `Debug` shows only `kid` and `alg`.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    public: PublicParams,
    signer: Signer,
    decoding: DecodingKey,
}

/// The private key, parsed once at load: signing is then only the signature itself (parsing a
/// PKCS#8 key on every signature cost more than the signature).
#[derive(Clone)]
enum Signer {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    /// ring's P-256: a signature takes a fraction of the time of the pure-Rust p256 crate's.
    Ec(Arc<ring::signature::EcdsaKeyPair>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn jose_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::Rs256 => Algorithm::RS256,
        SigningAlg::Es256 => Algorithm::ES256,
    }
}

impl SigningKey {
    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`) for `alg`: an RSA key of at
    /// least 2048 bits for RS256, a P-256 key for ES256. Errors name the `kid`.
    pub fn from_pem(kid: &str, alg: SigningAlg, private_pem: &str) -> Result<Self, KeyError> {
        if kid.is_empty() {
            return Err(KeyError::EmptyKid);
        }
        let invalid = |reason: String| KeyError::InvalidKey {
            kid: kid.to_owned(),
            alg,
            reason,
        };
        let (public, signer, decoding) = match alg {
            SigningAlg::Rs256 => {
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(private_pem.trim())
                    .map_err(|e| invalid(e.to_string()))?;
                key.validate().map_err(|e| invalid(e.to_string()))?;
                let bits = key.n().bits();
                if bits < RSA_BITS {
                    return Err(invalid(format!(
                        "the RSA modulus has {bits} bits, at least {RSA_BITS} are required"
                    )));
                }
                let decoding = DecodingKey::from_rsa_raw_components(
                    &key.n().to_bytes_be(),
                    &key.e().to_bytes_be(),
                );
                let public = PublicParams::rsa(&key);
                (
                    public,
                    Signer::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key))),
                    decoding,
                )
            }
            SigningAlg::Es256 => {
                let key = p256::SecretKey::from_pkcs8_pem(private_pem.trim())
                    .map_err(|e| invalid(e.to_string()))?;
                let public = PublicParams::ec(&key).map_err(invalid)?;
                let decoding = match &public {
                    PublicParams::Ec { x, y } => {
                        DecodingKey::from_ec_components(x, y).map_err(|e| invalid(e.to_string()))?
                    }
                    PublicParams::Rsa { .. } => {
                        return Err(invalid("internal: EC key with RSA parameters".to_owned()))
                    }
                };
                let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &key.to_bytes(),
                    key.public_key().to_encoded_point(false).as_bytes(),
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| invalid(format!("the P-256 key is not usable: {e}")))?;
                (public, Signer::Ec(Arc::new(pair)), decoding)
            }
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            public,
            signer,
            decoding,
        })
    }

    /// The key id, carried in every JWS header and JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The RFC 7638 JWK SHA-256 thumbprint of the public key (base64url, no padding). Equal to
    /// the `kid` of keys made by [`generate`].
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// The public JWK: RSA `{kty, use: "sig", alg, kid, n, e}` or EC
    /// `{kty: "EC", use: "sig", alg, kid, crv: "P-256", x, y}`, base64url without padding, RSA `n`
    /// without a leading zero byte, EC `x`/`y` exactly 32 bytes. Never any private parameter.
    pub fn public_jwk(&self) -> Value {
        match &self.public {
            PublicParams::Rsa { n, e } => json!({
                "kty": "RSA",
                "use": "sig",
                "alg": self.alg.as_str(),
                "kid": self.kid,
                "n": n,
                "e": e,
            }),
            PublicParams::Ec { x, y } => json!({
                "kty": "EC",
                "use": "sig",
                "alg": self.alg.as_str(),
                "kid": self.kid,
                "crv": "P-256",
                "x": x,
                "y": y,
            }),
        }
    }

    /// A compact JWS with header `{"typ": typ, "alg", "kid"}` over the JSON of `claims`, which
    /// must serialise to a JSON object. `typ` is `JWT` for ID tokens and `logout+jwt` for logout
    /// tokens. ES256 signatures are the 64-byte `R || S` form.
    pub fn sign<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let claims = serde_json::to_value(claims).map_err(|e| KeyError::Claims(e.to_string()))?;
        if !claims.is_object() {
            return Err(KeyError::Claims(format!("got {}", json_kind(&claims))));
        }
        #[derive(serde::Serialize)]
        struct JwsHeader<'a> {
            typ: &'a str,
            alg: &'a str,
            kid: &'a str,
        }
        let header = JwsHeader {
            typ,
            alg: self.alg.as_str(),
            kid: &self.kid,
        };
        let header = serde_json::to_vec(&header).map_err(|e| KeyError::Claims(e.to_string()))?;
        let claims = serde_json::to_vec(&claims).map_err(|e| KeyError::Claims(e.to_string()))?;
        let mut jws = URL_SAFE_NO_PAD.encode(header);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut jws);
        let signature = match &self.signer {
            Signer::Rsa(key) => {
                use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
                // Blinded with fresh randomness, against timing attacks on the private exponent.
                key.try_sign_with_rng(&mut OsRng, jws.as_bytes())
                    .map(|s| s.to_vec())
                    .map_err(|e| KeyError::Sign {
                        kid: self.kid.clone(),
                        reason: e.to_string(),
                    })?
            }
            Signer::Ec(pair) => pair
                .sign(&ring::rand::SystemRandom::new(), jws.as_bytes())
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| KeyError::Sign {
                    kid: self.kid.clone(),
                    reason: e.to_string(),
                })?,
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }

    /// Checks the signature of `token` with this key (the caller has matched `kid` and `alg`).
    fn verify_signature(&self, token: &str) -> Result<Value, KeyError> {
        let mut validation = Validation::new(jose_alg(self.alg));
        validation.algorithms = vec![jose_alg(self.alg)];
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    KeyError::BadToken(format!("bad signature for key {:?}", self.kid))
                }
                _ => KeyError::BadToken(format!("malformed token: {e}")),
            })
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A key as stored: the private key and the times that drive rotation.
#[derive(Clone)]
pub struct KeyEntry {
    /// The key id.
    pub kid: String,
    /// The algorithm the key signs with.
    pub alg: SigningAlg,
    /// The private key, PKCS#8 PEM.
    pub private_pem: String,
    /// When the key starts signing (it is published in the JWKS before that).
    pub active_from: Timestamp,
    /// When the key stopped signing, if it did.
    pub retired_at: Option<Timestamp>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pem", &"<redacted>")
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct LoadedKey {
    key: SigningKey,
    active_from: Timestamp,
    retired_at: Option<Timestamp>,
}

impl LoadedKey {
    fn signs_at(&self, now: Timestamp) -> bool {
        self.active_from <= now && self.retired_at.is_none_or(|r| r > now)
    }
}

/// The loaded keys of the deployment at one moment.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// Loads stored entries. A bad PEM, an empty or a duplicate `kid` is an error naming the key.
    pub fn load(entries: &[KeyEntry]) -> Result<Self, KeyError> {
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            if !seen.insert(entry.kid.as_str()) {
                return Err(KeyError::DuplicateKid(entry.kid.clone()));
            }
            keys.push(LoadedKey {
                key: SigningKey::from_pem(&entry.kid, entry.alg, &entry.private_pem)?,
                active_from: entry.active_from,
                retired_at: entry.retired_at,
            });
        }
        Ok(Self { keys })
    }

    /// The key that signs for `alg` at `now`: among the keys of that algorithm with
    /// `active_from <= now` and not retired (`retired_at` unset or later than `now`), the one
    /// that became active last (ties: the greatest `kid`). `None` if there is none.
    pub fn signer(&self, alg: SigningAlg, now: Timestamp) -> Option<&SigningKey> {
        let newest = self
            .keys
            .iter()
            .filter(|k| k.key.alg == alg && k.signs_at(now))
            .max_by(|a, b| {
                a.active_from
                    .cmp(&b.active_from)
                    .then_with(|| a.key.kid.cmp(&b.key.kid))
            });
        // No active key (a deployment whose only key was published for later): the published key
        // that would sign first is better than refusing to sign.
        newest
            .or_else(|| {
                self.keys
                    .iter()
                    .filter(|k| k.key.alg == alg && k.retired_at.is_none_or(|r| r > now))
                    .min_by(|a, b| a.active_from.cmp(&b.active_from))
            })
            .map(|k| &k.key)
    }

    /// The JWKS document `{"keys": [...]}`: every key not retired at `now` (including keys whose
    /// `active_from` is still in the future: pre-publication), plus retired keys while
    /// `retired_at + keep_published > now`, so tokens they signed still verify at relying parties.
    /// Ordered by algorithm (RS256 first), then newest `active_from` first.
    pub fn jwks(&self, now: Timestamp, keep_published: Duration) -> Value {
        let mut published: Vec<&LoadedKey> = self
            .keys
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| r.plus(keep_published) > now))
            .collect();
        published.sort_by(|a, b| {
            alg_rank(a.key.alg)
                .cmp(&alg_rank(b.key.alg))
                .then_with(|| b.active_from.cmp(&a.active_from))
                .then_with(|| a.key.kid.cmp(&b.key.kid))
        });
        let keys: Vec<Value> = published.iter().map(|k| k.key.public_jwk()).collect();
        json!({ "keys": keys })
    }

    /// Verifies a compact JWS that Tessera issued. The header `kid` must name a key of this set
    /// (in any state, retired included), the header `alg` must be that key's algorithm (`none`,
    /// `HS*` or any other value is rejected), the signature must verify and the payload must be a
    /// JSON object. `exp`, `nbf`, `iat`, `iss` and `aud` are not checked here: the caller checks
    /// `iss`/`aud`, and expired `id_token_hint`s are acceptable (RP-Initiated Logout).
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, KeyError> {
        let bad = |msg: String| KeyError::BadToken(msg);
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, _, _] = parts.as_slice() else {
            return Err(bad(format!(
                "malformed token: {} dot-separated parts instead of 3",
                parts.len()
            )));
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|e| bad(format!("malformed token: header is not base64url: {e}")))?;
        let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
            .map_err(|e| bad(format!("malformed token: header is not a JSON object: {e}")))?;
        if header.contains_key("crit") {
            return Err(bad(
                "unsupported critical header parameters (crit)".to_owned()
            ));
        }
        let Some(Value::String(alg)) = header.get("alg") else {
            return Err(bad("malformed token: header has no alg".to_owned()));
        };
        let Some(Value::String(kid)) = header.get("kid") else {
            return Err(bad("header has no kid".to_owned()));
        };
        let Some(key) = self.keys.iter().map(|k| &k.key).find(|k| k.kid == *kid) else {
            return Err(bad(format!("unknown kid {kid:?}")));
        };
        if alg != key.alg.as_str() {
            return Err(bad(format!(
                "alg {alg:?} does not match the {} key {kid:?}",
                key.alg
            )));
        }
        match key.verify_signature(token)? {
            Value::Object(claims) => Ok(claims),
            other => Err(bad(format!(
                "payload is {}, not a JSON object",
                json_kind(&other)
            ))),
        }
    }

    /// Whether the set holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s of every key of the set, in load order.
    pub fn kids(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.iter().map(|k| k.key.kid.as_str())
    }
}

fn alg_rank(alg: SigningAlg) -> usize {
    SigningAlg::ALL
        .iter()
        .position(|a| *a == alg)
        .unwrap_or(SigningAlg::ALL.len())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::Instant;

    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    fn rsa_key(slot: usize) -> &'static GeneratedKey {
        static KEYS: [OnceLock<GeneratedKey>; 2] = [OnceLock::new(), OnceLock::new()];
        KEYS[slot].get_or_init(|| {
            let started = Instant::now();
            let key = generate(SigningAlg::Rs256).unwrap();
            eprintln!("RSA-2048 generation took {:?}", started.elapsed());
            key
        })
    }

    fn ec_key() -> GeneratedKey {
        generate(SigningAlg::Es256).unwrap()
    }

    fn loaded(g: &GeneratedKey) -> SigningKey {
        SigningKey::from_pem(&g.kid, g.alg, &g.private_pem).unwrap()
    }

    fn entry(g: &GeneratedKey, active_from: i64, retired_at: Option<i64>) -> KeyEntry {
        KeyEntry {
            kid: g.kid.clone(),
            alg: g.alg,
            private_pem: g.private_pem.clone(),
            active_from: ts(active_from),
            retired_at: retired_at.map(ts),
        }
    }

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn segment_json(token: &str, i: usize) -> Value {
        serde_json::from_slice(&b64(token.split('.').nth(i).unwrap())).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "https://sso.example.org", "sub": "alice", "aud": "app", "exp": 1, "iat": 0})
    }

    fn is_b64url_thumbprint(s: &str) -> bool {
        s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        let params = PublicParams::Rsa {
            n: concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B",
                "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F",
                "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4",
                "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            )
            .to_owned(),
            e: "AQAB".to_owned(),
        };
        assert_eq!(
            params.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_keys_have_thumbprint_kids() {
        for g in [rsa_key(0), &ec_key()] {
            assert!(is_b64url_thumbprint(&g.kid), "{}", g.kid);
            assert!(g.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let key = loaded(g);
            // Same key, same kid: reloading the PEM gives the thumbprint back.
            assert_eq!(key.thumbprint(), g.kid);
            assert_eq!(loaded(g).thumbprint(), g.kid);
            assert_eq!(key.kid(), g.kid);
            assert_eq!(key.alg(), g.alg);
        }
        assert_ne!(ec_key().kid, ec_key().kid);
        assert_ne!(rsa_key(0).kid, rsa_key(1).kid);
    }

    #[test]
    fn rsa_jwk_is_exact_and_public() {
        let g = rsa_key(0);
        let jwk = loaded(g).public_jwk();
        let obj = jwk.as_object().unwrap();
        let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["kid"], g.kid.as_str());
        assert_eq!(jwk["e"], "AQAB");
        let n = b64(jwk["n"].as_str().unwrap());
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
        assert!(!jwk.to_string().contains('='));
    }

    #[test]
    fn ec_jwk_is_exact_and_public() {
        // Several keys, so a coordinate with a leading zero byte is likely to show up.
        for _ in 0..8 {
            let g = ec_key();
            let jwk = loaded(&g).public_jwk();
            let obj = jwk.as_object().unwrap();
            let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
            names.sort_unstable();
            assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
            assert_eq!(jwk["kty"], "EC");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], "ES256");
            assert_eq!(jwk["crv"], "P-256");
            assert_eq!(jwk["kid"], g.kid.as_str());
            assert_eq!(b64(jwk["x"].as_str().unwrap()).len(), 32);
            assert_eq!(b64(jwk["y"].as_str().unwrap()).len(), 32);
        }
    }

    #[test]
    fn sign_and_verify_round_trip_both_algs() {
        let ec = ec_key();
        let set = KeySet::load(&[entry(rsa_key(0), 0, None), entry(&ec, 0, None)]).unwrap();
        for (g, typ) in [(rsa_key(0), "JWT"), (&ec, "logout+jwt")] {
            let token = loaded(g).sign(typ, &claims()).unwrap();
            let header = segment_json(&token, 0);
            assert_eq!(
                header,
                json!({"alg": g.alg.as_str(), "kid": g.kid, "typ": typ})
            );
            let verified = set.verify(&token).unwrap();
            assert_eq!(Value::Object(verified), claims());
        }
    }

    #[test]
    fn es256_signature_is_raw_r_s() {
        let token = loaded(&ec_key()).sign("JWT", &claims()).unwrap();
        let sig = token.rsplit('.').next().unwrap();
        assert_eq!(b64(sig).len(), 64);
    }

    #[test]
    fn published_jwk_alone_verifies_tokens() {
        let ec = ec_key();
        for g in [rsa_key(0), &ec] {
            let key = loaded(g);
            let token = key.sign("JWT", &claims()).unwrap();
            let jwk = key.public_jwk();
            let decoding = match g.alg {
                SigningAlg::Rs256 => DecodingKey::from_rsa_components(
                    jwk["n"].as_str().unwrap(),
                    jwk["e"].as_str().unwrap(),
                ),
                SigningAlg::Es256 => DecodingKey::from_ec_components(
                    jwk["x"].as_str().unwrap(),
                    jwk["y"].as_str().unwrap(),
                ),
            }
            .unwrap();
            let mut validation = Validation::new(jose_alg(g.alg));
            validation.required_spec_claims = HashSet::new();
            validation.validate_exp = false;
            validation.validate_aud = false;
            let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims, claims());
            assert_eq!(data.header.kid.as_deref(), Some(g.kid.as_str()));
        }
    }

    #[test]
    fn verify_accepts_expired_tokens_and_any_key_state() {
        let ec = ec_key();
        let set = KeySet::load(&[entry(&ec, 0, Some(10))]).unwrap();
        let token = loaded(&ec)
            .sign(
                "JWT",
                &json!({"exp": 1, "nbf": 4_000_000_000_u64, "aud": "x"}),
            )
            .unwrap();
        assert!(set.verify(&token).is_ok());
    }

    fn bad_token(set: &KeySet, token: &str) -> String {
        match set.verify(token) {
            Err(KeyError::BadToken(msg)) => msg,
            other => panic!("expected BadToken, got {other:?}"),
        }
    }

    fn with_header(token: &str, header: &Value) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
        parts.join(".")
    }

    #[test]
    fn verify_rejects_forgeries() {
        let ec = ec_key();
        let set = KeySet::load(&[entry(rsa_key(0), 0, None), entry(&ec, 0, None)]).unwrap();
        let rsa_token = loaded(rsa_key(0)).sign("JWT", &claims()).unwrap();

        // A key outside the set, even one claiming a kid of the set.
        let stranger = rsa_key(1);
        let foreign = loaded(stranger).sign("JWT", &claims()).unwrap();
        assert!(bad_token(&set, &foreign).contains("unknown kid"));
        let imposter =
            SigningKey::from_pem(&rsa_key(0).kid, SigningAlg::Rs256, &stranger.private_pem)
                .unwrap()
                .sign("JWT", &claims())
                .unwrap();
        assert!(bad_token(&set, &imposter).contains("bad signature"));

        // Tampered payload.
        let mut parts: Vec<String> = rsa_token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://sso.example.org","sub":"mallory"}"#);
        assert!(bad_token(&set, &parts.join(".")).contains("bad signature"));

        // alg switched to none (signature stripped or kept), HS256, or the other family.
        let kid = rsa_key(0).kid.as_str();
        for alg in ["none", "HS256", "ES256", "PS256", "RS512"] {
            let forged = with_header(&rsa_token, &json!({"alg": alg, "kid": kid, "typ": "JWT"}));
            assert!(bad_token(&set, &forged).contains("does not match"), "{alg}");
        }
        let stripped = with_header(&rsa_token, &json!({"alg": "none", "kid": kid}));
        let stripped = format!("{}.", stripped.rsplit_once('.').unwrap().0);
        assert!(bad_token(&set, &stripped).contains("does not match"));
        // HS256 with the public key as the HMAC secret (the classic confusion attack).
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some(kid.to_owned()),
                ..Header::new(Algorithm::HS256)
            },
            &claims(),
            &EncodingKey::from_secret(
                loaded(rsa_key(0)).public_jwk()["n"]
                    .as_str()
                    .unwrap()
                    .as_bytes(),
            ),
        )
        .unwrap();
        assert!(bad_token(&set, &hs).contains("does not match"));

        // Unknown or missing kid, crit, malformed shapes, non-object payload.
        let unknown = with_header(&rsa_token, &json!({"alg": "RS256", "kid": "nope"}));
        assert!(bad_token(&set, &unknown).contains("unknown kid"));
        let no_kid = with_header(&rsa_token, &json!({"alg": "RS256"}));
        assert!(bad_token(&set, &no_kid).contains("no kid"));
        let crit = with_header(
            &rsa_token,
            &json!({"alg": "RS256", "kid": kid, "crit": ["x"], "x": 1}),
        );
        assert!(bad_token(&set, &crit).contains("crit"));
        for junk in ["", "abc", "a.b", "a.b.c.d", "!!.e30.sig", "e30.e30.e30"] {
            bad_token(&set, junk);
        }
        let array = loaded(rsa_key(0)).sign("JWT", &json!([1]));
        assert!(matches!(array, Err(KeyError::Claims(_))));
    }

    #[test]
    fn signer_follows_rotation() {
        let old = ec_key();
        let current = ec_key();
        let next = ec_key();
        let set = KeySet::load(&[
            entry(&old, 100, Some(200)),
            entry(&current, 200, None),
            entry(&next, 1000, None),
            entry(rsa_key(0), 50, None),
        ])
        .unwrap();
        let signer = |alg, now| set.signer(alg, ts(now)).map(|k| k.kid().to_owned());
        // Before any key is active, the one that would sign first does (rather than nothing).
        assert_eq!(signer(SigningAlg::Es256, 99), Some(old.kid.clone()));
        assert_eq!(signer(SigningAlg::Es256, 100), Some(old.kid.clone()));
        assert_eq!(signer(SigningAlg::Es256, 199), Some(old.kid.clone()));
        // Retired exactly at 200; the successor starts at 200.
        assert_eq!(signer(SigningAlg::Es256, 200), Some(current.kid.clone()));
        // Pre-published `next` does not sign before its time.
        assert_eq!(signer(SigningAlg::Es256, 999), Some(current.kid.clone()));
        assert_eq!(signer(SigningAlg::Es256, 1000), Some(next.kid));
        assert_eq!(signer(SigningAlg::Rs256, 49), Some(rsa_key(0).kid.clone()));
        assert_eq!(signer(SigningAlg::Rs256, 50), Some(rsa_key(0).kid.clone()));

        // A retired key never signs, even if it is the newest.
        let set = KeySet::load(&[entry(&old, 100, None), entry(&current, 200, Some(300))]).unwrap();
        assert_eq!(
            set.signer(SigningAlg::Es256, ts(250)).unwrap().kid(),
            current.kid
        );
        assert_eq!(
            set.signer(SigningAlg::Es256, ts(300)).unwrap().kid(),
            old.kid
        );
        assert!(KeySet::default().signer(SigningAlg::Rs256, ts(0)).is_none());
    }

    #[test]
    fn jwks_publishes_future_keys_and_recently_retired_ones() {
        let retired = ec_key();
        let current = ec_key();
        let next = ec_key();
        let set = KeySet::load(&[
            entry(&retired, 100, Some(200)),
            entry(&current, 200, None),
            entry(&next, 1000, None),
            entry(rsa_key(0), 50, None),
            entry(rsa_key(1), 60, None),
        ])
        .unwrap();
        let kids = |now: i64| -> Vec<String> {
            let jwks = set.jwks(ts(now), Duration::from_secs(3600));
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        let rsa_order = [rsa_key(1).kid.clone(), rsa_key(0).kid.clone()];
        let mut expected: Vec<String> = rsa_order.to_vec();
        expected.extend([next.kid, current.kid, retired.kid.clone()]);
        assert_eq!(kids(500), expected);
        // Published until retired_at + keep_published (exclusive).
        assert_eq!(kids(200 + 3599), expected);
        expected.pop();
        assert_eq!(kids(200 + 3600), expected);
        // Retired keys still verify after they leave the JWKS.
        let token = loaded(&retired).sign("JWT", &claims()).unwrap();
        assert!(set.verify(&token).is_ok());

        let jwks = set.jwks(ts(500), Duration::ZERO);
        assert_eq!(jwks.as_object().unwrap().len(), 1);
        for key in jwks["keys"].as_array().unwrap() {
            assert!(key.get("d").is_none());
            assert_eq!(key["use"], "sig");
        }
        assert_eq!(
            KeySet::default().jwks(ts(0), Duration::ZERO),
            json!({"keys": []})
        );
    }

    #[test]
    fn load_reports_the_bad_key() {
        let ec = ec_key();
        let mut bad = entry(&ec, 0, None);
        bad.kid = "broken".to_owned();
        bad.private_pem = "not a pem".to_owned();
        let err = KeySet::load(&[entry(&ec, 0, None), bad]).unwrap_err();
        assert!(err.to_string().contains("\"broken\""), "{err}");

        let err = KeySet::load(&[entry(&ec, 0, None), entry(&ec, 5, None)]).unwrap_err();
        assert!(matches!(err, KeyError::DuplicateKid(ref k) if *k == ec.kid));

        let set = KeySet::load(&[entry(&ec, 0, None)]).unwrap();
        assert!(!set.is_empty());
        assert_eq!(set.kids().collect::<Vec<_>>(), [ec.kid.as_str()]);
        assert!(KeySet::load(&[]).unwrap().is_empty());
    }

    #[test]
    fn from_pem_rejects_garbage_and_wrong_algs() {
        let ec = ec_key();
        let rsa = rsa_key(0);
        for (alg, pem) in [
            (SigningAlg::Rs256, "garbage"),
            (SigningAlg::Es256, ""),
            (SigningAlg::Es256, rsa.private_pem.as_str()),
            (SigningAlg::Rs256, ec.private_pem.as_str()),
        ] {
            let err = SigningKey::from_pem("k1", alg, pem).unwrap_err();
            assert!(matches!(err, KeyError::InvalidKey { .. }), "{err}");
            assert!(err.to_string().contains("\"k1\""));
        }
        assert!(matches!(
            SigningKey::from_pem("", SigningAlg::Es256, &ec.private_pem),
            Err(KeyError::EmptyKid)
        ));
        // Too small an RSA key.
        let small = rsa::RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let small_pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        let err = SigningKey::from_pem("small", SigningAlg::Rs256, &small_pem).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    #[test]
    fn debug_output_hides_private_keys() {
        let ec = ec_key();
        let body_line = ec.private_pem.lines().nth(1).unwrap().to_owned();
        let key = loaded(&ec);
        let set = KeySet::load(&[entry(&ec, 0, None)]).unwrap();
        for text in [
            format!("{key:?}"),
            format!("{ec:?}"),
            format!("{:?}", entry(&ec, 0, None)),
            format!("{set:?}"),
        ] {
            assert!(!text.contains("PRIVATE"), "{text}");
            assert!(!text.contains(&body_line), "{text}");
            assert!(text.contains(&ec.kid), "{text}");
        }
    }
}
