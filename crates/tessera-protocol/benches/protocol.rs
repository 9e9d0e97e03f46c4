//! Criterion benchmarks of the hot pure code of a login and a validation: ticket generation and
//! key hashing, service registry matching (and the per-request registry rebuild and regex
//! compilation the server currently does), validation answers, the OpenID Connect authorization
//! request parser and the claims of an ID token.
//!
//! `cargo bench -p tessera-protocol` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::rngs::OsRng;
use tessera_protocol::cas::validate::{ProtocolAttributes, Validation};
use tessera_protocol::cas::{xml, ValidationError};
use tessera_protocol::oidc::authorize;
use tessera_protocol::oidc::claims::{self, user_claims, ClaimSources};
use tessera_protocol::oidc::{ClientRegistry, ClientSecret, Grant, OidcClient, SigningAlg};
use tessera_protocol::service::{
    AttributeRelease, RegisteredService, ServiceOrigin, ServicePattern, ServiceRegistry, ServiceUrl,
};
use tessera_protocol::session::SessionId;
use tessera_protocol::ticket::{random_base62, ServiceTicketId, TicketKey};
use tessera_protocol::{Attributes, Timestamp};

const ISSUER: &str = "https://sso.example.org/oidc";

fn attributes() -> Attributes {
    let mut a = Attributes::new();
    a.insert("mail".into(), vec!["alice@example.org".into()]);
    a.insert("displayName".into(), vec!["Alice Liddell".into()]);
    a.insert("givenName".into(), vec!["Alice".into()]);
    a.insert("sn".into(), vec!["Liddell".into()]);
    a.insert(
        "eduPersonAffiliation".into(),
        vec!["member".into(), "staff".into(), "student".into()],
    );
    a.insert(
        "memberOf".into(),
        vec![
            "cn=staff,ou=groups,dc=example,dc=org".into(),
            "cn=wiki-editors,ou=groups,dc=example,dc=org".into(),
        ],
    );
    a
}

fn tickets(c: &mut Criterion) {
    let mut group = c.benchmark_group("ticket");
    group.bench_function("generate ST (OsRng)", |b| {
        b.iter(|| ServiceTicketId::generate(&mut OsRng));
    });
    group.bench_function("random_base62 29 chars (OsRng)", |b| {
        b.iter(|| random_base62(&mut OsRng, 29));
    });
    let ticket = ServiceTicketId::generate(&mut OsRng);
    group.bench_function("key (SHA-256 hex)", |b| {
        b.iter(|| TicketKey::of(black_box(ticket.as_str())));
    });
    group.bench_function("parse ST", |b| {
        b.iter(|| ServiceTicketId::parse(black_box(ticket.as_str())));
    });
    group.finish();
}

fn pattern_of(i: usize) -> String {
    format!(r"https://app{i:03}\.example\.org/.*")
}

fn hundred_services() -> Vec<RegisteredService> {
    (0..100)
        .filter_map(|i| {
            let pattern = ServicePattern::regex(&pattern_of(i)).ok()?;
            let mut s =
                RegisteredService::new(format!("app{i:03}"), pattern, ServiceOrigin::Database);
            s.release = AttributeRelease::All;
            Some(s)
        })
        .collect()
}

