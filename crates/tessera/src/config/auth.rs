//! `[[authenticator]]`: where users log in, tried in order (see [`crate::auth::chain`] for the
//! rule). Without any, the built-in users are the only source.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_protocol::attributes::is_valid_attribute_name;

use crate::auth::hashes::HashFormat;
use crate::auth::sql::{check_query, SqlDriver};

/// A secret from the config file (a bind password): `Debug` never shows it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `[[authenticator]]` table; `kind` says which.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuthenticatorSettings {
    /// `kind = "builtin"`: the users of Tessera's own database (`tessera user …`).
    Builtin(BuiltinSettings),
    /// `kind = "ldap"`: an LDAP directory or Active Directory.
    Ldap(Box<LdapSettings>),
    /// `kind = "sql"`: a table of an application database.
    Sql(Box<SqlSettings>),
}

impl AuthenticatorSettings {
    /// `builtin`, `ldap` or `sql`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Builtin(_) => "builtin",
            Self::Ldap(_) => "ldap",
            Self::Sql(_) => "sql",
        }
    }

    /// The name it is logged under: `name`, or the kind.
    pub fn name(&self) -> &str {
        let name = match self {
            Self::Builtin(b) => b.name.as_deref(),
            Self::Ldap(l) => l.name.as_deref(),
            Self::Sql(s) => s.name.as_deref(),
        };
        name.unwrap_or(self.kind())
    }
}

/// `kind = "builtin"`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinSettings {
    /// Name in logs and errors. Default `builtin`.
    pub name: Option<String>,
}

/// How LDAP group DNs are released in the `groups` attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupFormat {
    /// The value of the DN's first component (`cn=staff,ou=groups,…` → `staff`). The default.
    #[default]
    Name,
    /// The whole DN.
    Dn,
}

/// `kind = "ldap"`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapSettings {
    /// Name in logs and errors. Default `ldap`.
    pub name: Option<String>,
    /// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS. Default `false`.
    pub starttls: bool,
    /// PEM CA certificates trusted for the directory's TLS certificate, besides the web roots.
    pub ca_file: Option<PathBuf>,
    /// Service account that searches for users (search-then-bind). Without it, searches are
    /// anonymous.
    pub bind_dn: Option<String>,
    /// Its password; prefer `bind_password_file`.
    pub bind_password: Option<Secret>,
    /// A file whose first line is its password.
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (search-then-bind).
    pub base_dn: Option<String>,
    /// The search filter; `{username}` is replaced by the login name, escaped (RFC 4515).
    /// Default `(uid={username})`; Active Directory: `(sAMAccountName={username})`.
    pub user_filter: String,
    /// Direct bind instead of a search: the user's DN, `{username}` replaced by the login name
    /// escaped for a DN (RFC 4514), e.g. `uid={username},ou=people,dc=example,dc=org`.
    pub user_dn_template: Option<String>,
    /// Attribute of the entry whose value becomes the login name (e.g. `uid`, to canonicalise
    /// case). Default: the name as typed.
    pub username_attribute: Option<String>,
    /// Entry attributes to read, as `LDAP_NAME = "tessera_name"` (multi-valued kept).
    pub attributes: BTreeMap<String, String>,
    /// Entry attribute listing the user's groups (e.g. `memberOf`); released as `groups`.
    pub group_attribute: Option<String>,
    /// Where groups are searched; with `group_filter`, the groups found are released as `groups`.
    pub group_base_dn: Option<String>,
    /// The group search filter: `{dn}` is the user's DN, `{username}` the login name (both
    /// escaped). Default `(member={dn})`.
    pub group_filter: String,
    /// How groups are released: `name` (the DN's first value, default) or `dn`.
    pub group_format: GroupFormat,
    /// Time allowed to connect and for each operation. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Connections kept to the directory, at most. Default 4.
    pub pool_size: usize,
}

impl Default for LdapSettings {
    fn default() -> Self {
        Self {
            name: None,
            url: String::new(),
            starttls: false,
            ca_file: None,
            bind_dn: None,
            bind_password: None,
            bind_password_file: None,
            base_dn: None,
            user_filter: "(uid={username})".into(),
            user_dn_template: None,
            username_attribute: None,
            attributes: BTreeMap::new(),
            group_attribute: None,
            group_base_dn: None,
            group_filter: "(member={dn})".into(),
            group_format: GroupFormat::Name,
            timeout: Duration::from_secs(5),
            pool_size: 4,
        }
    }
}

