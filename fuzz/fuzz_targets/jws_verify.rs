//! JWS/JWT verification (`KeySet::verify`, used for `id_token_hint`) against a fixed key set: one
//! ES256 key generated once per process, and one RS256 key read from `fuzz/keys` (generating an RSA
//! key under the fuzzer's coverage instrumentation took longer than its per-input timeout).
//!
//! The whole input is tried as a token. Then, when line 2 is a JSON object, it is signed with one of
//! the keys (RS256 when line 1 mentions `RS`, else ES256): the token must verify to the same claims,
//! and with its header replaced by line 1 (base64url-encoded) it must verify only if line 1 is the
//! very header that was signed.
#![no_main]

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tessera::oidc::keys::{self, KeyEntry, KeySet};
use tessera_fuzz::{lines, text};
use tessera_protocol::oidc::SigningAlg;
use tessera_protocol::Timestamp;

const KIDS: [(&str, SigningAlg); 2] = [
    ("fuzz-es256", SigningAlg::Es256),
    ("fuzz-rs256", SigningAlg::Rs256),
];

/// A 2048-bit RSA key made for this target alone (`openssl genpkey -algorithm RSA`); it signs
/// nothing outside the fuzzer.
const RS256_KEY: &str = include_str!("../keys/rs256-fuzz-only.pem");

static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let entries: Vec<KeyEntry> = KIDS
        .iter()
        .map(|(kid, alg)| KeyEntry {
            kid: (*kid).to_owned(),
            alg: *alg,
            private_pem: match alg {
                SigningAlg::Rs256 => RS256_KEY.to_owned(),
                SigningAlg::Es256 => keys::generate(*alg).expect("key generation").private_pem,
            },
            active_from: Timestamp::from_unix_millis(0),
            retired_at: None,
        })
        .collect();
    KeySet::load(&entries).expect("the generated keys load")
});

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn header_of(token: &str) -> Map<String, Value> {
    let b64 = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .expect("a verified token's header is base64url");
    serde_json::from_slice(&bytes).expect("a verified token's header is a JSON object")
}

fuzz_target!(|data: &[u8]| {
    let keys = &*KEYS;
    let token = text(data);
    if keys.verify(&token).is_ok() {
        // Only a genuine signature of ours gets here: the header names one of our keys with its alg.
        let header = header_of(&token);
        let (kid, alg) = (header.get("kid"), header.get("alg"));
        assert!(
            KIDS.iter().any(
                |(k, a)| kid == Some(&Value::from(*k)) && alg == Some(&Value::from(a.as_str()))
            ),
            "verified a token with header {header:?}"
        );
    }

    let parts = lines(data, 2);
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(parts[1]) else {
        return;
    };
    let alg = if parts[0].windows(2).any(|w| w == b"RS") {
        SigningAlg::Rs256
    } else {
        SigningAlg::Es256
    };
    let now = Timestamp::from_unix_millis(1_738_318_530_000);
    let signer = keys.signer(alg, now).expect("a signer for each alg");
    let signed = signer.sign("JWT", &claims).expect("an object signs");
    let verified = keys
        .verify(&signed)
        .unwrap_or_else(|e| panic!("our own token does not verify: {e}"));
    if !has_float(&Value::Object(claims.clone())) {
        assert_eq!(verified, claims, "claims changed through sign and verify");
    }

    let mut segments = signed.splitn(3, '.');
    let (original_header, payload, signature) = (
        segments.next().unwrap_or_default(),
        segments.next().unwrap_or_default(),
        segments.next().unwrap_or_default(),
    );
    let forged_header = URL_SAFE_NO_PAD.encode(parts[0]);
    let forged = format!("{forged_header}.{payload}.{signature}");
    if keys.verify(&forged).is_ok() {
        assert_eq!(
            forged_header, original_header,
            "a token with a replaced header verified: {forged:?}"
        );
    }
    // Nor does another key's signature, or none at all.
    let stripped = format!("{original_header}.{payload}.");
    assert!(
        keys.verify(&stripped).is_err(),
        "a token without signature verified"
    );
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"fuzz-es256"}"#);
    assert!(
        keys.verify(&format!("{none_header}.{payload}.")).is_err(),
        "alg none verified"
    );
});
