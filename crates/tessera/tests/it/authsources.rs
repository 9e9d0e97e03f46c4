//! Login sources other than the built-in users, against real servers: an OpenLDAP `slapd` started
//! by `scripts/ldap-test-server` (its directory is described there), the PostgreSQL test server of
//! `scripts/postgres-test-server` with rows hashed in every supported format, SQLite; the
//! `[[authenticator]]` chain end to end through the login form; `tessera user import`; and the
//! service importers on definitions the tests write. The MariaDB server of
//! `scripts/mariadb-test-server` stands for MySQL too.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tessera::auth::chain::{Outcome, Source};
use tessera::auth::ldap::LdapSource;
use tessera::auth::sql::SqlSource;
use tessera::auth::{AuthError, Password};
use tessera::config::{
    AuthenticatorSettings, BuiltinSettings, GroupFormat, LdapSettings, PasswordSettings, Secret,
    SqlSettings,
};
use tessera_protocol::service::{AttributeRelease, LogoutType};

use crate::support::postgres::PostgresDatabase;
use crate::support::{TestServer, SERVICE};

// --- LDAP ------------------------------------------------------------------------------------

/// The test directory's coordinates, from `scripts/ldap-test-server start`.
struct Directory {
    url: String,
    ldaps_url: String,
    ca_file: String,
    base: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set, and the LDAP tests need an OpenLDAP server: run scripts/test, or \
             start a throwaway one with `eval \"$(scripts/ldap-test-server start)\"` (and stop it \
             with `scripts/ldap-test-server stop`)"
        )
    })
}

fn directory() -> Directory {
    Directory {
        url: env("TESSERA_TEST_LDAP_URL"),
        ldaps_url: env("TESSERA_TEST_LDAPS_URL"),
        ca_file: env("TESSERA_TEST_LDAP_CA_FILE"),
        base: env("TESSERA_TEST_LDAP_BASE"),
    }
}

/// Search-then-bind with the service account, reading mail, displayName and memberOf.
fn search_settings(d: &Directory) -> LdapSettings {
    LdapSettings {
        name: Some("directory".into()),
        url: d.url.clone(),
        bind_dn: Some(format!("cn=tessera,{}", d.base)),
        bind_password: Some(Secret::new("tessera-service")),
        base_dn: Some(format!("ou=people,{}", d.base)),
        user_filter: "(uid={username})".into(),
        username_attribute: Some("uid".into()),
        attributes: [
            ("mail".to_owned(), "mail".to_owned()),
            ("displayName".to_owned(), "displayName".to_owned()),
        ]
        .into(),
        group_attribute: Some("memberOf".into()),
        timeout: Duration::from_secs(5),
        pool_size: 2,
        ..LdapSettings::default()
    }
}

async fn check(source: &dyn Source, user: &str, password: &str) -> Result<Outcome, AuthError> {
    source.check(user, &Password::new(password.into())).await
}

#[track_caller]
fn accepted(outcome: Result<Outcome, AuthError>) -> tessera::auth::AuthenticatedUser {
    match outcome {
        Ok(Outcome::Accepted(user)) => user,
        other => panic!("expected a successful login, got {other:?}"),
    }
}

#[tokio::test]
async fn ldap_search_then_bind_logs_in_with_attributes_and_groups() {
    let d = directory();
    let source = LdapSource::new(&search_settings(&d)).unwrap();
    let alice = accepted(check(&source, "alice", "alice-password").await);
    assert_eq!(alice.username, "alice");
    assert_eq!(
        alice.attributes["mail"],
        ["alice@example.org", "alice.example@example.org"]
    );
    assert_eq!(alice.attributes["displayName"], ["Alice Example"]);
    let mut groups = alice.attributes["groups"].clone();
    groups.sort();
    assert_eq!(groups, ["admins", "staff"]);
    // The connection went back to the pool bound as the service account: the next one works.
    let bob = accepted(check(&source, "bob", "bob-password").await);
    assert_eq!(bob.attributes["mail"], ["bob@example.org"]);
    assert!(!bob.attributes.contains_key("groups"));
}

#[tokio::test]
async fn ldap_wrong_password_locked_and_absent_users() {
    let d = directory();
    let source = LdapSource::new(&search_settings(&d)).unwrap();
    assert!(matches!(
        check(&source, "alice", "wrong").await,
        Ok(Outcome::Rejected)
    ));
    // carol's account is locked (ppolicy): like a wrong password, even with hers.
    assert!(matches!(
        check(&source, "carol", "carol-password").await,
        Ok(Outcome::Rejected)
    ));
    assert!(matches!(
        check(&source, "nobody", "x").await,
        Ok(Outcome::Unknown)
    ));
    // The name is escaped in the filter: `*` is no wildcard, and no filter can be injected.
    assert!(matches!(
        check(&source, "*", "alice-password").await,
        Ok(Outcome::Unknown)
    ));
    assert!(matches!(
        check(&source, "alice)(uid=*", "alice-password").await,
        Ok(Outcome::Unknown)
    ));
    // An empty password would be an unauthenticated bind, which LDAP accepts: never sent.
    assert!(matches!(
        check(&source, "alice", "").await,
        Ok(Outcome::Rejected)
    ));
    // Still fine after all those failed binds.
    accepted(check(&source, "alice", "alice-password").await);
}