impl LdapSettings {
    /// The service account's password: `bind_password`, or the first line of
    /// `bind_password_file`.
    pub fn bind_password(&self) -> Result<Option<Secret>, String> {
        match (&self.bind_password, &self.bind_password_file) {
            (Some(p), None) => Ok(Some(p.clone())),
            (None, Some(file)) => read_secret_file(file).map(Some),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err("give bind_password or bind_password_file, not both".into()),
        }
    }

    fn check(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            format!(
                "url `{}`: {e}; use e.g. \"ldaps://ldap.example.org\"",
                self.url
            )
        })?;
        match url.scheme() {
            "ldap" => {}
            "ldaps" if self.starttls => {
                return Err("starttls is for ldap:// URLs; an ldaps:// URL is TLS already".into())
            }
            "ldaps" => {}
            other => {
                return Err(format!(
                    "url scheme `{other}` is not supported; use ldap:// (with starttls = true) or ldaps://"
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("url has no host; use e.g. \"ldaps://ldap.example.org\"".into());
        }
        if let Some(file) = &self.ca_file {
            load_ca_file(file)?;
        }
        let password = self.bind_password()?;
        if self.bind_dn.is_some() != password.is_some() {
            return Err(
                "give bind_dn with bind_password (or bind_password_file), or neither (anonymous search)"
                    .into(),
            );
        }
        if password.as_ref().is_some_and(|p| p.expose().is_empty()) {
            return Err("the bind password is empty (an empty password is an unauthenticated bind in LDAP); set it, or remove bind_dn for anonymous searches".into());
        }
        match (&self.user_dn_template, &self.base_dn) {
            (Some(template), _) => {
                if !template.contains("{username}") {
                    return Err("user_dn_template must contain {username}, e.g. \"uid={username},ou=people,dc=example,dc=org\"".into());
                }
            }
            (None, Some(_)) => {
                let f = &self.user_filter;
                if !f.contains("{username}")
                    || !f.starts_with('(')
                    || !f.ends_with(')')
                    || f.matches('(').count() != f.matches(')').count()
                {
                    return Err(format!(
                        "user_filter `{f}` must be a parenthesised filter containing {{username}}, e.g. \"(uid={{username}})\""
                    ));
                }
            }
            (None, None) => {
                return Err("give base_dn (search-then-bind, with user_filter) or user_dn_template (direct bind)".into())
            }
        }
        for (from, to) in &self.attributes {
            if from.is_empty() || !is_valid_attribute_name(to) {
                return Err(format!(
                    "attributes: `{from} = \"{to}\"`: the Tessera name must be a valid attribute name (letters, digits, - _ . ; not starting with a digit)"
                ));
            }
        }
        if let Some(base) = &self.group_base_dn {
            if base.trim().is_empty() {
                return Err("group_base_dn is empty; remove it or give the groups' base DN".into());
            }
            let f = &self.group_filter;
            if !(f.contains("{dn}") || f.contains("{username}"))
                || !f.starts_with('(')
                || !f.ends_with(')')
            {
                return Err(format!(
                    "group_filter `{f}` must be a parenthesised filter containing {{dn}} or {{username}}, e.g. \"(member={{dn}})\""
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err("timeout must be longer than zero; use e.g. \"5s\"".into());
        }
        if self.pool_size == 0 || self.pool_size > 256 {
            return Err("pool_size must be between 1 and 256".into());
        }
        Ok(())
    }
}

/// `kind = "sql"`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlSettings {
    /// Name in logs and errors. Default `sql`.
    pub name: Option<String>,
    /// `postgres://USER@HOST/DB`, `mysql://USER@HOST/DB` (MariaDB too) or `sqlite://PATH`.
    pub url: String,
    /// A file whose first line is the database password (put into `url`).
    pub password_file: Option<PathBuf>,
    /// The query; it gets the login name as its one parameter, written as the driver wants it:
    /// `$1` for PostgreSQL, `?` for MySQL, either for SQLite. The first row decides; attribute
    /// values of further rows are added (so a join can return several groups).
    pub query: String,
    /// The column holding the password hash. Default `password`.
    pub password_column: String,
    /// The column whose value (in the first row) becomes the login name, e.g. `login`, so that a
    /// name typed in another case (which a case-insensitive collation, MySQL's usual one, matches)
    /// is the same user for every application. Default: the name as typed.
    pub username_column: Option<String>,
    /// Columns to release as attributes, `column = "attribute"`. Default: every other column,
    /// under its own name.
    pub attribute_columns: BTreeMap<String, String>,
    /// `auto` (recognised by prefix, the default) or one of the formats of
    /// [`crate::auth::hashes::HashFormat`].
    pub hash_format: String,
    /// Accept passwords stored as plain text (with `hash_format = "plain"`, or `auto` for values in
    /// no known format). Default `false`.
    pub allow_plain: bool,
    /// Time allowed to get a connection and for the query. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Connections kept to the database, at most. Default 4.
    pub pool_size: u32,
}

impl Default for SqlSettings {
    fn default() -> Self {
        Self {
            name: None,
            url: String::new(),
            password_file: None,
            query: String::new(),
            password_column: "password".into(),
            username_column: None,
            attribute_columns: BTreeMap::new(),
            hash_format: "auto".into(),
            allow_plain: false,
            timeout: Duration::from_secs(5),
            pool_size: 4,
        }
    }
}

impl fmt::Debug for SqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSettings")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("password_file", &self.password_file)
            .field("query", &self.query)
            .field("password_column", &self.password_column)
            .field("username_column", &self.username_column)
            .field("attribute_columns", &self.attribute_columns)
            .field("hash_format", &self.hash_format)
            .field("allow_plain", &self.allow_plain)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl SqlSettings {
    /// `None` for `auto`, else the named format.
    pub fn format(&self) -> Result<Option<HashFormat>, String> {
        if self.hash_format.eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        HashFormat::parse(&self.hash_format)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "hash_format `{}` is unknown; use auto or one of {}",
                    self.hash_format,
                    HashFormat::names()
                )
            })
    }

    /// The driver `url` names.
    pub fn driver(&self) -> Result<SqlDriver, String> {
        SqlDriver::of_url(&self.url).ok_or_else(|| {
            format!(
                "url `{}`: unsupported database; use postgres://, mysql:// (MariaDB too) or sqlite://",
                redact_url(&self.url)
            )
        })
    }

    /// `url` with the password of `password_file`, if given.
    pub fn connect_url(&self) -> Result<String, String> {
        let Some(file) = &self.password_file else {
            return Ok(self.url.clone());
        };
        let password = read_secret_file(file)?;
        let mut url = url::Url::parse(&self.url)
            .map_err(|e| format!("url `{}`: {e}", redact_url(&self.url)))?;
        url.set_password(Some(password.expose()))
            .map_err(|()| "password_file: this url cannot carry a password".to_owned())?;
        Ok(url.into())
    }

    fn check(&self) -> Result<(), String> {
        let driver = self.driver()?;
        if self.password_file.is_some() && driver == SqlDriver::Sqlite {
            return Err("password_file is for PostgreSQL and MySQL; remove it".into());
        }
        self.connect_url()?;
        check_query(driver, &self.query)?;
        if self.password_column.is_empty() {
            return Err("password_column is empty; name the column holding the hash".into());
        }
        if self.username_column.as_ref().is_some_and(String::is_empty) {
            return Err(
                "username_column is empty; name the column holding the login name, or remove it"
                    .into(),
            );
        }
        let format = self.format()?;
        if format == Some(HashFormat::Plain) && !self.allow_plain {
            return Err("hash_format = \"plain\" compares passwords stored in clear text; set allow_plain = true to accept that, or name the hash format".into());
        }
        for (column, attribute) in &self.attribute_columns {
            if column.is_empty() || !is_valid_attribute_name(attribute) {
                return Err(format!(
                    "attribute_columns: `{column} = \"{attribute}\"`: the attribute name must be letters, digits, - _ . (not starting with a digit)"
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err("timeout must be longer than zero; use e.g. \"5s\"".into());
        }
        if self.pool_size == 0 || self.pool_size > 256 {
            return Err("pool_size must be between 1 and 256".into());
        }
        Ok(())
    }
}

/// The first line of `file`, which must not be empty.
pub fn read_secret_file(file: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(format!(
            "{} is empty; its first line must be the password",
            file.display()
        ));
    }
    Ok(Secret::new(line))
}

/// The certificates of a PEM file (at least one).
pub fn load_ca_file(
    file: &Path,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("ca_file: cannot read {}: {e}", file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ca_file: {}: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "ca_file: {} holds no PEM certificate",
            file.display()
        ));
    }
    Ok(certs)
}

