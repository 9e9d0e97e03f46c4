//! `tessera service import --from django-cas-server URL` on django-cas-server's own database: its
//! tables as its migrations create them, in a fresh SQLite file and in a fresh PostgreSQL database
//! (on the server of `scripts/postgres-test-server`), read by the real CLI. The same rows written
//! as a `dumpdata` file must give the same report; the imported services are then used to log in.
//! MySQL is not installed here: its URL detection and connection errors are unit tests in `import`.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::postgres::PostgresDatabase;
use crate::support::{TestServer, USER};

/// The sample of the dumpdata tests (authsources.rs), with two more patterns: `Wiki`, which alice
/// may use, and one without a name. Renames, `*`, a filter, a value rewrite (not supported), a user
/// list (not expressible: imported disabled), proxying and single logout.
const DUMP: &str = r#"[
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
 {"model": "cas_server.servicepattern", "pk": 4, "fields": {"pos": 20, "name": "Wiki",
   "pattern": "^https://wiki\\.example\\.org/", "user_field": "", "restrict_users": false,
   "proxy": false, "proxy_callback": false, "single_log_out": false, "single_log_out_callback": ""}},
 {"model": "cas_server.servicepattern", "pk": 5, "fields": {"pos": 100, "name": null,
   "pattern": "^https://legacy\\.example\\.org/", "user_field": "", "restrict_users": false,
   "proxy": false, "proxy_callback": false, "single_log_out": true, "single_log_out_callback": ""}},
 {"model": "cas_server.replaceattributname", "pk": 1, "fields": {"name": "mail", "replace": "email", "service_pattern": 1}},
 {"model": "cas_server.replaceattributname", "pk": 2, "fields": {"name": "cn", "replace": "", "service_pattern": 1}},
 {"model": "cas_server.replaceattributname", "pk": 3, "fields": {"name": "*", "replace": "", "service_pattern": 2}},
 {"model": "cas_server.replaceattributname", "pk": 4, "fields": {"name": "uid", "replace": "login", "service_pattern": 4}},
 {"model": "cas_server.replaceattributname", "pk": 5, "fields": {"name": "mail", "replace": "", "service_pattern": 4}},
 {"model": "cas_server.filterattributvalue", "pk": 1, "fields": {"attribut": "memberOf", "pattern": "cn=staff", "service_pattern": 1}},
 {"model": "cas_server.filterattributvalue", "pk": 2, "fields": {"attribut": "eduPersonAffiliation", "pattern": "sta", "service_pattern": 4}},
 {"model": "cas_server.replaceattributvalue", "pk": 1, "fields": {"attribut": "mail", "pattern": "@.*", "replace": "", "service_pattern": 2}},
 {"model": "cas_server.username", "pk": 1, "fields": {"value": "root", "service_pattern": 3}}
]"#;

/// django-cas-server's service tables in SQLite, as `manage.py migrate` leaves them
/// (`sqlite_master`; SQLite migrations rebuild a table for each added column).
const SQLITE_SCHEMA: &[&str] = &[
    r#"CREATE TABLE "cas_server_servicepattern" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "pos" integer NOT NULL, "pattern" varchar(255) NOT NULL UNIQUE, "proxy" bool NOT NULL, "restrict_users" bool NOT NULL, "name" varchar(255) NULL UNIQUE, "single_log_out" bool NOT NULL, "proxy_callback" bool NOT NULL, "single_log_out_callback" varchar(255) NOT NULL, "user_field" varchar(255) NOT NULL)"#,
    r#"CREATE TABLE "cas_server_replaceattributname" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "name" varchar(255) NOT NULL, "replace" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED)"#,
    r#"CREATE UNIQUE INDEX "cas_server_replaceattributname_name_replace_service_pattern_id_5e627e3c_uniq" ON "cas_server_replaceattributname" ("name", "replace", "service_pattern_id")"#,
    r#"CREATE INDEX "cas_server_replaceattributname_service_pattern_id_951038d2" ON "cas_server_replaceattributname" ("service_pattern_id")"#,
    r#"CREATE TABLE "cas_server_filterattributvalue" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "attribut" varchar(255) NOT NULL, "pattern" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED)"#,
    r#"CREATE INDEX "cas_server_filterattributvalue_service_pattern_id_9223c12f" ON "cas_server_filterattributvalue" ("service_pattern_id")"#,
    r#"CREATE TABLE "cas_server_replaceattributvalue" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "attribut" varchar(255) NOT NULL, "pattern" varchar(255) NOT NULL, "replace" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED)"#,
    r#"CREATE INDEX "cas_server_replaceattributvalue_service_pattern_id_08190d2c" ON "cas_server_replaceattributvalue" ("service_pattern_id")"#,
    r#"CREATE TABLE "cas_server_username" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "value" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED)"#,
    r#"CREATE INDEX "cas_server_username_service_pattern_id_ca43f74e" ON "cas_server_username" ("service_pattern_id")"#,
];