#[tokio::test]
async fn ldap_direct_bind_escapes_the_dn_and_reads_the_entry() {
    let d = directory();
    let settings = LdapSettings {
        name: Some("direct".into()),
        url: d.url.clone(),
        user_dn_template: Some(format!("uid={{username}},ou=people,{}", d.base)),
        attributes: [("mail".to_owned(), "email".to_owned())].into(),
        group_base_dn: Some(format!("ou=groups,{}", d.base)),
        group_filter: "(member={dn})".into(),
        group_format: GroupFormat::Dn,
        ..LdapSettings::default()
    };
    let source = LdapSource::new(&settings).unwrap();
    let alice = accepted(check(&source, "alice", "alice-password").await);
    assert_eq!(alice.attributes["email"].len(), 2);
    let mut groups = alice.attributes["groups"].clone();
    groups.sort();
    assert_eq!(
        groups,
        [
            format!("cn=admins,ou=groups,{}", d.base),
            format!("cn=staff,ou=groups,{}", d.base)
        ]
    );
    let john = accepted(check(&source, "doe, john", "doe-password").await);
    assert_eq!(john.attributes["email"], ["john.doe@example.org"]);
    // Without a service account a refused bind cannot tell an absent user from a wrong password:
    // the source says it does not know the user, so later sources are asked.
    assert!(matches!(
        check(&source, "alice", "wrong").await,
        Ok(Outcome::Unknown)
    ));

    // With one, the entry is looked up first.
    let with_service = LdapSettings {
        bind_dn: Some(format!("cn=tessera,{}", d.base)),
        bind_password: Some(Secret::new("tessera-service")),
        ..settings
    };
    let source = LdapSource::new(&with_service).unwrap();
    assert!(matches!(
        check(&source, "alice", "wrong").await,
        Ok(Outcome::Rejected)
    ));
    assert!(matches!(
        check(&source, "nobody", "x").await,
        Ok(Outcome::Unknown)
    ));
    accepted(check(&source, "doe, john", "doe-password").await);
}

#[tokio::test]
async fn ldap_over_tls_trusts_the_ca_file_only() {
    let d = directory();
    for (url, starttls) in [(d.ldaps_url.clone(), false), (d.url.clone(), true)] {
        let settings = LdapSettings {
            url: url.clone(),
            starttls,
            ca_file: Some(d.ca_file.clone().into()),
            ..search_settings(&d)
        };
        let source = LdapSource::new(&settings).unwrap();
        accepted(check(&source, "alice", "alice-password").await);
        // Without the test CA the certificate is not trusted: unavailable, never accepted.
        let untrusted = LdapSource::new(&LdapSettings {
            ca_file: None,
            ..settings
        })
        .unwrap();
        let e = check(&untrusted, "alice", "alice-password")
            .await
            .unwrap_err();
        assert!(
            matches!(e, AuthError::Unavailable { .. }),
            "{url} starttls={starttls}: {e}"
        );
    }
}

#[tokio::test]
async fn ldap_down_or_misconfigured_is_a_clear_error() {
    let d = directory();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = LdapSource::new(&LdapSettings {
        url: format!("ldap://127.0.0.1:{closed}"),
        timeout: Duration::from_secs(2),
        ..search_settings(&d)
    })
    .unwrap();
    let e = check(&down, "alice", "alice-password").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`directory` is unavailable")
            && text.contains(&format!("127.0.0.1:{closed}"))
            && text.contains("cannot connect"),
        "{text}"
    );
    assert!(!text.contains("alice-password"), "{text}");

    let bad_service = LdapSource::new(&LdapSettings {
        bind_password: Some(Secret::new("not-it")),
        ..search_settings(&d)
    })
    .unwrap();
    let e = check(&bad_service, "alice", "alice-password")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("service account") && e.contains("bind_dn"),
        "{e}"
    );
    assert!(!e.contains("not-it"), "{e}");
}

#[tokio::test]
async fn ldap_pool_serves_concurrent_logins() {
    let d = directory();
    let source = Arc::new(LdapSource::new(&search_settings(&d)).unwrap());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            let (user, password) = if i % 2 == 0 {
                ("alice", "alice-password")
            } else {
                ("bob", "wrong")
            };
            check(source.as_ref(), user, password).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let outcome = t.await.unwrap();
        if i % 2 == 0 {
            accepted(outcome);
        } else {
            assert!(matches!(outcome, Ok(Outcome::Rejected)), "{outcome:?}");
        }
    }
}

/// The chain in a running server: the directory first, then the built-in users.
fn ldap_then_builtin(d: &Directory) -> Vec<AuthenticatorSettings> {
    vec![
        AuthenticatorSettings::Ldap(Box::new(search_settings(d))),
        AuthenticatorSettings::Builtin(BuiltinSettings::default()),
    ]
}

