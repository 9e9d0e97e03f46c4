//! Users in a table of an application database (PostgreSQL, MySQL/MariaDB or SQLite): a
//! configured query gets the login name as its one parameter and returns the stored password
//! hash and, optionally, attribute columns.
//!
//! The hash is checked with [`super::hashes`] on the blocking pool, through the same bounded
//! permits as the built-in Argon2 hashes. No row: the source does not know the user (the next
//! source is asked). A database that does not answer is an [`AuthError::Unavailable`], not a
//! failed login. Neither a hash nor a password is ever logged.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Column as _, Row as _};
use tessera_protocol::attributes::is_valid_attribute_name;
use tessera_protocol::Attributes;

use super::chain::{Outcome, Source};
use super::hashes::{self, HashFormat, Verification};
use super::local::PasswordHasher;
use super::{AuthError, AuthenticatedUser, Password};
use crate::config::SqlSettings;
use text::{MySqlText, PgText};

mod text;

/// The database kinds a `[[authenticator]] kind = "sql"` URL may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDriver {
    /// `postgres://` or `postgresql://`; the parameter is `$1`.
    Postgres,
    /// `mysql://` or `mariadb://`; the parameter is `?`.
    MySql,
    /// `sqlite://PATH` or `sqlite:PATH`; the parameter is `?`, `?1` or `$1`.
    Sqlite,
}

impl SqlDriver {
    /// The driver a URL names, from its scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// How the login-name parameter is written for this driver.
    pub fn placeholder_hint(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL numbers its parameters: write `$1`, e.g. `SELECT password FROM users WHERE login = $1`",
            Self::MySql => "MySQL marks its parameter with `?`, e.g. `SELECT password FROM users WHERE login = ?`",
            Self::Sqlite => "SQLite takes `?` (once) or `?1` / `$1`, e.g. `SELECT password FROM users WHERE login = ?`",
        }
    }
}

/// The parameter markers of `query` outside quotes: bare `?`, and the numbers of `$N` / `?N`.
fn placeholders(query: &str) -> (usize, Vec<u32>) {
    let bytes = query.as_bytes();
    let (mut bare, mut numbered) = (0, Vec::new());
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if matches!(b, b'\'' | b'"' | b'`') => quote = Some(b),
            None if b == b'-' && bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            None if b == b'?' || b == b'$' => {
                let digits: String = query[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse::<u32>() {
                    numbered.push(n);
                    i += digits.len();
                } else if b == b'?' {
                    bare += 1;
                }
            }
            None => {}
        }
        i += 1;
    }
    (bare, numbered)
}

/// Checks that `query` takes exactly one parameter, the login name, written as `driver` wants it.
pub fn check_query(driver: SqlDriver, query: &str) -> Result<(), String> {
    if query.trim().is_empty() {
        return Err(format!(
            "query is empty; give the query returning the password hash. {}",
            driver.placeholder_hint()
        ));
    }
    let (bare, numbered) = placeholders(query);
    let only_first = !numbered.is_empty() && numbered.iter().all(|&n| n == 1);
    let ok = match driver {
        // `?` is a JSON operator in PostgreSQL, not a parameter.
        SqlDriver::Postgres => only_first,
        SqlDriver::MySql => bare == 1 && numbered.is_empty(),
        SqlDriver::Sqlite => (bare == 1 && numbered.is_empty()) || (bare == 0 && only_first),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "query must take the login name as its one parameter. {}",
            driver.placeholder_hint()
        ))
    }
}

enum Pool {
    Postgres(sqlx_postgres::PgPool),
    MySql(sqlx_mysql::MySqlPool),
    Sqlite(sqlx_sqlite::SqlitePool),
}

/// A column's values as text (none for NULL), or, when no type reads it, the name of its type.
type Cell = Result<Vec<String>, String>;

/// One row: each column's name and its values.
type RowValues = Vec<(String, Cell)>;