/// The statements django-cas-server's migration sends to PostgreSQL for its service tables
/// (`manage.py sqlmigrate cas_server 0001_squashed_0013_auto_20170329_1748`), in order.
const POSTGRES_SCHEMA: &[&str] = &[
    r#"CREATE TABLE "cas_server_servicepattern" ("id" integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "pos" integer NOT NULL, "pattern" varchar(255) NOT NULL UNIQUE, "user_field" varchar(255) NOT NULL, "usernames" varchar(255) NOT NULL, "attributs" varchar(255) NOT NULL, "proxy" boolean NOT NULL, "filter" varchar(255) NOT NULL)"#,
    r#"CREATE TABLE "cas_server_replaceattributname" ("id" integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "name" varchar(255) NOT NULL, "replace" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL)"#,
    r#"ALTER TABLE "cas_server_servicepattern" DROP COLUMN "attributs" CASCADE"#,
    r#"CREATE TABLE "cas_server_filterattributvalue" ("id" integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "attribut" varchar(255) NOT NULL, "pattern" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL)"#,
    r#"CREATE TABLE "cas_server_replaceattributvalue" ("id" integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "attribut" varchar(255) NOT NULL, "pattern" varchar(255) NOT NULL, "replace" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL)"#,
    r#"ALTER TABLE "cas_server_servicepattern" DROP COLUMN "filter" CASCADE"#,
    r#"CREATE TABLE "cas_server_username" ("id" integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "value" varchar(255) NOT NULL, "service_pattern_id" integer NOT NULL)"#,
    r#"ALTER TABLE "cas_server_servicepattern" DROP COLUMN "usernames" CASCADE"#,
    r#"ALTER TABLE "cas_server_servicepattern" ADD COLUMN "restrict_users" boolean DEFAULT false NOT NULL"#,
    r#"ALTER TABLE "cas_server_servicepattern" ALTER COLUMN "restrict_users" DROP DEFAULT"#,
    r#"ALTER TABLE "cas_server_servicepattern" ADD COLUMN "name" varchar(255) NULL UNIQUE"#,
    r#"ALTER TABLE "cas_server_replaceattributname" ADD CONSTRAINT "cas_server_replaceattrib_name_replace_service_pat_5e627e3c_uniq" UNIQUE ("name", "replace", "service_pattern_id")"#,
    r#"ALTER TABLE "cas_server_servicepattern" ADD COLUMN "single_log_out" boolean DEFAULT false NOT NULL"#,
    r#"ALTER TABLE "cas_server_servicepattern" ALTER COLUMN "single_log_out" DROP DEFAULT"#,
    r#"ALTER TABLE "cas_server_servicepattern" ADD COLUMN "proxy_callback" boolean DEFAULT false NOT NULL"#,
    r#"ALTER TABLE "cas_server_servicepattern" ALTER COLUMN "proxy_callback" DROP DEFAULT"#,
    r#"ALTER TABLE "cas_server_servicepattern" ADD COLUMN "single_log_out_callback" varchar(255) DEFAULT 'b''''' NOT NULL"#,
    r#"ALTER TABLE "cas_server_servicepattern" ALTER COLUMN "single_log_out_callback" DROP DEFAULT"#,
    r#"CREATE INDEX "cas_server_servicepattern_pattern_da81fd41_like" ON "cas_server_servicepattern" ("pattern" varchar_pattern_ops)"#,
    r#"ALTER TABLE "cas_server_replaceattributname" ADD CONSTRAINT "cas_server_replaceat_service_pattern_id_951038d2_fk_cas_serve" FOREIGN KEY ("service_pattern_id") REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED"#,
    r#"CREATE INDEX "cas_server_replaceattributname_service_pattern_id_951038d2" ON "cas_server_replaceattributname" ("service_pattern_id")"#,
    r#"ALTER TABLE "cas_server_filterattributvalue" ADD CONSTRAINT "cas_server_filteratt_service_pattern_id_9223c12f_fk_cas_serve" FOREIGN KEY ("service_pattern_id") REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED"#,
    r#"CREATE INDEX "cas_server_filterattributvalue_service_pattern_id_9223c12f" ON "cas_server_filterattributvalue" ("service_pattern_id")"#,
    r#"ALTER TABLE "cas_server_replaceattributvalue" ADD CONSTRAINT "cas_server_replaceat_service_pattern_id_08190d2c_fk_cas_serve" FOREIGN KEY ("service_pattern_id") REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED"#,
    r#"CREATE INDEX "cas_server_replaceattributvalue_service_pattern_id_08190d2c" ON "cas_server_replaceattributvalue" ("service_pattern_id")"#,
    r#"ALTER TABLE "cas_server_username" ADD CONSTRAINT "cas_server_username_service_pattern_id_ca43f74e_fk_cas_serve" FOREIGN KEY ("service_pattern_id") REFERENCES "cas_server_servicepattern" ("id") DEFERRABLE INITIALLY DEFERRED"#,
    r#"CREATE INDEX "cas_server_username_service_pattern_id_ca43f74e" ON "cas_server_username" ("service_pattern_id")"#,
    r#"CREATE INDEX "cas_server_servicepattern_name_cbfc203a_like" ON "cas_server_servicepattern" ("name" varchar_pattern_ops)"#,
];