#[tokio::test]
async fn the_chain_logs_in_through_the_form_and_releases_directory_attributes() {
    let d = directory();
    let chain = ldap_then_builtin(&d);
    let server = TestServer::start_with(move |s| s.authenticators = chain).await;
    let browser = server.browser();
    let ticket = browser
        .log_in_as(Some(SERVICE), "alice", "alice-password", &[])
        .await
        .ticket();
    let (status, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");
    assert!(
        body.contains("<cas:mail>alice.example@example.org</cas:mail>"),
        "{body}"
    );
    assert!(body.contains("<cas:groups>staff</cas:groups>"), "{body}");

    // alice is in the directory, so the directory decides: her built-in password does not work.
    let page = server
        .browser()
        .log_in_as(Some(SERVICE), "alice", crate::support::PASSWORD, &[])
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
}

#[tokio::test]
async fn a_directory_that_is_down_shows_the_form_again_and_counts_no_failure() {
    let d = directory();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut ldap = search_settings(&d);
    ldap.url = format!("ldap://127.0.0.1:{closed}");
    ldap.timeout = Duration::from_secs(2);
    let server = TestServer::start_with(move |s| {
        s.authenticators = vec![AuthenticatorSettings::Ldap(Box::new(ldap))];
    })
    .await;
    let browser = server.browser();
    let page = browser
        .log_in_as(Some(SERVICE), "alice", "alice-password", &[])
        .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.body.contains("temporarily unavailable")
            && page.body.contains("try again in a few minutes"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"id="username" value="alice""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains("127.0.0.1"), "{}", page.body);
    assert!(!page.body.contains("alice-password"), "{}", page.body);
    assert!(server.store.list_sessions(None).await.unwrap().is_empty());
    let key = tessera::auth::throttle::user_key("alice");
    assert!(server
        .store
        .get_login_failures(&key)
        .await
        .unwrap()
        .is_none());
    // The server carries on.
    assert_eq!(
        browser.login_page(Some(SERVICE)).await.status,
        StatusCode::OK
    );
}

// --- SQL -------------------------------------------------------------------------------------

/// A login and the value stored for it, with the password that is right.
struct Row {
    login: &'static str,
    stored: String,
    password: &'static str,
}

/// One row per supported format: generated with the crates, and fixed vectors made by other
/// implementations (openssl passwd, slappasswd, Python's hashlib in Django's layout).
fn rows() -> Vec<Row> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let argon2 = argon2::Argon2::default()
        .hash_password(
            b"argon-pw",
            &SaltString::encode_b64(b"sixteen byte salt").unwrap(),
        )
        .unwrap()
        .to_string();
    let sha512 =
        sha_crypt::sha512_simple("sha512-pw", &sha_crypt::Sha512Params::new(5000).unwrap())
            .unwrap();
    let row = |login, stored: &str, password| Row {
        login,
        stored: stored.to_owned(),
        password,
    };
    vec![
        row("argon", &argon2, "argon-pw"),
        row("bcrypt", &bcrypt::hash("bcrypt-pw", 4).unwrap(), "bcrypt-pw"),
        row("sha512gen", &sha512, "sha512-pw"),
        // openssl passwd -6 / -5 / -1 -salt saltsalt password
        row("sha512", "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/", "password"),
        row("sha256", "$5$saltsalt$gOjOtoMpVhru2uyjeJSEc/JaLQWOXMNmlOnj6T4AtC.", "password"),
        row("md5", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/", "password"),
        // hashlib.pbkdf2_hmac('sha256', b'password', b'seasalt', 1000), Django's layout
        row("django", "pbkdf2_sha256$1000$seasalt$YIWkt6M1JFXrHg5s0jZjBSc7C2Cz6QvchSJ0h8Y+i7c=", "password"),
        // slappasswd -h {SSHA} -s password; base64(sha1("password"))
        row("ssha", "{SSHA}vCMjQ0zyg2UcnymEFOzvHEEBFAzJ/28l", "password"),
        row("sha", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "password"),
        row("plain", "plain-pw", "plain-pw"),
        row("disabled", "", "anything"),
    ]
}

fn sql_settings(url: &str, query: &str) -> SqlSettings {
    SqlSettings {
        name: Some("appdb".into()),
        url: url.into(),
        query: query.into(),
        password_column: "password".into(),
        attribute_columns: [
            ("mail".to_owned(), "mail".to_owned()),
            ("display_name".to_owned(), "displayName".to_owned()),
            ("groups".to_owned(), "groups".to_owned()),
        ]
        .into(),
        timeout: Duration::from_secs(5),
        ..SqlSettings::default()
    }
}

fn hasher() -> tessera::auth::local::PasswordHasher {
    tessera::auth::local::PasswordHasher::new(&PasswordSettings {
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        ..PasswordSettings::default()
    })
    .unwrap()
}

/// Every row of [`rows`] logs in with its password and no other, with its mail, its display name
/// (`display_name` and the login) and `groups`, except the plain-text password (refused unless
/// allowed) and the disabled account (an empty hash); an unknown user is unknown.
async fn every_format_logs_in(source: &SqlSource, display_name: &str, groups: &[&str]) {
    for r in rows()
        .iter()
        .filter(|r| !matches!(r.login, "plain" | "disabled"))
    {
        let user = accepted(check(source, r.login, r.password).await);
        assert_eq!(
            user.attributes["mail"],
            [format!("{}@example.org", r.login)]
        );
        assert_eq!(
            user.attributes["displayName"],
            [format!("{display_name} {}", r.login)]
        );
        assert_eq!(user.attributes["groups"], groups, "{}", r.login);
        assert!(
            matches!(check(source, r.login, "wrong").await, Ok(Outcome::Rejected)),
            "{}",
            r.login
        );
    }
    assert!(matches!(
        check(source, "plain", "plain-pw").await,
        Ok(Outcome::Rejected)
    ));
    assert!(matches!(
        check(source, "disabled", "").await,
        Ok(Outcome::Rejected)
    ));
    assert!(matches!(
        check(source, "nobody", "x").await,
        Ok(Outcome::Unknown)
    ));
}

#[tokio::test]
async fn sql_on_postgres_checks_every_hash_format() {
    let db = PostgresDatabase::create();
    let pool = sqlx_postgres::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "CREATE TABLE users (login TEXT PRIMARY KEY, password TEXT, mail TEXT, \
         display_name TEXT, groups TEXT[], age INT4, balance NUMERIC(10, 2), \
         joined TIMESTAMPTZ, seen TIMESTAMP, birthday DATE, shift TIME, id UUID, prefs JSONB, \
         idle INTERVAL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for r in rows() {
        sqlx::query(
            "INSERT INTO users VALUES ($1, $2, $3, $4, ARRAY['staff', 'it'], 42, -1234567.5, \
             '2024-03-01 09:30:00+01', '2024-03-01 09:30:00.25', '1990-12-24', '23:59:59', \
             '00112233-4455-6677-8899-aabbccddeeff', '{\"lang\": \"fr\"}', '5 minutes')",
        )
        .bind(r.login)
        .bind(&r.stored)
        .bind(format!("{}@example.org", r.login))
        .bind(format!("User {}", r.login))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let query = "SELECT password, mail, display_name, groups FROM users WHERE login = $1";
    let source = SqlSource::new(&sql_settings(&db.url, query), hasher()).unwrap();
    every_format_logs_in(&source, "User", &["staff", "it"]).await;
    let lenient = SqlSource::new(
        &SqlSettings {
            allow_plain: true,
            ..sql_settings(&db.url, query)
        },
        hasher(),
    )
    .unwrap();
    accepted(check(&lenient, "plain", "plain-pw").await);
    assert!(matches!(
        check(&lenient, "plain", "wrong").await,
        Ok(Outcome::Rejected)
    ));
    // Still never plain for values in a known format.
    assert!(matches!(
        check(&lenient, "ssha", "{SSHA}vCMjQ0zyg2UcnymEFOzvHEEBFAzJ/28l").await,
        Ok(Outcome::Rejected)
    ));

    // Without attribute_columns every other column is an attribute, each read as text as
    // PostgreSQL shows it (timestamptz in UTC); a type no reader knows is left out.
    let all_columns = SqlSource::new(
        &SqlSettings {
            attribute_columns: Default::default(),
            ..sql_settings(
                &db.url,
                "SELECT password, mail, age, balance, joined, seen, birthday, shift, id, prefs, \
                 idle FROM users WHERE login = $1",
            )
        },
        hasher(),
    )
    .unwrap();
    let user = accepted(check(&all_columns, "md5", "password").await);
    let text = |name: &str| user.attributes.get(name).cloned().unwrap_or_default();
    assert_eq!(text("age"), ["42"]);
    assert_eq!(text("balance"), ["-1234567.50"]);
    assert_eq!(text("joined"), ["2024-03-01 08:30:00+00"]);
    assert_eq!(text("seen"), ["2024-03-01 09:30:00.25"]);
    assert_eq!(text("birthday"), ["1990-12-24"]);
    assert_eq!(text("shift"), ["23:59:59"]);
    assert_eq!(text("id"), ["00112233-4455-6677-8899-aabbccddeeff"]);
    assert_eq!(text("prefs"), [r#"{"lang": "fr"}"#]);
    assert!(
        !user.attributes.contains_key("idle"),
        "an interval is left out"
    );
    assert!(!user.attributes.contains_key("password"));
    // The same value on PostgreSQL's side, so the formats are compared with the server's own.
    let pool = sqlx_postgres::PgPool::connect(&db.url).await.unwrap();
    let shown: (String, String, String, String) = sqlx::query_as(
        "SELECT balance::text, seen::text, birthday::text, prefs::text FROM users \
         WHERE login = 'md5'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(
        [
            text("balance"),
            text("seen"),
            text("birthday"),
            text("prefs")
        ],
        [[shown.0], [shown.1], [shown.2], [shown.3]]
    );

    // A misnamed password column is a configuration error, not a failed login.
    let misnamed = SqlSource::new(
        &SqlSettings {
            password_column: "pwd".into(),
            ..sql_settings(&db.url, query)
        },
        hasher(),
    )
    .unwrap();
    let e = check(&misnamed, "md5", "password")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column `pwd`"), "{e}");
}

/// A fresh database on the MariaDB test server (`TESSERA_TEST_MYSQL_URL`, exported by
/// `scripts/mariadb-test-server start`), as a `mysql://` URL. The server is throwaway: the
/// database is left for `stop` to remove.
async fn mariadb_database() -> String {
    let admin_url = std::env::var("TESSERA_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!(
            "TESSERA_TEST_MYSQL_URL is not set, and the MySQL/MariaDB tests need a server: \
             run scripts/test, or start a throwaway one with \
             `eval \"$(scripts/mariadb-test-server start)\"` (and stop it with \
             `scripts/mariadb-test-server stop`)"
        )
    });
    let name = format!("tessera_it_{:016x}", rand::random::<u64>());
    let pool = sqlx_mysql::MySqlPool::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    format!("{admin_url}{name}")
}

#[tokio::test]
async fn sql_on_mariadb_checks_every_hash_format_and_reads_its_column_types() {
    let url = mariadb_database().await;
    let pool = sqlx_mysql::MySqlPool::connect(&url).await.unwrap();
    for sql in [
        // As legacy applications have them: a binary-collated hash column, a latin1 name, flags,
        // numbers and dates.
        "CREATE TABLE users (login VARCHAR(150) PRIMARY KEY, \
         password VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
         mail VARCHAR(254), display_name VARCHAR(100) CHARACTER SET latin1, \
         is_staff TINYINT(1), age INT UNSIGNED, balance DECIMAL(10,2), joined DATETIME, \
         birthday DATE, bio TEXT, seen DATETIME(6), expires DATE, shift TIME, since YEAR, \
         role ENUM('user', 'admin'), tags SET('a', 'b', 'c'))",
        "CREATE TABLE memberships (login VARCHAR(150), grp VARCHAR(80))",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    for r in rows() {
        sqlx::query(
            "INSERT INTO users VALUES (?, ?, ?, ?, 1, 42, 12.50, '2024-03-01 09:30:00', \
             '1990-12-24', NULL, '2024-03-01 09:30:00.250000', '0000-00-00', '-30:15:00', \
             2019, 'admin', 'a,c')",
        )
        .bind(r.login)
        .bind(&r.stored)
        .bind(format!("{}@example.org", r.login))
        .bind(format!("Zoë {}", r.login))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO memberships VALUES (?, 'staff'), (?, 'it')")
            .bind(r.login)
            .bind(r.login)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let query = "SELECT u.password, u.mail, u.display_name, m.grp AS `groups` FROM users u \
                 LEFT JOIN memberships m ON m.login = u.login WHERE u.login = ? ORDER BY m.grp";
    let source = SqlSource::new(&sql_settings(&url, query), hasher()).unwrap();
    // The display names are latin1 in the table, and read as text.
    every_format_logs_in(&source, "Zoë", &["it", "staff"]).await;
    // The login name is compared as the table's collation says (case-insensitively here). The
    // user's name is as typed, unless username_column names the row's.
    let user = accepted(check(&source, "BCRYPT", "bcrypt-pw").await);
    assert_eq!(user.attributes["mail"], ["bcrypt@example.org"]);
    assert_eq!(user.username, "BCRYPT");
    let canonical = |column: &str| {
        SqlSource::new(
            &SqlSettings {
                username_column: Some(column.into()),
                ..sql_settings(&url, "SELECT login, password FROM users WHERE login = ?")
            },
            hasher(),
        )
        .unwrap()
    };
    let user = accepted(check(&canonical("login"), "BCRYPT", "bcrypt-pw").await);
    assert_eq!(user.username, "bcrypt");
    let e = check(&canonical("name"), "BCRYPT", "bcrypt-pw")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column `name` (username_column)"), "{e}");

    // Without attribute_columns every other column is an attribute, each read as text.
    let all_columns = SqlSource::new(
        &SqlSettings {
            attribute_columns: Default::default(),
            ..sql_settings(
                &url,
                "SELECT password, is_staff, age, balance, joined, birthday, bio, seen, expires, \
                 shift, since, role, tags FROM users WHERE login = ?",
            )
        },
        hasher(),
    )
    .unwrap();
    let user = accepted(check(&all_columns, "md5", "password").await);
    let text = |name: &str| user.attributes.get(name).cloned().unwrap_or_default();
    assert_eq!(text("is_staff"), ["1"]);
    assert_eq!(text("age"), ["42"]);
    assert_eq!(text("balance"), ["12.50"]);
    assert_eq!(text("joined"), ["2024-03-01 09:30:00"]);
    assert_eq!(text("birthday"), ["1990-12-24"]);
    assert!(text("bio").is_empty(), "NULL is no value");
    assert_eq!(text("seen"), ["2024-03-01 09:30:00.250000"]);
    assert!(text("expires").is_empty(), "a zero date is no date");
    assert_eq!(text("shift"), ["-30:15:00"]);
    assert_eq!(text("since"), ["2019"]);
    assert_eq!(text("role"), ["admin"]);
    assert_eq!(text("tags"), ["a,c"]);
    assert!(!user.attributes.contains_key("password"));
}

#[tokio::test]
async fn sql_database_down_is_a_clear_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://app:secret-pw@127.0.0.1:{closed}/app");
    let source = SqlSource::new(
        &SqlSettings {
            timeout: Duration::from_secs(1),
            ..sql_settings(&url, "SELECT password FROM users WHERE login = $1")
        },
        hasher(),
    )
    .unwrap();
    let e = check(&source, "alice", "x").await.unwrap_err().to_string();
    assert!(e.contains("`appdb` is unavailable"), "{e}");
    assert!(!e.contains("secret-pw"), "{e}");
}

#[tokio::test]
async fn sql_on_sqlite_merges_rows_and_takes_explicit_formats() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/app.db", dir.path().display());
    let pool = sqlx_sqlite::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE users (login TEXT, password TEXT, mail TEXT)",
        "CREATE TABLE memberships (login TEXT, grp TEXT)",
        // hex MD5 of "password", as django-cas-server's hex_md5 stores it
        "INSERT INTO users VALUES ('eve', '5f4dcc3b5aa765d61d8327deb882cf99', 'eve@example.org')",
        "INSERT INTO memberships VALUES ('eve', 'staff'), ('eve', 'it')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let settings = SqlSettings {
        hash_format: "hex-md5".into(),
        attribute_columns: [
            ("mail".to_owned(), "mail".to_owned()),
            ("grp".to_owned(), "groups".to_owned()),
        ]
        .into(),
        ..sql_settings(
            &url,
            "SELECT u.password, u.mail, m.grp FROM users u LEFT JOIN memberships m \
             ON m.login = u.login WHERE u.login = ? ORDER BY m.grp",
        )
    };
    let source = SqlSource::new(&settings, hasher()).unwrap();
    let eve = accepted(check(&source, "eve", "password").await);
    assert_eq!(eve.attributes["groups"], ["it", "staff"]);
    assert_eq!(eve.attributes["mail"], ["eve@example.org"]);
    assert!(matches!(
        check(&source, "eve", "Password").await,
        Ok(Outcome::Rejected)
    ));
    // In auto mode an unsalted hex digest is in no recognisable format: refused.
    let auto = SqlSource::new(
        &SqlSettings {
            hash_format: "auto".into(),
            ..settings
        },
        hasher(),
    )
    .unwrap();
    assert!(matches!(
        check(&auto, "eve", "password").await,
        Ok(Outcome::Rejected)
    ));
}

