//! A fresh, empty PostgreSQL database per test, on the server `TESSERA_TEST_POSTGRES_URL` names
//! (`eval "$(scripts/postgres-test-server start)"` exports it). The database is created and dropped
//! through that admin URL with `psql`, as this crate links no PostgreSQL client of its own.

use std::process::{Command, Stdio};

/// A database of its own on the PostgreSQL test server, dropped (connections and all) at the end.
pub(crate) struct PostgresDatabase {
    admin_url: String,
    name: String,
    /// `postgres://…/NAME`, for `[database] url`.
    pub(crate) url: String,
}

impl PostgresDatabase {
    /// Creates it; fails the test with the way to get a server if there is none.
    pub(crate) fn create() -> Self {
        let admin_url = std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "TESSERA_TEST_POSTGRES_URL is not set, and the PostgreSQL tests need a server: \
                 run scripts/test, or start a throwaway one with \
                 `eval \"$(scripts/postgres-test-server start)\"` (and stop it with \
                 `scripts/postgres-test-server stop`)"
            )
        });
        let name = format!(
            "tessera_it_{}_{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let created = psql(&admin_url, &format!("CREATE DATABASE {name}"));
        assert!(
            created.status.success(),
            "cannot create a database on the PostgreSQL test server at {admin_url}: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Self {
            admin_url,
            name,
            url: url.into(),
        }
    }
}

impl Drop for PostgresDatabase {
    /// Best-effort: the server is throwaway.
    fn drop(&mut self) {
        let _ = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one SQL statement with `psql` (from `PATH`, or the newest PostgreSQL installed under
/// /usr/lib/postgresql, where scripts/postgres-test-server finds its server).
fn psql(url: &str, sql: &str) -> std::process::Output {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin/psql"))
        .filter(|p| p.is_file())
        .max_by_key(|p| {
            p.iter()
                .nth(4)
                .and_then(|v| v.to_str()?.parse::<u32>().ok())
        });
    let program = installed.map_or_else(|| "psql".into(), |p| p.into_os_string());
    Command::new(&program)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program:?} (the PostgreSQL client) to create a test database: {e}")
        })
}
