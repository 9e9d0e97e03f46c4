//! One suite for every backend: each behaviour is an async function taking a fresh store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test that cannot go on should stop loudly

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor};
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::oidc::{
    AccessToken, AuthorizationCode, ClientSecret, Grant, OidcClient, RefreshToken, SigningAlg,
};
use tessera_protocol::service::{
    AttributeRelease, AttributeRule, RegisteredService, Requirement, ServiceOrigin, ServicePattern,
    ServiceUrl,
};
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::{LoginTicketId, TicketGrantingTicketId, TicketKey};
use tessera_protocol::{Attributes, Timestamp};
use tessera_store::{
    AccessRule, CodeRedemption, GrantRule, NewGrant, PostgresStore, ServiceAccess, SessionTouch,
    SigningKeyRecord, SqliteStore, Store, StoreError, UserRecord,
};

const T0: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

fn rng() -> rand::rngs::ThreadRng {
    rand::thread_rng()
}

fn attrs() -> Attributes {
    let mut a = Attributes::new();
    a.insert(
        "eduPersonAffiliation".into(),
        vec!["staff".into(), "member".into()],
    );
    a
}

fn new_session(username: &str) -> (TicketGrantingTicketId, SsoSession) {
    let tgt = TicketGrantingTicketId::generate(&mut rng());
    let s = SsoSession {
        id: SessionId::generate(&mut rng()),
        tgt: tgt.key(),
        username: username.into(),
        attributes: attrs(),
        authenticated_at: T0,
        last_used_at: T0,
        long_term: false,
        warn: true,
    };
    (tgt, s)
}

fn ticket_for(s: &SsoSession, service: &str) -> ServiceTicket {
    ServiceTicket::issue(
        s,
        ServiceUrl::parse(service).unwrap(),
        true,
        Duration::from_secs(60),
        T0,
        &mut rng(),
    )
    .1
}