#[tokio::test]
async fn the_chain_asks_sql_after_the_builtin_users() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/app.db", dir.path().display());
    let pool = sqlx_sqlite::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE users (login TEXT, password TEXT, mail TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users VALUES ('frank', ?, 'frank@example.org'), ('alice', ?, 'x')")
        .bind(bcrypt::hash("frank-pw", 4).unwrap())
        .bind(bcrypt::hash("sql-alice", 4).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sql = sql_settings(&url, "SELECT password, mail FROM users WHERE login = ?");
    let server = TestServer::start_with(move |s| {
        s.authenticators = vec![
            AuthenticatorSettings::Builtin(BuiltinSettings::default()),
            AuthenticatorSettings::Sql(Box::new(sql)),
        ]
    })
    .await;
    let auth = &server.state().authenticator;
    let login = |u: &'static str, p: &'static str| async move {
        auth.authenticate(u, &Password::new(p.into()))
            .await
            .unwrap()
    };
    let frank = login("frank", "frank-pw")
        .await
        .expect("frank logs in from SQL");
    assert_eq!(frank.attributes["mail"], ["frank@example.org"]);
    // alice is a built-in user: the built-in store decides, SQL is never asked.
    assert!(login("alice", crate::support::PASSWORD).await.is_some());
    assert!(login("alice", "sql-alice").await.is_none());
    assert!(login("nobody", "x").await.is_none());
    // Through the form, SQL attributes are released like any others.
    let ticket = server
        .browser()
        .log_in_as(Some(SERVICE), "frank", "frank-pw", &[])
        .await
        .ticket();
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert!(
        body.contains("<cas:mail>frank@example.org</cas:mail>"),
        "{body}"
    );
}

// --- tessera user import ---------------------------------------------------------------------

fn tessera() -> Command {
    crate::support::tessera_command()
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

#[tokio::test]
async fn user_import_keeps_known_hashes_and_rehashes_them_at_login() {
    let server = TestServer::start().await;
    let config = server.config_file();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    let bcrypt_hash = bcrypt::hash("bob-pw", 4).unwrap();
    std::fs::write(
        &csv,
        format!(
            "username,password,password_hash,mail,eduPersonAffiliation,eduPersonAffiliation\n\
             bob,,{bcrypt_hash},bob@example.org,staff,member\n\
             carol,,$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/,carol@example.org,,\n\
             dave,dave-pw,,dave@example.org,,\n\
             erin,,5f4dcc3b5aa765d61d8327deb882cf99,,,\n\
             alice,x,,,,\n\
             bob,other,,,,\n\
             bad\tname,x,,,,\n"
        ),
    )
    .unwrap();
    let (ok, out) = run(tessera()
        .arg("--config")
        .arg(&config)
        .args(["user", "import"])
        .arg(&csv));
    assert!(ok, "{out}");
    assert!(out.contains("imported 3 users"), "{out}");
    assert!(out.contains("2 with their existing hash"), "{out}");
    assert!(out.contains("4 skipped"), "{out}");
    assert!(
        out.contains("line 5: erin: password_hash is in no format"),
        "{out}"
    );
    assert!(out.contains("line 6: alice: already exists"), "{out}");
    assert!(out.contains("line 7: bob: listed twice"), "{out}");
    assert!(out.contains("line 8"), "{out}");

    let bob = server.store.get_user("bob").await.unwrap().unwrap();
    assert_eq!(bob.password_hash, bcrypt_hash);
    assert_eq!(bob.attributes["eduPersonAffiliation"], ["staff", "member"]);
    let dave = server.store.get_user("dave").await.unwrap().unwrap();
    assert!(dave.password_hash.starts_with("$argon2id$"));

    // bob logs in with his old password; his hash becomes Argon2id.
    let ticket = server
        .browser()
        .log_in_as(Some(SERVICE), "bob", "bob-pw", &[])
        .await
        .ticket();
    assert!(ticket.starts_with("ST-"));
    let bob = server.store.get_user("bob").await.unwrap().unwrap();
    assert!(
        bob.password_hash.starts_with("$argon2id$"),
        "{}",
        bob.password_hash
    );
    // …and keeps logging in with it.
    server
        .browser()
        .log_in_as(Some(SERVICE), "bob", "bob-pw", &[])
        .await
        .ticket();
    let page = server
        .browser()
        .log_in_as(Some(SERVICE), "carol", "wrong", &[])
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    server
        .browser()
        .log_in_as(Some(SERVICE), "carol", "password", &[])
        .await
        .ticket();

    // JSON, updating an existing user.
    let json = dir.path().join("users.json");
    std::fs::write(
        &json,
        r#"[
  {"username": "carol", "password_hash": "{SSHA}vCMjQ0zyg2UcnymEFOzvHEEBFAzJ/28l",
   "attributes": {"mail": "carol@new.example.org", "groups": ["a", "b"]}},
  {"username": "gina", "password": "gina-pw", "attributes": {"mail": ["g@example.org"]}},
  {"username": "hank"},
  {"username": "ivan", "password": "x", "shell": "/bin/sh"}
]"#,
    )
    .unwrap();
    let (ok, out) = run(tessera()
        .arg("--config")
        .arg(&config)
        .args(["user", "import", "--update"])
        .arg(&json));
    assert!(ok, "{out}");
    assert!(
        out.contains("imported 2 users") && out.contains("1 new, 1 updated"),
        "{out}"
    );
    assert!(
        out.contains("entry 3: hank: no password or password_hash"),
        "{out}"
    );
    assert!(out.contains("entry 4: unknown key `shell`"), "{out}");
    let carol = server.store.get_user("carol").await.unwrap().unwrap();
    assert_eq!(carol.attributes["groups"], ["a", "b"]);
    server
        .browser()
        .log_in_as(Some(SERVICE), "gina", "gina-pw", &[])
        .await
        .ticket();
    server
        .browser()
        .log_in_as(Some(SERVICE), "carol", "password", &[])
        .await
        .ticket();
}

// --- Service importers -----------------------------------------------------------------------

fn write_apereo(dir: &std::path::Path) {
    let files = [
        (
            "App-1.json",
            r#"{
  /* Apereo reads comments */
  "@class" : "org.apereo.cas.services.CasRegisteredService",
  "serviceId" : "^https://app\\.example\\.org/.*",
  "name" : "App",
  "id" : 1,
  "description" : "The application",
  "evaluationOrder" : 20,
  "logoutType" : "FRONT_CHANNEL",
  "logoutUrl" : "https://app.example.org/logout",
  "attributeReleasePolicy" : {
    "@class" : "org.apereo.cas.services.ReturnAllowedAttributeReleasePolicy",
    "allowedAttributes" : [ "java.util.ArrayList", [ "mail", "displayName" ] ]
  },
  "usernameAttributeProvider" : {
    "@class" : "org.apereo.cas.services.PrincipalAttributeRegisteredServiceUsernameProvider",
    "usernameAttribute" : "uid", "canonicalizationMode" : "NONE"
  },
  "proxyPolicy" : {
    "@class" : "org.apereo.cas.services.RegexMatchingRegisteredServiceProxyPolicy",
    "pattern" : "^https://app\\.example\\.org/pgt.*"
  },
  "accessStrategy" : {
    "@class" : "org.apereo.cas.services.DefaultRegisteredServiceAccessStrategy",
    "enabled" : true, "ssoEnabled" : false,
    "requiredAttributes" : { "@class" : "java.util.HashMap",
      "eduPersonAffiliation" : [ "java.util.HashSet", [ "staff", "faculty" ] ] }
  },
  "theme" : "blue"
}"#,
        ),
        (
            "Wiki-2.json",
            r#"{
  "@class" : "org.apereo.cas.services.RegexRegisteredService",
  "serviceId" : "https://wiki\\.example\\.org/.*",
  "name" : "Wiki", "id" : 2, "evaluationOrder" : 10,
  "attributeReleasePolicy" : {
    "@class" : "org.apereo.cas.services.ReturnMappedAttributeReleasePolicy",
    "allowedAttributes" : { "@class" : "java.util.TreeMap",
      "cn" : "commonName", "mail" : [ "java.util.ArrayList", [ "email", "mailAddress" ] ],
      "uid" : "groovy { return attributes['uid'] }" }
  },
  "logoutType" : "NONE"
}"#,
        ),
        (
            "All-3.json",
            r#"{
  "@class" : "org.apereo.cas.services.CasRegisteredService",
  "serviceId" : "https://all\\.example\\.org/.*", "name" : "All", "id" : 3,
  "attributeReleasePolicy" : { "@class" : "org.apereo.cas.services.ReturnAllAttributeReleasePolicy" },
  "multifactorPolicy" : {
    "@class" : "org.apereo.cas.services.DefaultRegisteredServiceMultifactorPolicy",
    "multifactorAuthenticationProviders" : [ "java.util.LinkedHashSet", [ "mfa-duo" ] ]
  }
}"#,
        ),
        (
            "Off-4.json",
            r#"{ "@class" : "org.apereo.cas.services.CasRegisteredService",
  "serviceId" : "https://off\\.example\\.org/.*", "name" : "Off", "id" : 4,
  "accessStrategy" : { "@class" : "org.apereo.cas.services.DefaultRegisteredServiceAccessStrategy", "enabled" : false } }"#,
        ),
        (
            "Oidc-5.json",
            r#"{ "@class" : "org.apereo.cas.services.OidcRegisteredService",
  "clientId" : "x", "serviceId" : "https://oidc/.*", "name" : "Oidc", "id" : 5 }"#,
        ),
        (
            "Java-6.json",
            r#"{ "@class" : "org.apereo.cas.services.CasRegisteredService",
  "serviceId" : "https://(?<!x)java\\.example\\.org/.*", "name" : "Java", "id" : 6 }"#,
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn apereo_definitions_are_imported_with_what_could_not_be_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    write_apereo(dir.path());
    let report = tessera::import::apereo_dir(dir.path()).unwrap();
    let names: Vec<&str> = report
        .services
        .iter()
        .map(|s| s.service.name.as_str())
        .collect();
    // evaluationOrder: Wiki (10), App (20), then those without one (0) first.
    assert_eq!(names, ["All", "Off", "Wiki", "App"]);
    let by = |name: &str| {
        report
            .services
            .iter()
            .find(|s| s.service.name == name)
            .unwrap()
    };

    let app = by("App");
    let s = &app.service;
    assert!(s.enabled && !s.sso);
    assert!(
        s.pattern.matches("https://APP.example.org/x"),
        "Apereo ignores case"
    );
    assert!(!s.pattern.matches("https://app.example.org.evil/x"));
    assert_eq!(s.logout_type, LogoutType::FrontChannel);
    assert_eq!(
        s.logout_url.as_deref(),
        Some("https://app.example.org/logout")
    );
    assert_eq!(s.username_attribute.as_deref(), Some("uid"));
    assert_eq!(s.description.as_deref(), Some("The application"));
    assert!(matches!(&s.release, AttributeRelease::Only(r) if r.len() == 2));
    let callback = s.proxy_callback.as_ref().unwrap();
    assert!(callback.matches("https://app.example.org/pgtCallback"));
    let staff: tessera_protocol::Attributes =
        [("eduPersonAffiliation".to_owned(), vec!["staff".to_owned()])].into();
    let student: tessera_protocol::Attributes = [(
        "eduPersonAffiliation".to_owned(),
        vec!["student".to_owned()],
    )]
    .into();
    assert!(s.allows(&staff) && !s.allows(&student));
    assert!(
        app.notes
            .iter()
            .any(|n| n.contains("not carried over: theme")),
        "{:?}",
        app.notes
    );

    let wiki = by("Wiki");
    let released = wiki.service.released(
        &[
            ("cn".to_owned(), vec!["W".to_owned()]),
            ("mail".to_owned(), vec!["w@x".to_owned()]),
            ("uid".to_owned(), vec!["w".to_owned()]),
        ]
        .into(),
    );
    assert_eq!(released["commonName"], ["W"]);
    assert_eq!(released["email"], ["w@x"]);
    assert_eq!(released["mailAddress"], ["w@x"]);
    assert!(!released.contains_key("uid"));
    assert!(
        wiki.notes.iter().any(|n| n.contains("script mapping")),
        "{:?}",
        wiki.notes
    );
    assert_eq!(wiki.service.logout_type, LogoutType::None);

    let all = by("All");
    assert_eq!(all.service.release, AttributeRelease::All);
    assert!(
        !all.service.enabled,
        "an MFA policy cannot be honoured: imported disabled"
    );
    assert!(all
        .notes
        .iter()
        .any(|n| n.contains("mfa-duo") && n.contains("DISABLED")));
    assert!(!by("Off").service.enabled);

    let skipped: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.origin.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped
        .iter()
        .any(|(o, r)| *o == "Oidc-5.json" && r.contains("tessera client add")));
    assert!(skipped
        .iter()
        .any(|(o, r)| *o == "Java-6.json" && r.contains("serviceId")));
    assert!(report.notes.iter().any(|n| n.contains("proxy-target")));
}