/// Reads column `$i` of `$row` as text, trying the types a login table holds.
macro_rules! cell {
    ($row:expr, $i:expr, $($ty:ty),+) => {{
        let mut out: Option<Vec<String>> = None;
        $(
            if out.is_none() {
                if let Ok(v) = $row.try_get::<Option<$ty>, _>($i) {
                    out = Some(v.map(|v| v.to_string()).into_iter().collect());
                }
            }
        )+
        if out.is_none() {
            if let Ok(v) = $row.try_get::<Option<Vec<u8>>, _>($i) {
                out = Some(v.and_then(|b| String::from_utf8(b).ok()).into_iter().collect());
            }
        }
        out.ok_or_else(|| $row.columns()[$i].type_info().to_string())
    }};
}

/// Runs the query on a pool of one driver and reads every row.
macro_rules! fetch {
    ($pool:expr, $query:expr, $username:expr, |$row:ident, $i:ident| $cell:expr) => {{
        let rows = sqlx::query($query).bind($username).fetch_all($pool).await?;
        rows.iter()
            .map(|$row| {
                $row.columns()
                    .iter()
                    .enumerate()
                    .map(|($i, c)| (c.name().to_owned(), $cell))
                    .collect::<RowValues>()
            })
            .collect::<Vec<RowValues>>()
    }};
}

impl Pool {
    async fn fetch(&self, query: &str, username: &str) -> Result<Vec<RowValues>, sqlx::Error> {
        Ok(match self {
            Self::Postgres(pool) => fetch!(pool, query, username, |row, i| {
                match row.try_get::<Option<Vec<String>>, _>(i) {
                    Ok(values) => Ok(values.unwrap_or_default()),
                    Err(_) => cell!(row, i, String, i64, i32, i16, f64, f32, bool, PgText),
                }
            }),
            Self::MySql(pool) => fetch!(pool, query, username, |row, i| cell!(
                row, i, String, i64, u64, i32, u32, i16, i8, f64, f32, bool, MySqlText
            )),
            Self::Sqlite(pool) => fetch!(pool, query, username, |row, i| cell!(
                row, i, String, i64, f64, bool
            )),
        })
    }
}

