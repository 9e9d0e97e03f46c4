//! Service patterns as the registry stores them (`ServicePattern::from_parts`, `regex`) and matching
//! URLs against them. Line 1 is the kind (`regex`, `exact`, `prefix`), line 2 the pattern, line 3
//! the URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{lines, text};
use tessera_protocol::service::ServicePattern;

fuzz_target!(|data: &[u8]| {
    let parts = lines(data, 3);
    let (kind, source, url) = (text(parts[0]), text(parts[1]), text(parts[2]));

    if let Ok(p) = ServicePattern::regex(&source) {
        assert_eq!(p.kind(), "regex");
        assert_eq!(p.source(), source);
        let _ = p.matches(&url);
    }
    let Ok(p) = ServicePattern::from_parts(&kind, &source) else {
        return;
    };
    assert_eq!(p.kind(), kind);
    assert_eq!(p.source(), source);
    let matched = p.matches(&url);
    match &p {
        ServicePattern::Exact(s) => {
            assert_eq!(matched, *s == url);
            assert!(p.matches(s));
        }
        ServicePattern::Prefix(prefix) => {
            assert!(p.matches(prefix));
            if matched {
                let rest = url
                    .strip_prefix(prefix.as_str())
                    .expect("a prefix match starts with the prefix");
                // `https://app.example.org` must not admit `https://app.example.org.evil.net/`.
                assert!(
                    prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#']),
                    "prefix {prefix:?} admits {url:?}"
                );
            }
        }
        ServicePattern::Regex { compiled, .. } => {
            // Anchored: a match covers the whole URL.
            if matched {
                let whole = compiled.find(&url).map(|m| m.range());
                assert!(whole.is_some());
            }
        }
    }
});