const DJANGO_DUMP: &str = r#"[
 {"model": "cas_server.servicepattern", "pk": 1, "fields": {"pos": 50, "name": "Intranet",
   "pattern": "^https://intranet\\.example\\.org/", "user_field": "", "restrict_users": false,
   "proxy": true, "proxy_callback": true, "single_log_out": true,
   "single_log_out_callback": "https://intranet.example.org/slo"}},
 {"model": "cas_server.servicepattern", "pk": 2, "fields": {"pos": 10, "name": "Mail",
   "pattern": "^https://mail\\.example\\.org/", "user_field": "mail", "restrict_users": false,
   "proxy": false, "proxy_callback": false, "single_log_out": false, "single_log_out_callback": ""}},
 {"model": "cas_server.servicepattern", "pk": 3, "fields": {"pos": 60, "name": "Admin",
   "pattern": "^https://admin\\.example\\.org/", "user_field": "", "restrict_users": true,
   "proxy": false, "proxy_callback": false, "single_log_out": true, "single_log_out_callback": ""}},
 {"model": "cas_server.replaceattributname", "pk": 1, "fields": {"name": "mail", "replace": "email", "service_pattern": 1}},
 {"model": "cas_server.replaceattributname", "pk": 2, "fields": {"name": "cn", "replace": "", "service_pattern": 1}},
 {"model": "cas_server.replaceattributname", "pk": 3, "fields": {"name": "*", "replace": "", "service_pattern": 2}},
 {"model": "cas_server.filterattributvalue", "pk": 1, "fields": {"attribut": "memberOf", "pattern": "cn=staff", "service_pattern": 1}},
 {"model": "cas_server.replaceattributvalue", "pk": 1, "fields": {"attribut": "mail", "pattern": "@.*", "replace": "", "service_pattern": 2}},
 {"model": "cas_server.username", "pk": 1, "fields": {"value": "root", "service_pattern": 3}},
 {"model": "cas_server.user", "pk": 9, "fields": {"username": "alice"}}
]"#;