/// A `[[authenticator]] kind = "sql"` source.
pub struct SqlSource {
    name: String,
    pool: Pool,
    query: String,
    password_column: String,
    username_column: Option<String>,
    attribute_columns: Vec<(String, String)>,
    format: Option<HashFormat>,
    allow_plain: bool,
    timeout: Duration,
    hasher: PasswordHasher,
    /// Columns already reported as unreadable (once each, not at every login).
    unreadable: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl SqlSource {
    /// A source for `settings` (checked by the config loader). Connects lazily: a database that is
    /// down at start only fails the logins that reach it.
    pub fn new(settings: &SqlSettings, hasher: PasswordHasher) -> Result<Self, AuthError> {
        let name = settings.name.clone().unwrap_or_else(|| "sql".into());
        let invalid = |reason: String| AuthError::Unavailable {
            source_name: name.clone(),
            reason,
        };
        let url = settings.connect_url().map_err(invalid)?;
        let driver = settings.driver().map_err(invalid)?;
        let format = settings.format().map_err(invalid)?;
        let connect_error = |e: sqlx::Error| AuthError::Unavailable {
            source_name: name.clone(),
            reason: format!("bad database url: {e}"),
        };
        let max = settings.pool_size;
        let timeout = settings.timeout;
        let pool = match driver {
            SqlDriver::Postgres => Pool::Postgres(
                sqlx_postgres::PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect_lazy(&url)
                    .map_err(connect_error)?,
            ),
            SqlDriver::MySql => Pool::MySql(
                sqlx_mysql::MySqlPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect_lazy(&url)
                    .map_err(connect_error)?,
            ),
            SqlDriver::Sqlite => Pool::Sqlite(
                sqlx_sqlite::SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect_lazy(&url)
                    .map_err(connect_error)?,
            ),
        };
        Ok(Self {
            name,
            pool,
            query: settings.query.clone(),
            password_column: settings.password_column.clone(),
            username_column: settings.username_column.clone(),
            attribute_columns: settings
                .attribute_columns
                .iter()
                .map(|(c, a)| (c.clone(), a.clone()))
                .collect(),
            format,
            allow_plain: settings.allow_plain,
            timeout,
            hasher,
            unreadable: Default::default(),
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> AuthError {
        AuthError::Unavailable {
            source_name: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The values of the column `name` (the setting `key`) in `row`; a column the query does not
    /// return, or that cannot be read as text, is a configuration error.
    fn column<'r>(
        &self,
        row: &'r RowValues,
        name: &str,
        key: &str,
    ) -> Result<&'r [String], AuthError> {
        match row.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            Some((_, Ok(values))) => Ok(values),
            Some((_, Err(type_name))) => Err(self.unavailable(format!(
                "the column `{name}` ({key}) is of type {type_name}, which cannot be read as text; \
                 convert it in the query"
            ))),
            None => Err(self.unavailable(format!(
                "the query returns no column `{name}` ({key}); name it in the SELECT"
            ))),
        }
    }

    /// Says, once per column, that a column the attributes would take is of a type no reader
    /// knows (it is left out).
    fn report_unreadable(&self, column: &str, type_name: &str) {
        let first = self
            .unreadable
            .lock()
            .map(|mut reported| reported.insert(column.to_owned()))
            .unwrap_or(false);
        if first {
            tracing::warn!(
                source = %self.name,
                column,
                r#type = type_name,
                "a column of this type cannot be read as text and is left out of the attributes; \
                 convert it in the query (CAST(column AS CHAR), column::text)"
            );
        }
    }

    /// The attributes of the rows: mapped columns, or every column but the password's.
    fn attributes(&self, rows: &[RowValues]) -> Attributes {
        let mut attributes = Attributes::new();
        for row in rows {
            for (column, values) in row {
                let name = if self.attribute_columns.is_empty() {
                    if column.eq_ignore_ascii_case(&self.password_column)
                        || !is_valid_attribute_name(column)
                    {
                        continue;
                    }
                    column.as_str()
                } else {
                    match self
                        .attribute_columns
                        .iter()
                        .find(|(c, _)| c.eq_ignore_ascii_case(column))
                    {
                        Some((_, attribute)) => attribute.as_str(),
                        None => continue,
                    }
                };
                let values = match values {
                    Ok(values) => values,
                    Err(type_name) => {
                        self.report_unreadable(column, type_name);
                        continue;
                    }
                };
                let slot = attributes.entry(name.to_owned()).or_default();
                for v in values {
                    if !v.is_empty() && !slot.contains(v) {
                        slot.push(v.clone());
                    }
                }
            }
        }
        attributes.retain(|_, v| !v.is_empty());
        attributes
    }
}

#[async_trait]
impl Source for SqlSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, username: &str, password: &Password) -> Result<Outcome, AuthError> {
        let rows = match tokio::time::timeout(self.timeout, self.pool.fetch(&self.query, username))
            .await
        {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => return Err(self.unavailable(format!("the query failed: {e}"))),
            Err(_) => {
                return Err(self.unavailable(format!(
                    "the database did not answer within {}",
                    humantime::format_duration(self.timeout)
                )))
            }
        };
        let Some(first) = rows.first() else {
            return Ok(Outcome::Unknown);
        };
        let stored = self.column(first, &self.password_column, "password_column")?;
        let canonical = match &self.username_column {
            Some(c) => self.column(first, c, "username_column")?.first().cloned(),
            None => None,
        };
        let Some(stored) = stored.first().filter(|s| !s.is_empty()).cloned() else {
            // A user without a password (a disabled account) cannot log in.
            return Ok(Outcome::Rejected);
        };
        let (format, allow_plain) = (self.format, self.allow_plain);
        let secret = password.clone();
        let verdict = self
            .hasher
            .blocking(move || hashes::verify(secret.expose(), &stored, format, allow_plain))
            .await?;
        Ok(match verdict {
            Verification::Match => Outcome::Accepted(AuthenticatedUser {
                username: canonical
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| username.to_owned()),
                attributes: self.attributes(&rows),
            }),
            Verification::Mismatch => Outcome::Rejected,
            Verification::Unrecognised => {
                tracing::warn!(source = %self.name, user = %username, "the stored password is in no accepted format (check hash_format and allow_plain); login refused");
                Outcome::Rejected
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_come_from_the_url() {
        assert_eq!(
            SqlDriver::of_url("postgres://u@h/db"),
            Some(SqlDriver::Postgres)
        );
        assert_eq!(
            SqlDriver::of_url("postgresql://u@h/db"),
            Some(SqlDriver::Postgres)
        );
        assert_eq!(SqlDriver::of_url("mysql://u@h/db"), Some(SqlDriver::MySql));
        assert_eq!(
            SqlDriver::of_url("mariadb://u@h/db"),
            Some(SqlDriver::MySql)
        );
        assert_eq!(SqlDriver::of_url("sqlite://x.db"), Some(SqlDriver::Sqlite));
        assert_eq!(SqlDriver::of_url("sqlite:x.db"), Some(SqlDriver::Sqlite));
        assert_eq!(SqlDriver::of_url("oracle://h"), None);
        assert_eq!(SqlDriver::of_url("no scheme"), None);
    }

    #[test]
    fn each_driver_takes_its_own_placeholder() {
        let mysql = "SELECT password, mail FROM users WHERE login = ?";
        let pg = "SELECT password, mail FROM users WHERE login = $1";
        assert!(check_query(SqlDriver::MySql, mysql).is_ok());
        assert!(check_query(SqlDriver::MySql, pg)
            .unwrap_err()
            .contains("MySQL marks its parameter with `?`"));
        assert!(check_query(SqlDriver::Postgres, pg).is_ok());
        assert!(check_query(SqlDriver::Postgres, mysql)
            .unwrap_err()
            .contains("`$1`"));
        assert!(check_query(SqlDriver::Sqlite, mysql).is_ok());
        assert!(check_query(SqlDriver::Sqlite, pg).is_ok());
        // One parameter only, and quoted text is not a parameter.
        assert!(check_query(
            SqlDriver::MySql,
            "SELECT password FROM users WHERE login = ? OR mail = ?"
        )
        .is_err());
        assert!(check_query(
            SqlDriver::MySql,
            "SELECT password FROM users WHERE login = ? AND note <> 'why?'"
        )
        .is_ok());
        assert!(check_query(
            SqlDriver::Postgres,
            "SELECT password FROM users WHERE login = $1 OR mail = $1"
        )
        .is_ok());
        assert!(check_query(
            SqlDriver::Postgres,
            "SELECT password FROM users WHERE login = $1 AND x = $2"
        )
        .is_err());
        assert!(check_query(SqlDriver::MySql, "  ").is_err());
        assert!(check_query(
            SqlDriver::MySql,
            "SELECT password FROM users WHERE login = ? -- and not ?"
        )
        .is_ok());
    }

    #[tokio::test]
    async fn a_mysql_source_is_built_without_connecting() {
        // Nothing listens on the port: the pool is made without connecting, and a login then
        // finds the database unavailable (the integration tests run a real MariaDB).
        let settings = SqlSettings {
            url: "mysql://app:pw@127.0.0.1:1/app".into(),
            query: "SELECT password FROM users WHERE login = ?".into(),
            timeout: Duration::from_millis(300),
            ..SqlSettings::default()
        };
        let hasher = PasswordHasher::new(&crate::config::PasswordSettings::default()).unwrap();
        let source = SqlSource::new(&settings, hasher).unwrap();
        assert!(matches!(source.pool, Pool::MySql(_)));
        let e = source
            .check("alice", &Password::new("x".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::Unavailable { source_name, .. } if source_name == "sql"),
            "{e}"
        );
        assert!(!e.to_string().contains("pw@"), "{e}");
    }
}
