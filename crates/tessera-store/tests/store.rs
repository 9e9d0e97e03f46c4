//! One suite for every backend: each behaviour is an async function taking a fresh store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test that cannot go on should stop loudly

use std::sync::Arc;
use std::time::Duration;

use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::service::{
    AttributeRelease, AttributeRule, RegisteredService, Requirement, ServiceOrigin, ServicePattern,
    ServiceUrl,
};
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::{LoginTicketId, TicketGrantingTicketId, TicketKey};
use tessera_protocol::{Attributes, Timestamp};
use tessera_store::{ServiceAccess, SqliteStore, Store, StoreError, UserRecord};

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
    store.put_service_ticket(&t).await.unwrap();
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

async fn concurrent_takes_hand_a_ticket_to_exactly_one(store: Arc<dyn Store>) {
    let (_, s) = new_session("alice");
    store
        .put_session(&s, T0.plus(Duration::from_secs(3600)))
        .await
        .unwrap();
    for _ in 0..5 {
        let t = ticket_for(&s, "https://app/");
        store.put_service_ticket(&t).await.unwrap();
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

    let unvalidated = ticket_for(&s, "https://b/");
    store.put_service_ticket(&unvalidated).await.unwrap();
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
    let orphan = ServiceAccess {
        service: "https://z/".into(),
        ticket: "ST-9".into(),
        validated_at: later,
    };
    store.put_service_access(&s.id, &orphan).await.unwrap();
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
    store.put_service_ticket(&t).await.unwrap();
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
    store.put_service_ticket(&pt).await.unwrap();
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

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}/nested/tessera.db", dir.path().display());
    Arc::new(SqliteStore::connect(&url).await.unwrap())
}

macro_rules! sqlite_tests {
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
    };
}

sqlite_tests!(
    service_tickets_are_taken_once,
    concurrent_takes_hand_a_ticket_to_exactly_one,
    sessions_live_are_touched_and_end_with_their_tickets,
    sessions_are_listed_by_user,
    users_round_trip_and_names_are_unique,
    services_round_trip_with_their_policy,
    login_tickets_are_single_use_and_expire,
    login_failures_count_within_a_window,
    expired_rows_are_swept,
    ended_sessions_queue_single_logout_for_their_services,
    expiry_and_user_removal_queue_single_logout_too,
    deliveries_are_claimed_once_leased_and_retried,
    proxy_granting_tickets_live_and_end_with_their_session,
);

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
        store.put_service_ticket(&t).await.unwrap();
    }
    let store = sqlite(&dir).await;
    assert_eq!(store.take_service_ticket(&t.key).await.unwrap(), Some(t));
}

#[tokio::test]
async fn bad_urls_are_named() {
    let err = SqliteStore::connect("mysql://x").await.unwrap_err();
    assert!(err.to_string().contains("mysql://x"), "{err}");
}
