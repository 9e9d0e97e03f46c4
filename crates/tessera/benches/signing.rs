//! Criterion benchmarks of ID token signing (`tessera::oidc::keys::SigningKey::sign`, ES256 and
//! RS256), next to the bare signature with the same key, and the PKCS#8 key parsing that `sign`
//! did on every call while it went through `jsonwebtoken` (now done once, when a key is loaded).
//!
//! `cargo bench -p tessera --bench signing` (add `-- --quick` for a short run).

use std::error::Error;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use serde_json::{json, Value};
use tessera::oidc::keys::{generate, SigningKey};
use tessera_protocol::oidc::SigningAlg;

type Fallible<T> = Result<T, Box<dyn Error>>;

/// The claims of a typical ID token (profile and email scopes).
fn claims() -> Value {
    json!({
        "iss": "https://sso.example.org/oidc",
        "sub": "q3Zl0dXbJ7rW2yqA3o4b5N6m7P8s9T0u1V2w3X4y5Z6",
        "aud": "wiki",
        "exp": 1_750_000_600,
        "iat": 1_750_000_000,
        "auth_time": 1_749_999_000,
        "nonce": "n-0S6_WzA2Mj",
        "amr": ["pwd"],
        "sid": "s-0123456789abcdef0123456789abcdef",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "preferred_username": "alice",
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "email": "alice@example.org",
        "email_verified": true,
    })
}

struct Fixture {
    key: SigningKey,
    pem: String,
    kid: String,
}

fn fixture(alg: SigningAlg) -> Fallible<Fixture> {
    let generated = generate(alg)?;
    let key = SigningKey::from_pem(&generated.kid, alg, &generated.private_pem)?;
    Ok(Fixture {
        key,
        pem: generated.private_pem,
        kid: generated.kid,
    })
}

fn es256(c: &mut Criterion) {
    let f = match fixture(SigningAlg::Es256) {
        Ok(f) => f,
        Err(e) => return eprintln!("ES256 benchmarks skipped: {e}"),
    };
    let claims = claims();
    let mut group = c.benchmark_group("ES256");
    group.bench_function("SigningKey::sign (ID token)", |b| {
        b.iter(|| f.key.sign("JWT", black_box(&claims)));
    });
    let Ok(secret) = p256::SecretKey::from_pkcs8_pem(&f.pem) else {
        return eprintln!("ES256 baselines skipped: the PEM does not parse");
    };
    let Ok(der) = secret.to_pkcs8_der() else {
        return eprintln!("ES256 baselines skipped: no PKCS#8 DER");
    };
    let signer = p256::ecdsa::SigningKey::from(&secret);
    let message = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL3Nzby5leGFtcGxlLm9yZy9vaWRjIn0";
    group.bench_function(
        "p256 crate sign, key parsed once (the signer before ring)",
        |b| {
            b.iter(|| {
                let signature: p256::ecdsa::Signature =
                    p256::ecdsa::signature::Signer::sign(&signer, black_box(message));
                signature
            });
        },
    );
    group.bench_function(
        "p256 SigningKey::from_pkcs8_der (repeated in every sign)",
        |b| {
            b.iter(|| p256::ecdsa::SigningKey::from_pkcs8_der(black_box(der.as_bytes())));
        },
    );
    group.bench_function("SigningKey::from_pem (key set load)", |b| {
        b.iter(|| SigningKey::from_pem(&f.kid, SigningAlg::Es256, black_box(&f.pem)));
    });
    group.finish();
}

fn rs256(c: &mut Criterion) {
    let f = match fixture(SigningAlg::Rs256) {
        Ok(f) => f,
        Err(e) => return eprintln!("RS256 benchmarks skipped: {e}"),
    };
    let claims = claims();
    let mut group = c.benchmark_group("RS256");
    group.sample_size(30);
    group.bench_function("SigningKey::sign (ID token)", |b| {
        b.iter(|| f.key.sign("JWT", black_box(&claims)));
    });
    let Ok(private) = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&f.pem)
    else {
        return eprintln!("RS256 baselines skipped: the PEM does not parse");
    };
    let Ok(der) = private.to_pkcs1_der() else {
        return eprintln!("RS256 baselines skipped: no PKCS#1 DER");
    };
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
    let message = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL3Nzby5leGFtcGxlLm9yZy9vaWRjIn0";
    group.bench_function("rsa PKCS#1 v1.5 sign, key parsed once (baseline)", |b| {
        b.iter(|| {
            signer
                .sign_with_rng(&mut rand::thread_rng(), black_box(message))
                .to_vec()
        });
    });
    group.bench_function(
        "RsaPrivateKey::from_pkcs1_der (repeated in every sign)",
        |b| {
            b.iter(|| rsa::RsaPrivateKey::from_pkcs1_der(black_box(der.as_bytes())));
        },
    );
    group.bench_function("SigningKey::from_pem (key set load)", |b| {
        b.iter(|| SigningKey::from_pem(&f.kid, SigningAlg::Rs256, black_box(&f.pem)));
    });
    group.finish();
}

criterion_group!(benches, es256, rs256);
criterion_main!(benches);