async fn service_tickets_are_taken_once(store: Arc<dyn Store>) {
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    let t = ticket_for(&s, "https://app/?a=b");
    store.put_service_ticket(&t, None, None).await.unwrap();
    assert_eq!(
        store.take_service_ticket(&t.key).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(store.take_service_ticket(&t.key).await.unwrap(), None);
    assert_eq!(
        store
            .take_service_ticket(&TicketKey::of("ST-unknown"))
            .await
            .unwrap(),
        None
    );
}

async fn ticket_writes_decided_with_an_old_registry_write_nothing(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    let decided = store.registry_version().await.unwrap();
    let before = ticket_for(&s, "https://app/");
    store
        .put_service_ticket(&before, None, Some(decided))
        .await
        .unwrap();
    // The services change: decisions made before are refused, and write nothing.
    let app = RegisteredService::new(
        "app",
        ServicePattern::regex(r"https://app/.*").unwrap(),
        ServiceOrigin::Database,
    );
    store.put_service(&app).await.unwrap();
    let after = ticket_for(&s, "https://app/");
    let touch = SessionTouch {
        at: T0.plus(Duration::from_secs(9)),
        expires_at: T0.plus(Duration::from_secs(99)),
    };
    assert!(matches!(
        store
            .put_service_ticket(&after, Some(touch), Some(decided))
            .await,
        Err(StoreError::RegistryChanged)
    ));
    assert_eq!(store.take_service_ticket(&after.key).await.unwrap(), None);
    assert_eq!(
        store
            .get_session(&tgt.key())
            .await
            .unwrap()
            .map(|s| s.last_used_at),
        Some(s.last_used_at),
        "a refused ticket does not touch its session"
    );
    let rule: AccessRule = Box::new(|_| panic!("nothing is decided under an old registry"));
    assert!(matches!(
        store
            .take_service_ticket_recording(&before.key, rule, Some(decided))
            .await,
        Err(StoreError::RegistryChanged)
    ));
    // Decided again under the current version, the same ticket is still there to take.
    let current = store.registry_version().await.unwrap();
    assert_ne!(current, decided);
    assert_eq!(
        store
            .take_service_ticket_recording(&before.key, Box::new(|_| None), Some(current))
            .await
            .unwrap(),
        Some(before)
    );

    // Authorization codes likewise: issued or redeemed under an old registry, nothing is written.
    let code = code_for(&s, "code-old-registry", "app");
    assert!(matches!(
        store
            .put_authorization_code(&code, Some(touch), Some(decided))
            .await,
        Err(StoreError::RegistryChanged)
    ));
    assert_eq!(
        store
            .redeem_authorization_code(&code.key, "g0")
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
    store
        .put_authorization_code(&code, None, Some(current))
        .await
        .unwrap();
    let rule: GrantRule = Box::new(|_| panic!("nothing is decided under an old registry"));
    assert!(matches!(
        store
            .redeem_authorization_code_granting(&code.key, "g1", rule, Some(decided))
            .await,
        Err(StoreError::RegistryChanged)
    ));
    let (redemption, saved) = store
        .redeem_authorization_code_granting(&code.key, "g1", Box::new(|_| None), Some(current))
        .await
        .unwrap();
    assert_eq!(redemption, CodeRedemption::Redeemed(Box::new(code.clone())));
    assert!(!saved);
    // A replay decided under an old registry is refused too, and revokes nothing yet.
    assert!(matches!(
        store
            .redeem_authorization_code_granting(&code.key, "g2", Box::new(|_| None), Some(decided))
            .await,
        Err(StoreError::RegistryChanged)
    ));

    // An access token read for clients of an old registry is refused; for the current one (or
    // none) it is found, and an unknown token is none under the current registry only.
    let (g, at, _) = grant_for(&s, "g3", "app", None, Duration::from_secs(60));
    assert!(store.put_grant(&g, &at, None).await.unwrap());
    assert!(matches!(
        store.get_access_token(&at.key, Some(decided)).await,
        Err(StoreError::RegistryChanged)
    ));
    for version in [Some(current), None] {
        assert_eq!(
            store.get_access_token(&at.key, version).await.unwrap(),
            Some((at.clone(), g.clone()))
        );
    }
    let unknown = TicketKey::from_stored("0".repeat(64));
    assert!(matches!(
        store.get_access_token(&unknown, Some(decided)).await,
        Err(StoreError::RegistryChanged)
    ));
    assert_eq!(
        store
            .get_access_token(&unknown, Some(current))
            .await
            .unwrap(),
        None
    );
}

async fn concurrent_takes_hand_a_ticket_to_exactly_one(store: Arc<dyn Store>) {
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    for _ in 0..5 {
        let t = ticket_for(&s, "https://app/");
        store.put_service_ticket(&t, None, None).await.unwrap();
        let takers: Vec<_> = (0..16)
            .map(|_| {
                let (store, key) = (store.clone(), t.key.clone());
                tokio::spawn(async move { store.take_service_ticket(&key).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for taker in takers {
            winners += usize::from(taker.await.unwrap().is_some());
        }
        assert_eq!(winners, 1);
    }
}

async fn sessions_live_are_touched_and_end_with_their_tickets(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(
        store.get_session(&tgt.key()).await.unwrap(),
        Some(s.clone())
    );
    let later = T0.plus(Duration::from_secs(5));
    store
        .touch_session(&s.id, later, later.plus(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_session(&tgt.key())
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        later
    );

    // A ticket issued from the session commits its use with it.
    let even_later = T0.plus(Duration::from_secs(7));
    let touch = SessionTouch {
        at: even_later,
        expires_at: even_later.plus(Duration::from_secs(10)),
    };
    let entered = ticket_for(&s, "https://a/");
    store
        .put_service_ticket(&entered, Some(touch), None)
        .await
        .unwrap();
    let used = store.get_session(&tgt.key()).await.unwrap().unwrap();
    assert_eq!(used.last_used_at, even_later);
    assert_eq!(
        store.take_service_ticket(&entered.key).await.unwrap(),
        Some(entered)
    );

    let unvalidated = ticket_for(&s, "https://b/");
    store
        .put_service_ticket(&unvalidated, None, None)
        .await
        .unwrap();
    for (service, ticket) in [
        ("https://a/", "ST-1"),
        ("https://a/", "ST-2"),
        ("https://c/?x", "ST-3"),
    ] {
        let access = ServiceAccess {
            service: service.into(),
            ticket: ticket.into(),
            validated_at: later,
        };
        store.put_service_access(&s.id, &access).await.unwrap();
    }
    let ended = store.take_session(&tgt.key(), T0).await.unwrap().unwrap();
    assert_eq!(ended.session.id, s.id);
    let mut notified: Vec<_> = ended
        .services
        .iter()
        .map(|a| (a.service.as_str(), a.ticket.as_str()))
        .collect();
    notified.sort();
    assert_eq!(
        notified,
        [("https://a/", "ST-2"), ("https://c/?x", "ST-3")],
        "latest ticket per service URL"
    );
    assert_eq!(store.get_session(&tgt.key()).await.unwrap(), None);
    assert_eq!(store.take_session(&tgt.key(), T0).await.unwrap(), None);
    assert_eq!(
        store.take_service_ticket(&unvalidated.key).await.unwrap(),
        None,
        "logout ends unvalidated tickets"
    );
    // A ticket issued while the session ended (a lookup racing the logout) is not handed out.
    let late = ticket_for(&s, "https://d/");
    store.put_service_ticket(&late, None, None).await.unwrap();
    let entered_late: AccessRule =
        Box::new(|_| panic!("no access is recorded for an ended session"));
    assert_eq!(
        store
            .take_service_ticket_recording(&late.key, entered_late, None)
            .await
            .unwrap(),
        None,
        "a ticket of an ended session is never valid"
    );
    let orphan = ServiceAccess {
        service: "https://z/".into(),
        ticket: "ST-9".into(),
        validated_at: later,
    };
    store.put_service_access(&s.id, &orphan).await.unwrap();
}

async fn a_renewed_session_keeps_its_id_and_what_it_entered(store: Arc<dyn Store>) {
    let (old_tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    let access = ServiceAccess {
        service: "https://a/".into(),
        ticket: "ST-1".into(),
        validated_at: T0,
    };
    store.put_service_access(&s.id, &access).await.unwrap();
    let unvalidated = ticket_for(&s, "https://b/");
    store
        .put_service_ticket(&unvalidated, None, None)
        .await
        .unwrap();

    let later = T0.plus(Duration::from_secs(30));
    let (new_tgt, fresh) = new_session("alice");
    let mut attributes = attrs();
    attributes.insert("mail".into(), vec!["alice@example.org".into()]);
    let renewed = SsoSession {
        id: s.id.clone(),
        attributes,
        authenticated_at: later,
        last_used_at: later,
        long_term: true,
        warn: false,
        ..fresh
    };
    let expires_at = later.plus(Duration::from_secs(60));
    // Only the same user's session, named by its current TGT, is renewed.
    let bob = SsoSession {
        username: "bob".into(),
        ..renewed.clone()
    };
    assert!(!store
        .renew_session(&old_tgt.key(), &bob, expires_at)
        .await
        .unwrap());
    assert!(!store
        .renew_session(&new_tgt.key(), &renewed, expires_at)
        .await
        .unwrap());
    assert_eq!(
        store.get_session(&old_tgt.key()).await.unwrap(),
        Some(s.clone())
    );

    assert!(store
        .renew_session(&old_tgt.key(), &renewed, expires_at)
        .await
        .unwrap());
    assert_eq!(store.get_session(&old_tgt.key()).await.unwrap(), None);
    assert_eq!(
        store.get_session(&new_tgt.key()).await.unwrap(),
        Some(renewed.clone())
    );
    assert!(
        !store
            .renew_session(&old_tgt.key(), &renewed, expires_at)
            .await
            .unwrap(),
        "the old TGT names nothing now"
    );
    // Its tickets and the services it entered stayed with it; it lasts until the new expiry.
    assert_eq!(
        store.take_service_ticket(&unvalidated.key).await.unwrap(),
        Some(unvalidated)
    );
    let swept = store
        .delete_expired(T0.plus(Duration::from_secs(61)), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(swept, 0, "renewed until {expires_at:?}");
    let ended = store
        .take_session(&new_tgt.key(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.session, renewed);
    assert_eq!(ended.services, [access]);
}

async fn a_taken_ticket_records_the_service_its_session_entered(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    let entered = ticket_for(&s, "https://a/");
    let refused = ticket_for(&s, "https://b/");
    for t in [&entered, &refused] {
        store.put_service_ticket(t, None, None).await.unwrap();
    }
    let access = ServiceAccess {
        service: "https://a/".into(),
        ticket: "ST-entered".into(),
        validated_at: T0,
    };
    let rule = {
        let (expected, access) = (entered.clone(), access.clone());
        Box::new(move |t: &ServiceTicket| {
            assert_eq!(t, &expected, "the rule sees the ticket taken");
            Some(access)
        })
    };
    assert_eq!(
        store
            .take_service_ticket_recording(&entered.key, rule, None)
            .await
            .unwrap(),
        Some(entered.clone())
    );
    // A verdict of refusal records nothing, and a ticket that is not there asks for no verdict.
    let taken = store
        .take_service_ticket_recording(&refused.key, Box::new(|_| None), None)
        .await
        .unwrap();
    assert_eq!(taken, Some(refused));
    let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rule = {
        let asked = asked.clone();
        Box::new(move |_: &ServiceTicket| {
            asked.store(true, std::sync::atomic::Ordering::SeqCst);
            None
        })
    };
    assert_eq!(
        store
            .take_service_ticket_recording(&entered.key, rule, None)
            .await
            .unwrap(),
        None
    );
    assert!(!asked.load(std::sync::atomic::Ordering::SeqCst));

    let ended = store.take_session(&tgt.key(), T0).await.unwrap().unwrap();
    assert_eq!(ended.services, [access]);
}

async fn sessions_are_listed_by_user(store: Arc<dyn Store>) {
    let (_, a) = new_session("alice");
    let (_, b) = new_session("bob");
    for s in [&a, &b] {
        store
            .put_session(s, T0.plus(Duration::from_secs(10)))
            .await
            .unwrap();
    }
    assert_eq!(store.list_sessions(None).await.unwrap().len(), 2);
    let bobs = store.list_sessions(Some("bob")).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].id, b.id);
}

async fn users_round_trip_and_names_are_unique(store: Arc<dyn Store>) {
    let user = UserRecord {
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        attributes: attrs(),
    };
    store.put_user(&user, T0).await.unwrap();
    assert!(matches!(
        store.put_user(&user, T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_user("alice").await.unwrap(), Some(user.clone()));
    assert!(store
        .put_password_hash("alice", "$argon2id$y")
        .await
        .unwrap());
    assert!(!store.put_password_hash("nobody", "x").await.unwrap());
    let mut other = Attributes::new();
    other.insert("mail".into(), vec!["a@x".into()]);
    assert!(store.put_user_attributes("alice", &other).await.unwrap());
    let got = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(
        (got.password_hash.as_str(), &got.attributes),
        ("$argon2id$y", &other)
    );
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(store.delete_user("alice", T0).await.unwrap());
    assert!(!store.delete_user("alice", T0).await.unwrap());
    assert_eq!(
        store.get_session(&tgt.key()).await.unwrap(),
        None,
        "removing a user ends their sessions"
    );
    assert!(store.list_users().await.unwrap().is_empty());
}

async fn services_round_trip_with_their_policy(store: Arc<dyn Store>) {
    let mut s = RegisteredService::new(
        "app",
        ServicePattern::regex(r"https://app\.org/.*").unwrap(),
        ServiceOrigin::Database,
    );
    s.release = AttributeRelease::Only(vec![
        AttributeRule::parse("mail=email").unwrap(),
        AttributeRule::parse("uid").unwrap(),
    ]);
    s.username_attribute = Some("uid".into());
    s.requirements = vec![Requirement::parse("memberOf=cn=staff,.*").unwrap()];
    s.sso = false;
    s.logout_url = Some("https://app.org/slo".into());
    s.proxy_callback = Some(ServicePattern::regex("https://app.org/pgt").unwrap());
    s.proxy_target = true;
    s.theme = Some("campus".into());
    s.description = Some("Mail & calendar".into());
    store.put_service(&s).await.unwrap();
    assert!(matches!(
        store.put_service(&s).await,
        Err(StoreError::Conflict(_))
    ));
    let prefix = RegisteredService::new(
        "b",
        ServicePattern::from_parts("prefix", "https://b.org/").unwrap(),
        ServiceOrigin::Database,
    );
    store.put_service(&prefix).await.unwrap();
    let listed = store.list_services().await.unwrap();
    assert_eq!(listed.len(), 2);
    let got = &listed[0];
    assert_eq!(got.name, "app");
    assert_eq!(format!("{:?}", got.pattern), format!("{:?}", s.pattern));
    assert_eq!(got.release, s.release);
    assert_eq!(got.username_attribute, s.username_attribute);
    assert_eq!(got.requirements[0].to_string(), "memberOf=cn=staff,.*");
    assert!(!got.sso);
    assert_eq!(got.logout_url, s.logout_url);
    assert_eq!(
        format!("{:?}", got.proxy_callback),
        format!("{:?}", s.proxy_callback)
    );
    assert!(got.proxy_target && !listed[1].proxy_target && listed[1].proxy_callback.is_none());
    assert_eq!(got.theme.as_deref(), Some("campus"));
    assert_eq!(got.description.as_deref(), Some("Mail & calendar"));
    assert!(listed[1].theme.is_none() && listed[1].description.is_none());
    assert_eq!(listed[1].pattern.kind(), "prefix");
    assert!(store.delete_service("app").await.unwrap());
    assert!(!store.delete_service("app").await.unwrap());
}

async fn login_tickets_are_single_use_and_expire(store: Arc<dyn Store>) {
    let lt = LoginTicketId::generate(&mut rng());
    store
        .put_login_ticket(&lt.key(), T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(store.take_login_ticket(&lt.key(), T0).await.unwrap());
    assert!(!store.take_login_ticket(&lt.key(), T0).await.unwrap());
    let old = LoginTicketId::generate(&mut rng());
    store
        .put_login_ticket(&old.key(), T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(!store
        .take_login_ticket(&old.key(), T0.plus(Duration::from_secs(60)))
        .await
        .unwrap());
}

async fn login_failures_count_within_a_window(store: Arc<dyn Store>) {
    let window = Duration::from_secs(60);
    assert_eq!(store.get_login_failures("user:alice").await.unwrap(), None);
    for i in 1..=3u32 {
        let f = store
            .record_login_failure(
                "user:alice",
                T0.plus(Duration::from_secs(u64::from(i))),
                window,
            )
            .await
            .unwrap();
        assert_eq!(f.failures, i);
        assert_eq!(f.first_at, T0.plus(Duration::from_secs(1)));
    }
    let fresh = store
        .record_login_failure("user:alice", T0.plus(Duration::from_secs(200)), window)
        .await
        .unwrap();
    assert_eq!(fresh.failures, 1, "a quiet window starts the count again");
    let address = store
        .record_login_failure("ip:192.0.2.1", T0, window)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_login_failures_of(&["ip:192.0.2.1", "user:bob", "user:alice", "ip:192.0.2.1"])
            .await
            .unwrap(),
        vec![Some(address), None, Some(fresh), Some(address)],
        "one read of several keys answers in their order"
    );
    assert_eq!(
        store.get_login_failures_of(&[]).await.unwrap(),
        vec![],
        "no keys, no failures"
    );
    store.delete_login_failures("user:alice").await.unwrap();
    assert_eq!(store.get_login_failures("user:alice").await.unwrap(), None);
}

async fn expired_rows_are_swept(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(30)))
        .await
        .unwrap();
    let (tgt2, s2) = new_session("bob");
    store
        .put_session(&s2, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    let t = ticket_for(&s2, "https://app/");
    store.put_service_ticket(&t, None, None).await.unwrap();
    store
        .record_login_failure("ip:1", T0, Duration::from_secs(60))
        .await
        .unwrap();
    let swept = store
        .delete_expired(T0.plus(Duration::from_secs(61)), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(swept, 3, "session, ticket (60 s) and failure entry");
    assert_eq!(store.get_session(&tgt.key()).await.unwrap(), None);
    assert!(store.get_session(&tgt2.key()).await.unwrap().is_some());
    assert_eq!(store.get_login_failures("ip:1").await.unwrap(), None);
}

/// A sweep deletes every expired row however many there are (the SQLite store deletes them a
/// slice of a thousand per job), and nothing that still lives.
async fn a_sweep_of_many_expired_rows_deletes_them_all(store: Arc<dyn Store>) {
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    const EXPIRED: usize = 2_345;
    let mut tickets: Vec<ServiceTicket> = (0..EXPIRED)
        .map(|_| ticket_for(&s, "https://app/"))
        .collect();
    let live = ServiceTicket {
        expires_at: T0.plus(Duration::from_secs(3600)),
        ..ticket_for(&s, "https://app/")
    };
    tickets.push(live.clone());
    // Sessions are swept in slices too; each queues the single logout of the service it entered.
    const EXPIRED_SESSIONS: usize = 2_101;
    let expired_sessions: Vec<SsoSession> = (0..EXPIRED_SESSIONS)
        .map(|_| new_session("bob").1)
        .collect();
    for chunk in expired_sessions.chunks(100) {
        let mut writes = tokio::task::JoinSet::new();
        for session in chunk {
            let (store, session) = (Arc::clone(&store), session.clone());
            writes.spawn(async move {
                store
                    .put_session(&session, T0.plus(Duration::from_secs(60)))
                    .await?;
                let access = ServiceAccess {
                    service: "https://app/".into(),
                    ticket: format!("ST-{}", session.id.as_str()),
                    validated_at: T0,
                };
                store.put_service_access(&session.id, &access).await
            });
        }
        while let Some(written) = writes.join_next().await {
            written.unwrap().unwrap();
        }
    }
    for chunk in tickets.chunks(100) {
        let mut writes = tokio::task::JoinSet::new();
        for t in chunk {
            let (store, t) = (Arc::clone(&store), t.clone());
            writes.spawn(async move { store.put_service_ticket(&t, None, None).await });
        }
        while let Some(written) = writes.join_next().await {
            written.unwrap().unwrap();
        }
    }
    let swept = store
        .delete_expired(T0.plus(Duration::from_secs(61)), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(swept, u64::try_from(EXPIRED + EXPIRED_SESSIONS).unwrap());
    assert_eq!(
        store.take_service_ticket(&tickets[0].key).await.unwrap(),
        None
    );
    let queued = store.list_slo_deliveries().await.unwrap();
    assert_eq!(
        queued.len(),
        EXPIRED_SESSIONS,
        "one logout per ended session"
    );
    let mut ended: Vec<&str> = queued.iter().map(|d| d.session_id.as_str()).collect();
    ended.sort_unstable();
    ended.dedup();
    assert_eq!(ended.len(), EXPIRED_SESSIONS);
    assert!(queued
        .iter()
        .all(|d| d.ticket == format!("ST-{}", d.session_id.as_str())));
    assert!(store.get_session(&s.tgt).await.unwrap().is_some());
    for ended in &expired_sessions[..3] {
        assert_eq!(store.get_session(&ended.tgt).await.unwrap(), None);
    }
    assert_eq!(
        store.take_service_ticket(&live.key).await.unwrap(),
        Some(live)
    );
}

async fn ended_sessions_queue_single_logout_for_their_services(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    for (service, ticket) in [("https://a/", "ST-1"), ("https://b/?x", "ST-2")] {
        let access = ServiceAccess {
            service: service.into(),
            ticket: ticket.into(),
            validated_at: T0,
        };
        store.put_service_access(&s.id, &access).await.unwrap();
    }
    let (_, quiet) = new_session("alice");
    store
        .put_session(&quiet, T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        store.list_slo_deliveries().await.unwrap().is_empty(),
        "nothing is queued while sessions live"
    );
    let later = T0.plus(Duration::from_secs(5));
    store
        .take_session(&tgt.key(), later)
        .await
        .unwrap()
        .unwrap();
    let queued = store.list_slo_deliveries().await.unwrap();
    let mut got: Vec<_> = queued
        .iter()
        .map(|d| (d.service.as_str(), d.ticket.as_str(), d.username.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("https://a/", "ST-1", "alice"),
            ("https://b/?x", "ST-2", "alice")
        ]
    );
    assert!(queued
        .iter()
        .all(|d| d.session_id == s.id && d.created_at == later && d.attempts == 0));
    assert!(store
        .take_session_by_id(&quiet.id, later)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.list_slo_deliveries().await.unwrap().len(),
        2,
        "a session that entered nothing queues nothing"
    );
}

async fn expiry_and_user_removal_queue_single_logout_too(store: Arc<dyn Store>) {
    let (_, expiring) = new_session("alice");
    store
        .put_session(&expiring, T0.plus(Duration::from_secs(10)))
        .await
        .unwrap();
    let (_, bobs) = new_session("bob");
    store
        .put_session(&bobs, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    for (s, ticket) in [(&expiring, "ST-e"), (&bobs, "ST-b")] {
        let access = ServiceAccess {
            service: "https://a/".into(),
            ticket: ticket.into(),
            validated_at: T0,
        };
        store.put_service_access(&s.id, &access).await.unwrap();
    }
    store
        .delete_expired(T0.plus(Duration::from_secs(10)), Duration::from_secs(60))
        .await
        .unwrap();
    let tickets: Vec<_> = store
        .list_slo_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.ticket)
        .collect();
    assert_eq!(tickets, ["ST-e"]);
    store
        .put_user(
            &UserRecord {
                username: "bob".into(),
                password_hash: "x".into(),
                attributes: Attributes::new(),
            },
            T0,
        )
        .await
        .unwrap();
    assert!(store.delete_user("bob", T0).await.unwrap());
    let tickets: Vec<_> = store
        .list_slo_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.ticket)
        .collect();
    assert_eq!(tickets, ["ST-e", "ST-b"]);
}

async fn deliveries_are_claimed_once_leased_and_retried(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    for i in 0..30 {
        let access = ServiceAccess {
            service: format!("https://app{i}/"),
            ticket: format!("ST-{i}"),
            validated_at: T0,
        };
        store.put_service_access(&s.id, &access).await.unwrap();
    }
    store.take_session(&tgt.key(), T0).await.unwrap();
    let lease = Duration::from_secs(30);
    // Concurrent claimers (several nodes) never get the same delivery.
    let claimers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_slo_deliveries(T0, lease, 7).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for c in claimers {
        ids.extend(c.await.unwrap().into_iter().map(|d| (d.id, d.attempts)));
    }
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!((before, ids.len()), (30, 30));
    assert!(ids.iter().all(|(_, attempts)| *attempts == 1));
    assert!(
        store
            .claim_slo_deliveries(T0, lease, 100)
            .await
            .unwrap()
            .is_empty(),
        "all claimed"
    );
    // A claim whose node died is taken again once its lease runs out.
    let again = store
        .claim_slo_deliveries(T0.plus(lease), lease, 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 30);
    assert!(again.iter().all(|d| d.attempts == 2));
    let (first, second) = (again[0].id, again[1].id);
    store.delete_slo_delivery(first).await.unwrap();
    let retry_at = T0.plus(Duration::from_secs(100));
    store
        .retry_slo_delivery(second, retry_at, "connection refused")
        .await
        .unwrap();
    let now = T0.plus(lease).plus(lease);
    let due: Vec<_> = store
        .claim_slo_deliveries(now, lease, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        due.len(),
        28,
        "the retried one waits, the deleted one is gone"
    );
    assert!(!due.contains(&first) && !due.contains(&second));
    for id in due {
        store.delete_slo_delivery(id).await.unwrap();
    }
    let retried = store
        .claim_slo_deliveries(retry_at, lease, 100)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].id, retried[0].last_error.as_deref()),
        (second, Some("connection refused"))
    );
}

async fn proxy_granting_tickets_live_and_end_with_their_session(store: Arc<dyn Store>) {
    use tessera_protocol::cas::proxy::ProxyGrantingTicket;
    use tessera_protocol::ticket::ProxyGrantingTicketId;
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    let id = ProxyGrantingTicketId::generate(&mut rng());
    let pgt = ProxyGrantingTicket {
        key: id.key(),
        session_id: s.id.clone(),
        username: "alice".into(),
        attributes: attrs(),
        authenticated_at: T0,
        long_term: false,
        proxies: vec!["https://b/pgt".into(), "https://a/pgt".into()],
        expires_at: T0.plus(Duration::from_secs(60)),
    };
    store.put_proxy_granting_ticket(&pgt).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            store.get_proxy_granting_ticket(&id.key()).await.unwrap(),
            Some(pgt.clone()),
            "reusable"
        );
    }
    let mut pt = ticket_for(&s, "imap://mail");
    pt.proxies = pgt.proxies.clone();
    store.put_service_ticket(&pt, None, None).await.unwrap();
    assert_eq!(
        store
            .take_service_ticket(&pt.key)
            .await
            .unwrap()
            .unwrap()
            .proxies,
        pgt.proxies
    );
    store.take_session(&tgt.key(), T0).await.unwrap();
    assert_eq!(
        store.get_proxy_granting_ticket(&id.key()).await.unwrap(),
        None,
        "a PGT ends with its session"
    );
    store.put_proxy_granting_ticket(&pgt).await.unwrap();
    assert_eq!(
        store.get_proxy_granting_ticket(&id.key()).await.unwrap(),
        None,
        "nor can one be added to an ended session"
    );
}

/// Every change to the services or clients moves the registry version; anything else leaves it.
async fn the_registry_version_moves_with_services_and_clients(store: Arc<dyn Store>) {
    let mut last = store.registry_version().await.unwrap();
    let mut moved = |now: i64, what: &str| {
        assert!(
            now > last,
            "{what} did not move the version ({last} → {now})"
        );
        last = now;
    };
    let app = RegisteredService::new(
        "app",
        ServicePattern::regex(r"https://app\.org/.*").unwrap(),
        ServiceOrigin::Database,
    );
    store.put_service(&app).await.unwrap();
    moved(store.registry_version().await.unwrap(), "adding a service");
    store.put_client(&client("rp", None)).await.unwrap();
    moved(store.registry_version().await.unwrap(), "adding a client");
    assert!(store.delete_client("rp").await.unwrap());
    moved(store.registry_version().await.unwrap(), "removing a client");
    assert!(store.delete_service("app").await.unwrap());
    moved(
        store.registry_version().await.unwrap(),
        "removing a service",
    );

    let unchanged = store.registry_version().await.unwrap();
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    store
        .put_service_ticket(&ticket_for(&s, "https://app.org/"), None, None)
        .await
        .unwrap();
    assert!(!store.delete_service("app").await.unwrap());
    assert_eq!(store.registry_version().await.unwrap(), unchanged);
}

fn client(id: &str, backchannel_logout_uri: Option<&str>) -> OidcClient {
    let mut c = OidcClient::new(
        id,
        ClientSecret::hash(&"s".repeat(40)),
        ServiceOrigin::Database,
    );
    c.name = format!("The {id} app");
    c.redirect_uris = vec![format!("https://{id}/cb")];
    c.post_logout_redirect_uris = vec![format!("https://{id}/bye")];
    c.scopes = vec!["openid".into(), "email".into()];
    c.backchannel_logout_uri = backchannel_logout_uri.map(Into::into);
    c.signing_alg = SigningAlg::Es256;
    c.consent = true;
    c.release = AttributeRelease::Only(vec![AttributeRule::parse("mail=email").unwrap()]);
    c
}

fn code_for(s: &SsoSession, key: &str, client_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        key: TicketKey::of(key),
        client_id: client_id.into(),
        redirect_uri: format!("https://{client_id}/cb"),
        scope: vec!["openid".into(), "email".into()],
        nonce: Some("n-0S6".into()),
        code_challenge: None,
        session_id: s.id.clone(),
        username: s.username.clone(),
        attributes: attrs(),
        auth_time: T0,
        expires_at: T0.plus(Duration::from_secs(60)),
    }
}

/// A grant of `s` to `client_id` with an access token (expiring after `ttl`) and a refresh token.
fn grant_for(
    s: &SsoSession,
    id: &str,
    client_id: &str,
    backchannel_logout_uri: Option<&str>,
    ttl: Duration,
) -> (Grant, AccessToken, RefreshToken) {
    let grant = Grant {
        id: id.into(),
        client_id: client_id.into(),
        session_id: s.id.clone(),
        username: s.username.clone(),
        attributes: attrs(),
        scope: vec!["openid".into(), "email".into()],
        auth_time: T0,
        backchannel_logout_uri: backchannel_logout_uri.map(Into::into),
        created_at: T0,
    };
    let access = AccessToken {
        key: TicketKey::of(&format!("AT-{id}")),
        grant_id: id.into(),
        scope: vec!["openid".into()],
        issued_at: T0,
        expires_at: T0.plus(ttl),
    };
    let refresh = RefreshToken {
        key: TicketKey::of(&format!("RT-{id}")),
        grant_id: id.into(),
        expires_at: T0.plus(ttl),
        rotated_at: None,
    };
    (grant, access, refresh)
}

async fn oidc_clients_round_trip_and_ids_are_unique(store: Arc<dyn Store>) {
    let c = client("app", Some("https://app/bcl"));
    store.put_client(&c).await.unwrap();
    assert!(matches!(
        store.put_client(&c).await,
        Err(StoreError::Conflict(_))
    ));
    let mut public = OidcClient::new("native", ClientSecret::Public, ServiceOrigin::Database);
    public.redirect_uris = vec!["http://127.0.0.1/cb".into()];
    public.enabled = false;
    store.put_client(&public).await.unwrap();
    let listed = store.list_clients().await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["app", "native"]
    );
    let got = &listed[0];
    assert_eq!(
        (
            &got.name,
            &got.redirect_uris,
            &got.post_logout_redirect_uris,
            &got.scopes,
            &got.backchannel_logout_uri
        ),
        (
            &c.name,
            &c.redirect_uris,
            &c.post_logout_redirect_uris,
            &c.scopes,
            &c.backchannel_logout_uri
        )
    );
    assert!(got.secret.verify(&"s".repeat(40)) && !got.secret.verify("other"));
    assert_eq!(
        (got.signing_alg, got.consent, &got.release, got.enabled),
        (SigningAlg::Es256, true, &c.release, true)
    );
    assert!(listed[1].secret.is_public() && !listed[1].enabled);

    // Removing a client revokes its grants and forgets its consents.
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    let (g, at, rt) = grant_for(&s, "g1", "app", None, Duration::from_secs(60));
    assert!(store.put_grant(&g, &at, Some(&rt)).await.unwrap());
    store
        .put_consent("alice", "app", &g.scope, T0)
        .await
        .unwrap();
    assert!(store.delete_client("app").await.unwrap());
    assert!(!store.delete_client("app").await.unwrap());
    assert_eq!(store.get_access_token(&at.key, None).await.unwrap(), None);
    assert_eq!(store.get_refresh_token(&rt.key, None).await.unwrap(), None);
    assert_eq!(store.get_consent("alice", "app").await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

async fn authorization_codes_are_redeemed_once_and_a_replay_revokes_the_grant(
    store: Arc<dyn Store>,
) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    let code = code_for(&s, "code-1", "app");
    // Issuing a code commits the session's use with it.
    let used = T0.plus(Duration::from_secs(3));
    let touch = SessionTouch {
        at: used,
        expires_at: used.plus(Duration::from_secs(600)),
    };
    store
        .put_authorization_code(&code, Some(touch), None)
        .await
        .unwrap();
    let session = store.get_session(&tgt.key()).await.unwrap().unwrap();
    assert_eq!(session.last_used_at, used);
    match store
        .redeem_authorization_code(&code.key, "g1")
        .await
        .unwrap()
    {
        CodeRedemption::Redeemed(got) => assert_eq!(*got, code),
        other => panic!("first redemption: {other:?}"),
    }
    let (g, at, rt) = grant_for(&s, "g1", "app", None, Duration::from_secs(60));
    assert!(store.put_grant(&g, &at, Some(&rt)).await.unwrap());
    assert_eq!(
        store.get_access_token(&at.key, None).await.unwrap(),
        Some((at.clone(), g.clone()))
    );
    assert!(matches!(
        store
            .redeem_authorization_code(&code.key, "g2")
            .await
            .unwrap(),
        CodeRedemption::Replayed
    ));
    assert_eq!(
        store.get_access_token(&at.key, None).await.unwrap(),
        None,
        "a replayed code revokes the grant made from it"
    );
    assert!(matches!(
        store
            .redeem_authorization_code(&TicketKey::of("nope"), "g3")
            .await
            .unwrap(),
        CodeRedemption::Unknown
    ));

    // Concurrent redemptions (several nodes): exactly one gets the code.
    for round in 0..5 {
        let code = code_for(&s, &format!("code-race-{round}"), "app");
        store
            .put_authorization_code(&code, None, None)
            .await
            .unwrap();
        let redeemers: Vec<_> = (0..8)
            .map(|i| {
                let (store, key) = (store.clone(), code.key.clone());
                tokio::spawn(async move {
                    store
                        .redeem_authorization_code(&key, &format!("g-{round}-{i}"))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut redeemed = 0;
        for r in redeemers {
            match r.await.unwrap() {
                CodeRedemption::Redeemed(_) => redeemed += 1,
                CodeRedemption::Replayed => {}
                CodeRedemption::Unknown => panic!("the code exists"),
            }
        }
        assert_eq!(redeemed, 1);
    }
}

async fn a_redeemed_code_saves_its_grant_in_the_same_write(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    let new_grant = |id: &str| {
        let (grant, access, refresh) = grant_for(&s, id, "app", None, Duration::from_secs(60));
        NewGrant {
            grant,
            access,
            refresh: Some(refresh),
        }
    };

    // Redeemed and granted: the rule sees the code, its grant and tokens are saved.
    let code = code_for(&s, "code-granted", "app");
    store
        .put_authorization_code(&code, None, None)
        .await
        .unwrap();
    let granted = new_grant("g1");
    let rule = {
        let (expected, granted) = (code.clone(), granted.clone());
        Box::new(move |c: &AuthorizationCode| {
            assert_eq!(c, &expected, "the rule sees the code redeemed");
            Some(granted)
        })
    };
    let (redemption, saved) = store
        .redeem_authorization_code_granting(&code.key, "g1", rule, None)
        .await
        .unwrap();
    assert_eq!(redemption, CodeRedemption::Redeemed(Box::new(code.clone())));
    assert!(saved);
    assert_eq!(
        store
            .get_access_token(&granted.access.key, None)
            .await
            .unwrap(),
        Some((granted.access.clone(), granted.grant.clone()))
    );
    let refresh = granted.refresh.clone().unwrap();
    assert_eq!(
        store.get_refresh_token(&refresh.key, None).await.unwrap(),
        Some((refresh, granted.grant.clone()))
    );

    // A refused request saves no grant, and its code stays spent: a replay is a replay.
    let refused = code_for(&s, "code-refused", "app");
    store
        .put_authorization_code(&refused, None, None)
        .await
        .unwrap();
    let (redemption, saved) = store
        .redeem_authorization_code_granting(&refused.key, "g2", Box::new(|_| None), None)
        .await
        .unwrap();
    assert!(matches!(redemption, CodeRedemption::Redeemed(_)) && !saved);
    assert_eq!(
        store
            .redeem_authorization_code(&refused.key, "g3")
            .await
            .unwrap(),
        CodeRedemption::Replayed
    );

    // A replay of the first code revokes its grant and asks for no new one.
    let (redemption, saved) = store
        .redeem_authorization_code_granting(
            &code.key,
            "g4",
            Box::new(|_| panic!("a replay asks for no grant")),
            None,
        )
        .await
        .unwrap();
    assert!(redemption == CodeRedemption::Replayed && !saved);
    assert_eq!(
        store
            .get_access_token(&granted.access.key, None)
            .await
            .unwrap(),
        None
    );

    // The session ended meanwhile: the code is spent, no grant is saved.
    let late = code_for(&s, "code-late", "app");
    store
        .put_authorization_code(&late, None, None)
        .await
        .unwrap();
    store.take_session(&tgt.key(), T0).await.unwrap().unwrap();
    let orphan = new_grant("g5");
    let (_, saved) = store
        .redeem_authorization_code_granting(
            &late.key,
            "g5",
            {
                let orphan = orphan.clone();
                Box::new(move |_| Some(orphan))
            },
            None,
        )
        .await
        .unwrap();
    assert!(!saved);
    assert_eq!(
        store
            .get_access_token(&orphan.access.key, None)
            .await
            .unwrap(),
        None
    );
}

async fn grants_and_tokens_rotate_and_end_with_their_session(store: Arc<dyn Store>) {
    let (tgt, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    let (g, at, rt) = grant_for(
        &s,
        "g1",
        "app",
        Some("https://app/bcl"),
        Duration::from_secs(60),
    );
    assert!(store.put_grant(&g, &at, Some(&rt)).await.unwrap());
    assert_eq!(
        store.get_refresh_token(&rt.key, None).await.unwrap(),
        Some((rt.clone(), g.clone()))
    );
    // Rotation marks the old refresh token (keeping the first rotation time) and adds a new pair.
    let later = T0.plus(Duration::from_secs(10));
    let mut at2 = at.clone();
    at2.key = TicketKey::of("AT-2");
    let mut rt2 = rt.clone();
    rt2.key = TicketKey::of("RT-2");
    assert!(store
        .rotate_refresh_token(&rt.key, later, &at2, &rt2, None)
        .await
        .unwrap());
    let mut at3 = at.clone();
    at3.key = TicketKey::of("AT-3");
    let mut rt3 = rt.clone();
    rt3.key = TicketKey::of("RT-3");
    assert!(store
        .rotate_refresh_token(
            &rt.key,
            later.plus(Duration::from_secs(5)),
            &at3,
            &rt3,
            None
        )
        .await
        .unwrap());
    let (old, _) = store
        .get_refresh_token(&rt.key, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.rotated_at, Some(later));
    // An unknown refresh token rotates nothing, and no token is saved for it.
    let mut at_unknown = at.clone();
    at_unknown.key = TicketKey::of("AT-unknown");
    let mut rt_unknown = rt.clone();
    rt_unknown.key = TicketKey::of("RT-unknown-new");
    assert!(!store
        .rotate_refresh_token(
            &TicketKey::of("RT-unknown"),
            later,
            &at_unknown,
            &rt_unknown,
            None
        )
        .await
        .unwrap());
    assert!(store
        .get_access_token(&at_unknown.key, None)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_refresh_token(&rt_unknown.key, None)
        .await
        .unwrap()
        .is_none());
    // Judged with clients that have changed since: nothing is written; judged again, it rotates.
    let decided = store.registry_version().await.unwrap();
    assert!(store
        .get_refresh_token(&rt2.key, Some(decided))
        .await
        .unwrap()
        .is_some());
    let other = RegisteredService::new(
        "other",
        ServicePattern::regex(r"https://other/.*").unwrap(),
        ServiceOrigin::Database,
    );
    store.put_service(&other).await.unwrap();
    assert!(matches!(
        store.get_refresh_token(&rt2.key, Some(decided)).await,
        Err(StoreError::RegistryChanged)
    ));
    let mut at4 = at.clone();
    at4.key = TicketKey::of("AT-4");
    let mut rt4 = rt.clone();
    rt4.key = TicketKey::of("RT-4");
    assert!(matches!(
        store
            .rotate_refresh_token(&rt2.key, later, &at4, &rt4, Some(decided))
            .await,
        Err(StoreError::RegistryChanged)
    ));
    assert_eq!(
        store
            .get_refresh_token(&rt2.key, None)
            .await
            .unwrap()
            .unwrap()
            .0
            .rotated_at,
        None
    );
    assert!(store
        .get_refresh_token(&rt4.key, None)
        .await
        .unwrap()
        .is_none());
    let current = store.registry_version().await.unwrap();
    assert!(store
        .rotate_refresh_token(&rt2.key, later, &at4, &rt4, Some(current))
        .await
        .unwrap());
    assert!(store
        .get_refresh_token(&rt4.key, None)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .get_refresh_token(&rt2.key, None)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .get_access_token(&at2.key, None)
        .await
        .unwrap()
        .is_some());
    assert!(store.delete_access_token(&at2.key).await.unwrap());
    assert!(!store.delete_access_token(&at2.key).await.unwrap());

    // A second client without a back-channel logout URI, and a grant revoked on its own.
    let (g2, at_b, _) = grant_for(&s, "g2", "quiet", None, Duration::from_secs(60));
    assert!(store.put_grant(&g2, &at_b, None).await.unwrap());
    let (g3, at_c, _) = grant_for(
        &s,
        "g3",
        "gone",
        Some("https://gone/bcl"),
        Duration::from_secs(60),
    );
    assert!(store.put_grant(&g3, &at_c, None).await.unwrap());
    assert!(store.delete_grant("g3").await.unwrap());
    assert!(!store.delete_grant("g3").await.unwrap());
    assert_eq!(store.get_access_token(&at_c.key, None).await.unwrap(), None);

    let ended = store
        .take_session(&tgt.key(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.clients, ["app", "quiet"]);
    let queued = store.list_slo_deliveries().await.unwrap();
    assert_eq!(
        queued.len(),
        1,
        "only clients with a back-channel logout URI"
    );
    let d = &queued[0];
    assert_eq!(
        (
            d.client_id.as_deref(),
            d.service.as_str(),
            d.ticket.as_str(),
            d.username.as_str()
        ),
        (Some("app"), "https://app/bcl", "", "alice")
    );
    assert_eq!((d.session_id.clone(), d.created_at), (s.id.clone(), later));
    for key in [&at.key, &at3.key, &at_b.key] {
        assert_eq!(store.get_access_token(key, None).await.unwrap(), None);
    }
    assert_eq!(store.get_refresh_token(&rt3.key, None).await.unwrap(), None);
    assert!(
        !store
            .rotate_refresh_token(&rt3.key, later, &at, &rt, None)
            .await
            .unwrap(),
        "the grant is gone"
    );
    assert!(
        !store.put_grant(&g, &at, Some(&rt)).await.unwrap(),
        "no grant for an ended session"
    );
    assert_eq!(store.get_access_token(&at.key, None).await.unwrap(), None);
}

async fn consents_are_remembered_and_replaced(store: Arc<dyn Store>) {
    assert_eq!(store.get_consent("alice", "app").await.unwrap(), None);
    let scope = vec!["openid".to_owned(), "email".to_owned()];
    store.put_consent("alice", "app", &scope, T0).await.unwrap();
    assert_eq!(
        store.get_consent("alice", "app").await.unwrap(),
        Some(scope)
    );
    store
        .put_consent("alice", "app", &["openid".to_owned()], T0)
        .await
        .unwrap();
    assert_eq!(
        store.get_consent("alice", "app").await.unwrap(),
        Some(vec!["openid".to_owned()])
    );
    assert_eq!(store.get_consent("bob", "app").await.unwrap(), None);
}

async fn signing_keys_retire_their_predecessors(store: Arc<dyn Store>) {
    let key = |kid: &str, alg, at: u64| SigningKeyRecord {
        kid: kid.into(),
        alg,
        private_pem: format!("-----BEGIN PRIVATE KEY-----{kid}"),
        created_at: T0.plus(Duration::from_secs(at)),
        active_from: T0.plus(Duration::from_secs(at + 10)),
        retired_at: None,
    };
    let rsa1 = key("rsa1", SigningAlg::Rs256, 0);
    let ec1 = key("ec1", SigningAlg::Es256, 1);
    let rsa2 = key("rsa2", SigningAlg::Rs256, 100);
    for k in [&rsa1, &ec1, &rsa2] {
        store.put_signing_key(k).await.unwrap();
    }
    assert!(matches!(
        store.put_signing_key(&rsa2).await,
        Err(StoreError::Conflict(_))
    ));
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.kid.as_str(), k.retired_at))
            .collect::<Vec<_>>(),
        [
            ("rsa1", Some(rsa2.active_from)),
            ("ec1", None),
            ("rsa2", None)
        ]
    );
    assert_eq!(keys[2], rsa2);
    assert_eq!(
        store
            .delete_retired_signing_keys(rsa2.active_from)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_retired_signing_keys(rsa2.active_from.plus(Duration::from_secs(1)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 2);

    // Nodes rotating at once: one key of each algorithm stays unretired.
    let rotations: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let k = key(&format!("race{i}"), SigningAlg::Rs256, 200 + i);
            tokio::spawn(async move { store.put_signing_key(&k).await.unwrap() })
        })
        .collect();
    for r in rotations {
        r.await.unwrap();
    }
    let live: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.alg)
        .collect();
    assert_eq!(live.len(), 2, "{live:?}");
}

async fn settings_keep_the_first_value_written(store: Arc<dyn Store>) {
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .get_or_put_setting("cookie_key", &format!("value-{i}"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for w in writers {
        seen.push(w.await.unwrap());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "every node sees the first writer's value");
    assert_eq!(
        store
            .get_or_put_setting("cookie_key", "late")
            .await
            .unwrap(),
        seen[0]
    );
}

async fn expired_codes_and_tokens_are_swept(store: Arc<dyn Store>) {
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    let code = code_for(&s, "code-1", "app");
    store
        .put_authorization_code(&code, None, None)
        .await
        .unwrap();
    let (g, at, rt) = grant_for(&s, "g1", "app", None, Duration::from_secs(30));
    assert!(store.put_grant(&g, &at, Some(&rt)).await.unwrap());
    let (g2, at2, rt2) = grant_for(&s, "g2", "app", None, Duration::from_secs(600));
    assert!(store.put_grant(&g2, &at2, Some(&rt2)).await.unwrap());
    let swept = store
        .delete_expired(T0.plus(Duration::from_secs(61)), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(swept, 3, "the code, an access token and a refresh token");
    assert!(matches!(
        store
            .redeem_authorization_code(&code.key, "g3")
            .await
            .unwrap(),
        CodeRedemption::Unknown
    ));
    assert_eq!(store.get_access_token(&at.key, None).await.unwrap(), None);
    assert_eq!(store.get_refresh_token(&rt.key, None).await.unwrap(), None);
    assert!(store
        .get_access_token(&at2.key, None)
        .await
        .unwrap()
        .is_some());
}

async fn the_database_answers_and_its_pool_is_reported(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    let usage = store.pool_usage();
    assert!(
        usage.connections >= 1 && usage.idle <= usage.connections,
        "{usage:?}"
    );
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}/nested/tessera.db", dir.path().display());
    Arc::new(SqliteStore::connect(&url).await.unwrap())
}

/// A fresh, empty database on the PostgreSQL test server (named by `TESSERA_TEST_POSTGRES_URL`,
/// which `scripts/postgres-test-server start` exports).
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create() -> Self {
        let admin_url = std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "TESSERA_TEST_POSTGRES_URL is not set, and the PostgreSQL store tests need a server: \
                 run scripts/test, or start a throwaway one with \
                 `eval \"$(scripts/postgres-test-server start)\"` (and stop it with \
                 `scripts/postgres-test-server stop`)"
            )
        });
        let name = format!(
            "tessera_test_{}_{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let mut admin = sqlx_postgres::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach the PostgreSQL test server at {admin_url}: {e}")
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Self {
            admin_url,
            name,
            url: url.into(),
        }
    }

    async fn store(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::connect(&self.url).await.unwrap())
    }

    /// Drops the database, best-effort: the server is throwaway.
    async fn drop(self) {
        if let Ok(mut admin) = sqlx_postgres::PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = admin.execute(sql.as_str()).await;
            let _ = admin.close().await;
        }
    }
}

/// Runs each suite function on a fresh store of every backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(super::sqlite(&dir).await).await;
                }
            )*
        }

        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::PostgresDatabase::create().await;
                    super::$name(db.store().await).await;
                    db.drop().await;
                }
            )*
        }
    };
}