#[test]
fn django_cas_server_dumps_are_imported_with_what_could_not_be_carried_over() {
    let report = tessera::import::django_dumpdata(DJANGO_DUMP).unwrap();
    let names: Vec<&str> = report
        .services
        .iter()
        .map(|s| s.service.name.as_str())
        .collect();
    assert_eq!(names, ["Mail", "Intranet", "Admin"], "ordered by pos");
    let intranet = &report.services[1].service;
    assert!(intranet
        .pattern
        .matches("https://intranet.example.org/page?x=1"));
    assert!(intranet.proxy_target);
    assert_eq!(intranet.logout_type, LogoutType::BackChannel);
    assert_eq!(
        intranet.logout_url.as_deref(),
        Some("https://intranet.example.org/slo")
    );
    assert!(matches!(&intranet.release, AttributeRelease::Only(r) if r.len() == 2));
    let staff: tessera_protocol::Attributes =
        [("memberOf".to_owned(), vec!["cn=staff,ou=groups".to_owned()])].into();
    assert!(intranet.allows(&staff));
    assert!(!intranet.allows(&Default::default()));
    // Every service may use the callbacks of patterns marked proxy_callback, as in django-cas-server.
    let mail = &report.services[0];
    assert!(mail
        .service
        .proxy_callback
        .as_ref()
        .unwrap()
        .matches("https://intranet.example.org/pgt"));
    assert_eq!(mail.service.release, AttributeRelease::All);
    assert_eq!(mail.service.username_attribute.as_deref(), Some("mail"));
    assert_eq!(mail.service.logout_type, LogoutType::None);
    assert!(
        mail.notes.iter().any(|n| n.contains("value rewriting")),
        "{:?}",
        mail.notes
    );
    let admin = &report.services[2];
    assert!(!admin.service.enabled);
    assert!(admin
        .notes
        .iter()
        .any(|n| n.contains("root") && n.contains("DISABLED")));
    assert!(report
        .notes
        .iter()
        .any(|n| n.contains("1 rows of other models")));
}