fn registry(c: &mut Criterion) {
    let services = hundred_services();
    assert_eq!(services.len(), 100, "every pattern compiles");
    let registry = ServiceRegistry::new(Vec::new(), services.clone());
    let mut group = c.benchmark_group("registry (100 regex services)");
    group.bench_function("find: first service", |b| {
        b.iter(|| registry.find(black_box("https://app000.example.org/login?next=%2F")));
    });
    group.bench_function("find: last service", |b| {
        b.iter(|| registry.find(black_box("https://app099.example.org/login?next=%2F")));
    });
    group.bench_function("find: no service", |b| {
        b.iter(|| registry.find(black_box("https://evil.example.net/login")));
    });
    // What `AppState::registry` does on every request besides the database read: rebuild the
    // registry from freshly loaded services, whose patterns the store compiles again.
    group.bench_function("rebuild from loaded services", |b| {
        b.iter_batched(
            || services.clone(),
            |loaded| ServiceRegistry::new(Vec::new(), loaded),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("compile 100 patterns (as the store does per read)", |b| {
        b.iter(|| {
            (0..100)
                .map(|i| ServicePattern::from_parts("regex", &pattern_of(i)))
                .filter(Result::is_ok)
                .count()
        });
    });
    group.finish();
    c.bench_function("registry (1 regex service)/compile 1 pattern", |b| {
        b.iter(|| ServicePattern::regex(black_box(r"http://app\.bench\.test/.*")));
    });
}

fn validation() -> Option<Validation> {
    let service = ServiceUrl::parse("https://app042.example.org/login?next=%2Fprofile").ok()?;
    Some(Validation {
        user: "alice".into(),
        username: "alice".into(),
        session_id: SessionId::from_stored("s-0123456789abcdef".into()),
        service,
        attributes: attributes(),
        user_attributes: attributes(),
        protocol: ProtocolAttributes {
            authentication_date: Timestamp::from_unix_millis(1_750_000_000_000),
            long_term_authentication_request_token_used: false,
            is_from_new_login: false,
        },
        proxies: Vec::new(),
        proxy_granting_ticket: None,
    })
}

fn responses(c: &mut Criterion) {
    let Some(validation) = validation() else {
        eprintln!("validation answer: skipped, the sample service URL was refused");
        return;
    };
    let success: Result<Validation, ValidationError> = Ok(validation);
    let mut group = c.benchmark_group("validation answer");
    group.bench_function("CAS 3.0 XML success (6 attributes)", |b| {
        b.iter(|| xml::service_response_xml(black_box(&success)));
    });
    group.bench_function("CAS 3.0 JSON success (6 attributes)", |b| {
        b.iter(|| xml::service_response_json(black_box(&success)));
    });
    group.bench_function("CAS 1.0 yes", |b| {
        b.iter(|| xml::cas1(black_box(&success)));
    });
    group.finish();
}

fn client() -> OidcClient {
    let mut client = OidcClient::new(
        "wiki",
        ClientSecret::hash("a-client-secret-of-at-least-32-characters"),
        ServiceOrigin::Database,
    );
    client.redirect_uris = vec!["https://wiki.example.org/redirect_uri".into()];
    client.signing_alg = SigningAlg::Es256;
    client.release = AttributeRelease::All;
    client
}

fn oidc(c: &mut Criterion) {
    let clients = ClientRegistry::new(Vec::new(), vec![client()]);
    let pairs: Vec<(String, String)> = [
        ("client_id", "wiki"),
        ("redirect_uri", "https://wiki.example.org/redirect_uri"),
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "af0ifjsldkj"),
        ("nonce", "n-0S6_WzA2Mj"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut group = c.benchmark_group("oidc");
    group.bench_function("authorize::parse", |b| {
        b.iter(|| authorize::parse(black_box(&pairs), &clients, ISSUER));
    });
    let scope: Vec<String> = ["openid", "profile", "email"].map(String::from).to_vec();
    let attributes = attributes();
    let client = client();
    let sources = ClaimSources::default();
    group.bench_function("user_claims (profile email, release all)", |b| {
        b.iter(|| user_claims(black_box(&scope), "alice", &attributes, &client, &sources));
    });
    let grant = Grant {
        id: "g-0123456789".into(),
        client_id: "wiki".into(),
        session_id: SessionId::from_stored("s-0123456789abcdef".into()),
        username: "alice".into(),
        attributes: attributes.clone(),
        scope: scope.clone(),
        auth_time: Timestamp::from_unix_millis(1_750_000_000_000),
        backchannel_logout_uri: None,
        created_at: Timestamp::from_unix_millis(1_750_000_100_000),
    };
    group.bench_function("subject + user_claims + id_token claims + JSON", |b| {
        b.iter(|| {
            let subject = claims::subject("a-salt-of-43-characters-0123456789abcdefgh", "alice");
            let user = user_claims(&scope, "alice", &attributes, &client, &sources);
            let claims = claims::id_token(
                ISSUER,
                &subject,
                black_box(&grant),
                Some("n-0S6_WzA2Mj".into()),
                Some("AT-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"),
                user,
                Timestamp::from_unix_millis(1_750_000_200_000),
                Duration::from_secs(600),
            );
            serde_json::to_vec(&claims).map(|v| v.len()).unwrap_or(0)
        });
    });
    group.finish();
}

criterion_group!(benches, tickets, registry, responses, oidc);
criterion_main!(benches);