/// The dump's rows as INSERT statements (a foreign key's column is its field's name + `_id`).
fn inserts() -> Vec<String> {
    let rows: Vec<Value> = serde_json::from_str(DUMP).unwrap();
    rows.iter()
        .map(|row| {
            let table = row["model"].as_str().unwrap().replace('.', "_");
            let mut columns = vec!["\"id\"".to_owned()];
            let mut values = vec![row["pk"].to_string()];
            for (field, value) in row["fields"].as_object().unwrap() {
                let column = if field == "service_pattern" {
                    "service_pattern_id"
                } else {
                    field
                };
                columns.push(format!("\"{column}\""));
                values.push(match value {
                    Value::Null => "NULL".to_owned(),
                    Value::Bool(b) => b.to_string().to_uppercase(),
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => format!("'{}'", s.replace('\'', "''")),
                    other => panic!("no column holds {other}"),
                });
            }
            format!(
                "INSERT INTO \"{table}\" ({}) VALUES ({})",
                columns.join(", "),
                values.join(", ")
            )
        })
        .collect()
}

/// A fresh SQLite file holding django-cas-server's tables and the sample rows; its URL.
async fn sqlite_database(dir: &Path) -> String {
    let url = format!("sqlite://{}/cas.sqlite3", dir.display());
    let pool = sqlx_sqlite::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    for sql in SQLITE_SCHEMA.iter().map(|s| s.to_string()).chain(inserts()) {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    url
}

/// A fresh PostgreSQL database holding django-cas-server's tables and the sample rows.
async fn postgres_database() -> PostgresDatabase {
    let db = PostgresDatabase::create();
    let pool = sqlx_postgres::PgPool::connect(&db.url).await.unwrap();
    for sql in POSTGRES_SCHEMA
        .iter()
        .map(|s| s.to_string())
        .chain(inserts())
    {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    db
}

/// The binary, with no `TESSERA_*` variable of the environment the tests run in.
fn tessera(config: &Path) -> Command {
    let mut cmd = crate::support::tessera_command();
    cmd.arg("--config").arg(config);
    cmd
}

/// Runs it: whether it succeeded, and stdout then stderr.
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

fn import(config: &Path, source: &str, extra: &[&str]) -> (bool, String) {
    run(tessera(config)
        .args(["service", "import", "--from", "django-cas-server"])
        .args(extra)
        .arg(source))
}

/// Imports the sample from the database at `url` into a test server, and checks the report
/// against the dump's, the stored services, and logins to them.
async fn imports_like_the_dump(url: &str) {
    let server = TestServer::start().await;
    let config = server.config_file();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.json");
    std::fs::write(&dump, DUMP).unwrap();

    // One conversion: the same rows give the same report, line for line, after the header.
    let (ok, from_dump) = import(&config, dump.to_str().unwrap(), &["--dry-run"]);
    assert!(ok, "{from_dump}");
    let (ok, from_db) = import(&config, url, &["--dry-run"]);
    assert!(ok, "{from_db}");
    let (header, body) = from_db.split_once('\n').unwrap();
    assert_eq!(
        header,
        format!("would import 5 services from {url} (django-cas-server), 0 skipped")
    );
    assert_eq!(body, from_dump.split_once('\n').unwrap().1);
    for expected in [
        "value rewriting (mail: s/@.*//) is not supported",
        "restrict_users (allowed: root)",
        "DISABLED",
        "user_field mail",
        "marked proxy_callback",
    ] {
        assert!(from_db.contains(expected), "{expected}: {from_db}");
    }
    assert!(
        !server
            .store
            .list_services()
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == "Mail"),
        "a dry run stores nothing"
    );

    // `--toml` reads the database too.
    let (ok, toml_text) = import(&config, url, &["--toml"]);
    assert!(ok, "{toml_text}");
    assert!(toml_text.contains("name = \"Wiki\""), "{toml_text}");

    let (ok, out) = import(&config, url, &[]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("imported 5 services from") && out.contains("0 skipped"),
        "{out}"
    );
    let (ok, list) = run(tessera(&config).args(["service", "list"]));
    assert!(ok, "{list}");
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} is not listed: {list}"))
            .to_owned()
    };
    assert!(line("Mail").contains("release=all"), "{list}");
    assert!(line("Intranet").contains("proxy-target"), "{list}");
    assert!(line("Admin").contains("disabled"), "{list}");
    assert!(line("Wiki").contains("release=uid=login,mail"), "{list}");
    assert!(line("service-5").contains("legacy"), "{list}");
    let stored = server.store.list_services().await.unwrap();
    let intranet = stored.iter().find(|s| s.name == "Intranet").unwrap();
    assert_eq!(
        intranet.logout_url.as_deref(),
        Some("https://intranet.example.org/slo")
    );
    assert_eq!(intranet.requirements.len(), 1);

    // Logging in to what was imported.
    let browser = server.browser();
    let wiki = "https://wiki.example.org/page";
    let ticket = browser.cas_login(wiki).await;
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, wiki, "")
        .await;
    assert!(
        body.contains(&format!("<cas:user>{USER}</cas:user>")),
        "{body}"
    );
    assert!(body.contains("<cas:login>a1001</cas:login>"), "{body}");
    assert!(
        body.contains("<cas:mail>alice@example.org</cas:mail>"),
        "{body}"
    );
    assert!(!body.contains("<cas:uid>"), "{body}");

    let mail = "https://mail.example.org/inbox";
    let page = browser.get(&login_path(mail)).await;
    let ticket = page.ticket();
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, mail, "")
        .await;
    assert!(
        body.contains("<cas:user>alice@example.org</cas:user>"),
        "user_field: {body}"
    );

    // The filter on memberOf holds for nobody here; Admin is disabled.
    for refused in [
        "https://intranet.example.org/",
        "https://admin.example.org/",
    ] {
        let page = browser.get(&login_path(refused)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{refused}");
        assert!(page.headers.get("location").is_none(), "{refused}");
    }
}