backend_tests!(
    service_tickets_are_taken_once,
    ticket_writes_decided_with_an_old_registry_write_nothing,
    a_taken_ticket_records_the_service_its_session_entered,
    concurrent_takes_hand_a_ticket_to_exactly_one,
    sessions_live_are_touched_and_end_with_their_tickets,
    a_renewed_session_keeps_its_id_and_what_it_entered,
    sessions_are_listed_by_user,
    users_round_trip_and_names_are_unique,
    services_round_trip_with_their_policy,
    the_registry_version_moves_with_services_and_clients,
    login_tickets_are_single_use_and_expire,
    login_failures_count_within_a_window,
    expired_rows_are_swept,
    a_sweep_of_many_expired_rows_deletes_them_all,
    ended_sessions_queue_single_logout_for_their_services,
    expiry_and_user_removal_queue_single_logout_too,
    deliveries_are_claimed_once_leased_and_retried,
    proxy_granting_tickets_live_and_end_with_their_session,
    oidc_clients_round_trip_and_ids_are_unique,
    authorization_codes_are_redeemed_once_and_a_replay_revokes_the_grant,
    a_redeemed_code_saves_its_grant_in_the_same_write,
    grants_and_tokens_rotate_and_end_with_their_session,
    consents_are_remembered_and_replaced,
    signing_keys_retire_their_predecessors,
    settings_keep_the_first_value_written,
    expired_codes_and_tokens_are_swept,
    the_database_answers_and_its_pool_is_reported,
);

