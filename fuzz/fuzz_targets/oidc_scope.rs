//! `scope` parameters (`parse_scope`, `scope_string`, `is_scope_token`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::text;
use tessera_protocol::oidc::client::is_scope_token;
use tessera_protocol::oidc::grant::{parse_scope, scope_string};

fuzz_target!(|data: &[u8]| {
    let s = text(data);
    let scope = parse_scope(&s);
    for (i, token) in scope.iter().enumerate() {
        assert!(!token.is_empty(), "empty scope token from {s:?}");
        assert!(!token.contains(' '));
        assert!(
            !scope[..i].contains(token),
            "duplicate scope token {token:?} from {s:?}"
        );
        assert!(s.split(' ').any(|t| t == token));
    }
    // Every token of the input is kept once, in order of first appearance.
    let mut expected: Vec<&str> = Vec::new();
    for t in s.split(' ').filter(|t| !t.is_empty()) {
        if !expected.contains(&t) {
            expected.push(t);
        }
    }
    assert_eq!(scope, expected);
    assert_eq!(
        parse_scope(&scope_string(&scope)),
        scope,
        "scope does not round-trip"
    );
    for token in &scope {
        if is_scope_token(token) {
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
        }
    }
});