fn login_path(service: &str) -> String {
    format!("/login?service={}", crate::support::enc(service))
}

#[tokio::test]
async fn a_django_cas_server_sqlite_database_is_imported_like_its_dump() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_database(dir.path()).await;
    imports_like_the_dump(&url).await;
    // Read-only: the import did not write to django-cas-server's file.
    let pool = sqlx_sqlite::SqlitePool::connect(&url).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM cas_server_servicepattern")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 5);
}

#[tokio::test]
async fn a_django_cas_server_postgres_database_is_imported_like_its_dump() {
    let db = postgres_database().await;
    imports_like_the_dump(&db.url).await;
}

#[tokio::test]
async fn databases_without_django_cas_server_tables_are_refused_clearly() {
    let server = TestServer::start().await;
    let config = server.config_file();
    let dir = tempfile::tempdir().unwrap();
    let missing = "this does not look like a django-cas-server database: table cas_server_servicepattern is missing";

    // Tessera's own database: tables, but not django-cas-server's.
    let own = server.loaded.settings.database.url.clone();
    let (ok, out) = import(&config, &own, &[]);
    assert!(!ok && out.contains(missing), "{out}");

    // An empty PostgreSQL database.
    let db = PostgresDatabase::create();
    let (ok, out) = import(&config, &db.url, &["--dry-run"]);
    assert!(!ok && out.contains(missing), "{out}");
    assert!(out.contains("no table at all"), "{out}");

    // Nothing there, or nobody listening; a password in the URL is not shown.
    let absent = format!("sqlite://{}/absent.sqlite3", dir.path().display());
    let (ok, out) = import(&config, &absent, &[]);
    assert!(
        !ok && out.contains("cannot open the SQLite database"),
        "{out}"
    );
    assert!(!dir.path().join("absent.sqlite3").exists(), "not created");
    let (ok, out) = import(&config, "postgres://cas:s3cret@127.0.0.1:1/cas", &[]);
    assert!(
        !ok && out.contains("cannot connect to the database"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "{out}");

    // A SQLite file given by its path is pointed to its URL form.
    let file = sqlite_database(dir.path()).await;
    let path = file.trim_start_matches("sqlite://");
    let (ok, out) = import(&config, path, &[]);
    assert!(
        !ok && out.contains(&format!("give it as sqlite://{path}")),
        "{out}"
    );
    assert_eq!(
        server.store.list_services().await.unwrap().len(),
        2,
        "nothing imported"
    );
}