/// Several nodes start at once on a new database: the migrator's advisory lock lets one migrate
/// while the others wait, and all of them come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_starting_together_migrate_once() {
    let db = PostgresDatabase::create().await;
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().unwrap();
    }
    db.drop().await;
}

/// Two stores on one database (two pools: two nodes) see each other's writes, hand a ticket to
/// one taker, end a session once, and never claim the same logout delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_share_one_database() {
    let db = PostgresDatabase::create().await;
    let (a, b) = tokio::join!(
        PostgresStore::connect(&db.url),
        PostgresStore::connect(&db.url)
    );
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));

    let (tgt, s) = new_session("alice");
    a.put_session(&s, T0.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(b.get_session(&tgt.key()).await.unwrap(), Some(s.clone()));
    let t = ticket_for(&s, "https://app/");
    a.put_service_ticket(&t, None, None).await.unwrap();
    assert_eq!(
        b.take_service_ticket(&t.key).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(a.take_service_ticket(&t.key).await.unwrap(), None);
    assert_eq!(b.take_service_ticket(&t.key).await.unwrap(), None);

    for i in 0..50 {
        let access = ServiceAccess {
            service: format!("https://app{i}/"),
            ticket: format!("ST-{i}"),
            validated_at: T0,
        };
        a.put_service_access(&s.id, &access).await.unwrap();
    }
    // Both nodes end the session at once: one ends it, and its logout is queued once.
    let tgt_key = tgt.key();
    let (ended_a, ended_b) = tokio::join!(
        a.take_session(&tgt_key, T0),
        b.take_session_by_id(&s.id, T0)
    );
    let (ended_a, ended_b) = (ended_a.unwrap(), ended_b.unwrap());
    assert!(
        ended_a.is_some() != ended_b.is_some(),
        "exactly one node ends the session"
    );
    assert_eq!(ended_a.or(ended_b).unwrap().services.len(), 50);
    assert_eq!(b.list_slo_deliveries().await.unwrap().len(), 50);

    let lease = Duration::from_secs(30);
    let claimers: Vec<_> = (0..10)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let claimed = node.claim_slo_deliveries(T0, lease, 3).await.unwrap();
                    if claimed.is_empty() {
                        return ids;
                    }
                    ids.extend(claimed.into_iter().map(|d| d.id));
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for claimer in claimers {
        ids.extend(claimer.await.unwrap());
    }
    ids.sort_unstable();
    let claimed = ids.len();
    ids.dedup();
    assert_eq!(
        (claimed, ids.len()),
        (50, 50),
        "every delivery claimed, none twice"
    );
    db.drop().await;
}

#[tokio::test]
async fn connect_picks_the_backend_by_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tessera.db", dir.path().display());
    tessera_store::connect(&url).await.unwrap();
    let db = PostgresDatabase::create().await;
    let postgresql = db.url.replacen("postgres://", "postgresql://", 1);
    tessera_store::connect(&postgresql).await.unwrap();
    let err = tessera_store::connect("mysql://x").await.err().unwrap();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::BadUrl { .. })
            && msg.contains("mysql://x")
            && msg.contains("sqlite://")
            && msg.contains("postgres://"),
        "{msg}"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_committed_ticket_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (_, s) = new_session("alice");
    let t = ticket_for(&s, "https://app/");
    {
        let store = sqlite(&dir).await;
        store
            .put_session(&s, T0.plus(Duration::from_secs(60)))
            .await
            .unwrap();
        store.put_service_ticket(&t, None, None).await.unwrap();
    }
    let store = sqlite(&dir).await;
    assert_eq!(store.take_service_ticket(&t.key).await.unwrap(), Some(t));
}