#[tokio::test]
async fn service_import_commands_store_print_and_report() {
    let server = TestServer::start().await;
    let config = server.config_file();
    let dir = tempfile::tempdir().unwrap();
    write_apereo(dir.path());
    let (ok, out) = run(tessera()
        .arg("--config")
        .arg(&config)
        .args(["service", "import", "--from", "apereo-json"])
        .arg(dir.path()));
    assert!(ok, "{out}");
    assert!(
        out.contains("imported 4 services") && out.contains("2 skipped"),
        "{out}"
    );
    assert!(out.contains("DISABLED"), "{out}");
    assert!(out.contains("skipped Oidc-5.json"), "{out}");
    let stored = server.store.list_services().await.unwrap();
    assert!(stored.iter().any(|s| s.name == "Wiki"));
    // Again: the names are taken now.
    let (ok, out) = run(tessera()
        .arg("--config")
        .arg(&config)
        .args(["service", "import", "--from", "apereo-json"])
        .arg(dir.path()));
    assert!(ok, "{out}");
    assert!(
        out.contains("imported 0 services") && out.contains("already registered"),
        "{out}"
    );

    let dump = dir.path().join("dump.json");
    std::fs::write(&dump, DJANGO_DUMP).unwrap();
    let printed = tessera()
        .arg("--config")
        .arg(&config)
        .args(["service", "import", "--from", "django-cas-server", "--toml"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(printed.status.success());
    let toml_text = String::from_utf8(printed.stdout).unwrap();
    let notes = String::from_utf8(printed.stderr).unwrap();
    assert!(
        toml_text.contains("[[service]]") && toml_text.contains("name = \"Mail\""),
        "{toml_text}"
    );
    assert!(
        notes.contains("value rewriting") && notes.contains("DISABLED"),
        "{notes}"
    );
    // The printed tables are a valid config.
    let file = dir.path().join("imported.toml");
    std::fs::write(&file, &toml_text).unwrap();
    let loaded = tessera::Settings::load(Some(&file), Vec::new()).unwrap();
    assert_eq!(loaded.file_services.len(), 3);
    assert!(!loaded.file_services[2].enabled);

    let (ok, out) = run(tessera()
        .arg("--config")
        .arg(&config)
        .args([
            "service",
            "import",
            "--from",
            "django-cas-server",
            "--dry-run",
        ])
        .arg(&dump));
    assert!(ok, "{out}");
    assert!(out.contains("would import 3 services"), "{out}");
    assert!(!server
        .store
        .list_services()
        .await
        .unwrap()
        .iter()
        .any(|s| s.name == "Mail"));
}