/// `url` with its password, if any, hidden.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Checks every table; returns the offending table (`[[authenticator]] #2 (ldap)`) and the fix.
pub(super) fn check(list: &[AuthenticatorSettings]) -> Result<(), (String, String)> {
    let mut names: Vec<&str> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let key = format!("[[authenticator]] #{} ({})", i + 1, a.name());
        if names.contains(&a.name()) {
            return Err((
                key,
                "two login sources have this name; give each a distinct `name`".into(),
            ));
        }
        names.push(a.name());
        match a {
            AuthenticatorSettings::Builtin(_) => {
                if list[..i]
                    .iter()
                    .any(|b| matches!(b, AuthenticatorSettings::Builtin(_)))
                {
                    return Err((key, "the built-in users are listed twice".into()));
                }
            }
            AuthenticatorSettings::Ldap(l) => l.check().map_err(|m| (key.clone(), m))?,
            AuthenticatorSettings::Sql(s) => s.check().map_err(|m| (key.clone(), m))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<AuthenticatorSettings>, String> {
        #[derive(Deserialize)]
        struct Doc {
            authenticator: Vec<AuthenticatorSettings>,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        check(&doc.authenticator).map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(doc.authenticator)
    }

    #[test]
    fn each_kind_parses() {
        let list = parse(
            r#"
[[authenticator]]
kind = "ldap"
name = "directory"
url = "ldaps://ldap.example.org"
bind_dn = "cn=tessera,dc=example,dc=org"
bind_password = "s3cret"
base_dn = "ou=people,dc=example,dc=org"
attributes = { mail = "mail", displayName = "name" }
group_attribute = "memberOf"

[[authenticator]]
kind = "sql"
url = "postgres://app@db.example.org/app"
query = "SELECT password, mail FROM users WHERE login = $1"

[[authenticator]]
kind = "builtin"
"#,
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].name(), "directory");
        assert_eq!(list[1].name(), "sql");
        assert_eq!(list[2].kind(), "builtin");
        let debug = format!("{list:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn mistakes_are_explained() {
        for (text, needle) in [
            ("[[authenticator]]\nkind = \"nis\"\n", "unknown variant"),
            (
                "[[authenticator]]\nkind = \"ldap\"\nurl = \"http://x\"\nbase_dn = \"dc=x\"\n",
                "ldap:// (with starttls = true) or ldaps://",
            ),
            (
                "[[authenticator]]\nkind = \"ldap\"\nurl = \"ldap://x\"\n",
                "give base_dn",
            ),
            (
                "[[authenticator]]\nkind = \"ldap\"\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nuser_filter = \"uid={username}\"\n",
                "parenthesised",
            ),
            (
                "[[authenticator]]\nkind = \"ldap\"\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nbind_dn = \"cn=a\"\n",
                "give bind_dn with bind_password",
            ),
            (
                "[[authenticator]]\nkind = \"ldap\"\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nquery = \"x\"\n",
                "unknown field `query`",
            ),
            (
                "[[authenticator]]\nkind = \"sql\"\nurl = \"oracle://x\"\nquery = \"x\"\n",
                "unsupported database",
            ),
            (
                "[[authenticator]]\nkind = \"sql\"\nurl = \"postgres://x/y\"\nquery = \"SELECT password FROM u WHERE login = ?\"\n",
                "$1",
            ),
            (
                "[[authenticator]]\nkind = \"sql\"\nurl = \"sqlite://x.db\"\nquery = \"SELECT password FROM u WHERE login = ?\"\nhash_format = \"plain\"\n",
                "allow_plain",
            ),
            (
                "[[authenticator]]\nkind = \"sql\"\nurl = \"sqlite://x.db\"\nquery = \"SELECT password FROM u WHERE login = ?\"\nhash_format = \"rot13\"\n",
                "hash_format `rot13`",
            ),
            (
                "[[authenticator]]\nkind = \"sql\"\nurl = \"sqlite://x.db\"\nquery = \"SELECT password FROM u WHERE login = ?\"\nusername_column = \"\"\n",
                "username_column is empty",
            ),
            (
                "[[authenticator]]\nkind = \"builtin\"\n[[authenticator]]\nkind = \"builtin\"\n",
                "two login sources have this name",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nignored\n").unwrap();
        let settings = SqlSettings {
            url: "postgres://app@db.example.org/app".into(),
            password_file: Some(file.clone()),
            query: "SELECT password FROM u WHERE login = $1".into(),
            ..SqlSettings::default()
        };
        assert_eq!(
            settings.connect_url().unwrap(),
            "postgres://app:from-file@db.example.org/app"
        );
        assert!(!format!("{settings:?}").contains("from-file"));
        let ldap = LdapSettings {
            bind_password_file: Some(file),
            ..LdapSettings::default()
        };
        assert_eq!(ldap.bind_password().unwrap().unwrap().expose(), "from-file");
    }
}