#[tokio::test]
async fn bad_urls_are_named() {
    let err = SqliteStore::connect("mysql://x").await.unwrap_err();
    assert!(err.to_string().contains("mysql://x"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.db");
    for option in ["mode=ro", "cache=shared", "journal_mode=delete"] {
        let url = format!("sqlite://{}?{option}", file.display());
        let err = SqliteStore::connect(&url).await.err().unwrap();
        let msg = err.to_string();
        assert!(
            matches!(err, StoreError::BadUrl { .. })
                && msg.contains(&url)
                && msg.contains(&format!("unknown option `{option}`")),
            "{msg}"
        );
        assert!(!file.exists(), "a refused URL creates no database");
    }
    // sqlx's usual option, which says what Tessera does anyway, is accepted.
    SqliteStore::connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap();
    assert!(file.exists());
    for url in ["mysql://x", "postgres://h:notaport/db"] {
        let err = PostgresStore::connect(url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::BadUrl { .. }) && err.to_string().contains(url),
            "{err}"
        );
    }
}

// --- copying a deployment between databases (`tessera migrate`) -----------------------------

/// What [`fill_with_one_of_everything`] stored, to look up after a copy.
struct Filled {
    user: UserRecord,
    tgt: TicketKey,
    session: SsoSession,
    ticket: ServiceTicket,
    pgt: tessera_protocol::cas::proxy::ProxyGrantingTicket,
    login_ticket: TicketKey,
    code: AuthorizationCode,
    grant: Grant,
    access: AccessToken,
    refresh: RefreshToken,
    salt: String,
}

/// Stores a row in every table: a user, a service, a client, a live session with an unvalidated
/// ticket, a service it entered, a proxy-granting ticket, a code, a redeemed code, a grant with a
/// rotated refresh token, a consent; a login ticket, login failures, a queued (once tried)
/// single-logout delivery of an ended session, two signing keys (one retired) and the subject salt.
async fn fill_with_one_of_everything(store: &Arc<dyn Store>) -> Filled {
    use tessera_protocol::cas::proxy::ProxyGrantingTicket;
    use tessera_protocol::ticket::ProxyGrantingTicketId;

    let user = UserRecord {
        username: "alice".into(),
        password_hash: "$argon2id$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA".into(),
        attributes: attrs(),
    };
    store.put_user(&user, T0).await.unwrap();
    let mut service = RegisteredService::new(
        "app",
        ServicePattern::regex(r"https://app\.org/.*").unwrap(),
        ServiceOrigin::Database,
    );
    service.release = AttributeRelease::Only(vec![AttributeRule::parse("mail=email").unwrap()]);
    service.requirements = vec![Requirement::parse("eduPersonAffiliation=staff").unwrap()];
    service.logout_url = Some("https://app.org/slo".into());
    service.proxy_callback = Some(ServicePattern::regex("https://app.org/pgt").unwrap());
    store.put_service(&service).await.unwrap();
    store
        .put_client(&client("rp", Some("https://rp/bcl")))
        .await
        .unwrap();

    let (tgt, session) = new_session("alice");
    store
        .put_session(&session, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    let ticket = ticket_for(&session, "https://app.org/?a=b");
    store.put_service_ticket(&ticket, None, None).await.unwrap();
    let entered = ServiceAccess {
        service: "https://app.org/".into(),
        ticket: "ST-entered".into(),
        validated_at: T0,
    };
    store
        .put_service_access(&session.id, &entered)
        .await
        .unwrap();
    let pgt = ProxyGrantingTicket {
        key: ProxyGrantingTicketId::generate(&mut rng()).key(),
        session_id: session.id.clone(),
        username: "alice".into(),
        attributes: attrs(),
        authenticated_at: T0,
        long_term: false,
        proxies: vec!["https://app.org/pgt".into()],
        expires_at: T0.plus(Duration::from_secs(60)),
    };
    store.put_proxy_granting_ticket(&pgt).await.unwrap();

    let code = code_for(&session, "code-fresh", "rp");
    store
        .put_authorization_code(&code, None, None)
        .await
        .unwrap();
    let redeemed = code_for(&session, "code-redeemed", "rp");
    store
        .put_authorization_code(&redeemed, None, None)
        .await
        .unwrap();
    assert!(matches!(
        store
            .redeem_authorization_code(&redeemed.key, "g1")
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    let (grant, first_access, first_refresh) = grant_for(
        &session,
        "g1",
        "rp",
        Some("https://rp/bcl"),
        Duration::from_secs(600),
    );
    assert!(store
        .put_grant(&grant, &first_access, Some(&first_refresh))
        .await
        .unwrap());
    let mut access = first_access.clone();
    access.key = TicketKey::of("AT-rotated");
    let mut refresh = first_refresh.clone();
    refresh.key = TicketKey::of("RT-rotated");
    assert!(store
        .rotate_refresh_token(&first_refresh.key, T0, &access, &refresh, None)
        .await
        .unwrap());
    store
        .put_consent("alice", "rp", &grant.scope, T0)
        .await
        .unwrap();

    let login_ticket = LoginTicketId::generate(&mut rng()).key();
    store
        .put_login_ticket(&login_ticket, T0.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    store
        .record_login_failure("alice", T0, Duration::from_secs(60))
        .await
        .unwrap();

    // Another session that entered a service ends: its logout is queued, tried once and failed.
    let (ended_tgt, ended) = new_session("alice");
    store
        .put_session(&ended, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    store.put_service_access(&ended.id, &entered).await.unwrap();
    store.take_session(&ended_tgt.key(), T0).await.unwrap();
    let claimed = store
        .claim_slo_deliveries(T0, Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .retry_slo_delivery(claimed[0].id, T0.plus(Duration::from_secs(5)), "refused")
        .await
        .unwrap();

    for (kid, at) in [("old", 0), ("new", 100)] {
        store
            .put_signing_key(&SigningKeyRecord {
                kid: kid.into(),
                alg: SigningAlg::Rs256,
                private_pem: format!("-----BEGIN PRIVATE KEY-----{kid}"),
                created_at: T0.plus(Duration::from_secs(at)),
                active_from: T0.plus(Duration::from_secs(at)),
                retired_at: None,
            })
            .await
            .unwrap();
    }
    let salt = store
        .get_or_put_setting("oidc.subject_salt", "the-salt")
        .await
        .unwrap();

    Filled {
        user,
        tgt: tgt.key(),
        session,
        ticket,
        pgt,
        login_ticket,
        code,
        grant,
        access,
        refresh,
        salt,
    }
}

/// Fills `source`, copies it into the empty `destination`, and checks every row arrived and
/// behaves there; then that a second copy into it is refused.
async fn a_deployment_is_copied_whole(source: Arc<dyn Store>, destination: Arc<dyn Store>) {
    let filled = fill_with_one_of_everything(&source).await;
    let snapshot = source.export_all().await.unwrap();
    for (table, rows) in snapshot.counts() {
        assert!(rows >= 1, "{table} is empty in the source: {snapshot:?}");
    }
    let written = destination.import_all(&snapshot).await.unwrap();
    assert_eq!(
        written
            .tables
            .iter()
            .map(|(t, n)| (*t, usize::try_from(*n).unwrap()))
            .collect::<Vec<_>>(),
        snapshot.counts()
    );
    let copied = destination.export_all().await.unwrap();
    for ((table, _), same) in snapshot.counts().iter().zip([
        copied.users == snapshot.users,
        copied.services == snapshot.services,
        copied.oidc_clients == snapshot.oidc_clients,
        copied.sessions == snapshot.sessions,
        copied.service_tickets == snapshot.service_tickets,
        copied.session_services == snapshot.session_services,
        copied.proxy_granting_tickets == snapshot.proxy_granting_tickets,
        copied.login_tickets == snapshot.login_tickets,
        copied.login_failures == snapshot.login_failures,
        copied.slo_queue == snapshot.slo_queue,
        copied.oidc_codes == snapshot.oidc_codes,
        copied.oidc_grants == snapshot.oidc_grants,
        copied.oidc_access_tokens == snapshot.oidc_access_tokens,
        copied.oidc_refresh_tokens == snapshot.oidc_refresh_tokens,
        copied.oidc_consents == snapshot.oidc_consents,
        copied.signing_keys == snapshot.signing_keys,
        copied.settings == snapshot.settings,
    ]) {
        assert!(same, "{table} differs after the copy");
    }
    assert!(copied == snapshot);

    // Everything behaves as it did in the source.
    let dst = &destination;
    assert_eq!(dst.get_user("alice").await.unwrap(), Some(filled.user));
    assert_eq!(
        format!("{:?}", dst.list_services().await.unwrap()),
        format!("{:?}", source.list_services().await.unwrap())
    );
    assert_eq!(
        format!("{:?}", dst.list_clients().await.unwrap()),
        format!("{:?}", source.list_clients().await.unwrap())
    );
    assert_eq!(
        dst.get_session(&filled.tgt).await.unwrap(),
        Some(filled.session.clone())
    );
    assert_eq!(
        dst.take_service_ticket(&filled.ticket.key).await.unwrap(),
        Some(filled.ticket.clone())
    );
    assert_eq!(
        dst.take_service_ticket(&filled.ticket.key).await.unwrap(),
        None,
        "a copied ticket is taken once"
    );
    assert_eq!(
        dst.get_proxy_granting_ticket(&filled.pgt.key)
            .await
            .unwrap(),
        Some(filled.pgt)
    );
    assert!(dst
        .take_login_ticket(&filled.login_ticket, T0)
        .await
        .unwrap());
    assert_eq!(
        dst.get_login_failures("alice").await.unwrap(),
        source.get_login_failures("alice").await.unwrap()
    );
    let queued = dst.list_slo_deliveries().await.unwrap();
    assert_eq!(queued, source.list_slo_deliveries().await.unwrap());
    assert_eq!(
        (
            queued[0].service.as_str(),
            queued[0].attempts,
            queued[0].last_error.as_deref()
        ),
        ("https://app.org/", 1, Some("refused"))
    );
    assert!(
        dst.claim_slo_deliveries(T0, Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "the delivery is not due before its retry time"
    );
    assert_eq!(
        dst.claim_slo_deliveries(T0.plus(Duration::from_secs(5)), Duration::from_secs(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    match dst
        .redeem_authorization_code(&filled.code.key, "g2")
        .await
        .unwrap()
    {
        CodeRedemption::Redeemed(got) => assert_eq!(*got, filled.code),
        other => panic!("the fresh code: {other:?}"),
    }
    assert_eq!(
        dst.get_refresh_token(&filled.refresh.key, None)
            .await
            .unwrap(),
        Some((filled.refresh.clone(), filled.grant.clone()))
    );
    assert_eq!(
        dst.get_access_token(&filled.access.key, None)
            .await
            .unwrap(),
        Some((filled.access.clone(), filled.grant.clone()))
    );
    assert_eq!(
        dst.get_consent("alice", "rp").await.unwrap(),
        Some(filled.grant.scope.clone())
    );
    assert_eq!(
        dst.list_signing_keys().await.unwrap(),
        source.list_signing_keys().await.unwrap()
    );
    assert_eq!(
        dst.get_or_put_setting("oidc.subject_salt", "another-salt")
            .await
            .unwrap(),
        filled.salt
    );

    // Ending the copied session queues its logout after the copied delivery (fresh queue ids).
    let ended = dst
        .take_session(&filled.tgt, T0.plus(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.clients, ["rp"]);
    let ids: Vec<i64> = dst
        .list_slo_deliveries()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids[1..].iter().all(|id| *id > ids[0]), "{ids:?}");

    // A second copy into a database that holds data is refused, and writes nothing.
    let before = dst.export_all().await.unwrap();
    let err = dst.import_all(&snapshot).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotEmpty(_))
            && err
                .to_string()
                .contains("the destination database is not empty"),
        "{err}"
    );
    assert!(dst.export_all().await.unwrap() == before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_is_copied_from_sqlite_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = PostgresDatabase::create().await;
    a_deployment_is_copied_whole(sqlite(&dir).await, db.store().await).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_is_copied_from_postgres_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = PostgresDatabase::create().await;
    a_deployment_is_copied_whole(db.store().await, sqlite(&dir).await).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_is_copied_from_sqlite_to_sqlite() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    a_deployment_is_copied_whole(sqlite(&a).await, sqlite(&b).await).await;
}

#[tokio::test]
async fn an_empty_database_exports_an_empty_snapshot_and_any_row_refuses_an_import() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, destination) = (sqlite(&a).await, sqlite(&b).await);
    let empty = source.export_all().await.unwrap();
    assert!(empty.is_empty(), "{empty:?}");
    assert_eq!(destination.import_all(&empty).await.unwrap().total(), 0);
    // A server started once on the destination made keys and a salt: that is data too.
    destination
        .get_or_put_setting("oidc.subject_salt", "x")
        .await
        .unwrap();
    let err = destination.import_all(&empty).await.unwrap_err();
    assert!(err.to_string().contains("1 settings"), "{err}");
}
