//! Users of an LDAP directory (OpenLDAP, 389-ds, Active Directory…).
//!
//! Two ways to find the user's entry:
//! - **search-then-bind**: the service account (`bind_dn`, or an anonymous connection) searches
//!   `base_dn` with `user_filter`, the login name escaped for a filter (RFC 4515); the entry found
//!   is then bound with the password. No entry: the source does not know the user.
//! - **direct bind**: the DN is `user_dn_template` with the login name escaped for a DN (RFC 4514).
//!   With a service account, a base search first tells whether the entry exists; without one, a
//!   failed bind cannot tell an absent user from a wrong password and counts as "unknown", so
//!   later sources are asked.
//!
//! A refused bind (wrong password, locked or disabled account) is a rejection, like a wrong
//! password. Attributes are read from the entry (`attributes`, multi-valued kept) and groups from
//! `group_attribute` and/or a group search, released as `groups`.
//!
//! Connections are pooled (at most `pool_size`): each is bound as the service account (or
//! anonymous) when idle, does the searches, binds as the user, and goes back to the service
//! identity before it returns to the pool. A directory that cannot be reached, or that times out,
//! is an [`AuthError::Unavailable`] naming the URL and the cause; the login is not counted as a
//! failure. TLS (`ldaps://` or StartTLS) is rustls, trusting the web roots and `ca_file`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{dn_escape, ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use ldap3::{Scope, SearchEntry};
use tessera_protocol::Attributes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::chain::{Outcome, Source};
use super::{AuthError, AuthenticatedUser, Password};
use crate::config::{load_ca_file, GroupFormat, LdapSettings, Secret};

/// Result codes of a bind that mean "not with these credentials" (RFC 4511 appendix A):
/// invalidCredentials (49; also locked or expired accounts on OpenLDAP ppolicy and Active
/// Directory), inappropriateAuthentication (48), insufficientAccessRights (50),
/// unwillingToPerform (53, e.g. a disabled account), constraintViolation (19).
const REFUSED: [u32; 5] = [49, 48, 50, 53, 19];
/// noSuchObject.
const NO_SUCH_OBJECT: u32 = 32;

enum Lookup {
    Search { base: String, filter: String },
    Direct { template: String },
}

/// Why one attempt failed.
enum Fail {
    /// The connection broke or timed out: a pooled connection may just be stale.
    Transport(String),
    /// The directory answered with an error.
    Directory(String),
}

impl From<LdapError> for Fail {
    fn from(e: LdapError) -> Self {
        match e {
            LdapError::LdapResult { result } => Self::Directory(format!(
                "the directory answered {} ({})",
                result.rc,
                result.text.trim()
            )),
            other => Self::Transport(other.to_string()),
        }
    }
}

/// A connection checked out of the pool.
struct Conn {
    ldap: Ldap,
    reused: bool,
    _permit: OwnedSemaphorePermit,
}

/// A `[[authenticator]] kind = "ldap"` source.
pub struct LdapSource {
    name: String,
    url: String,
    connect: LdapConnSettings,
    timeout: Duration,
    service: Option<(String, Secret)>,
    lookup: Lookup,
    username_attribute: Option<String>,
    attributes: Vec<(String, String)>,
    group_attribute: Option<String>,
    group_search: Option<(String, String)>,
    group_format: GroupFormat,
    idle: Mutex<Vec<Ldap>>,
    permits: Arc<Semaphore>,
}

impl LdapSource {
    /// A source for `settings` (checked by the config loader). Connects lazily.
    pub fn new(settings: &LdapSettings) -> Result<Self, AuthError> {
        let name = settings.name.clone().unwrap_or_else(|| "ldap".into());
        let invalid = |reason: String| AuthError::Unavailable {
            source_name: name.clone(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(file) = &settings.ca_file {
            for cert in load_ca_file(file).map_err(invalid)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("ca_file {}: {e}", file.display())))?;
            }
        }
        let tls = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connect = LdapConnSettings::new()
            .set_conn_timeout(settings.timeout)
            .set_starttls(settings.starttls)
            .set_config(Arc::new(tls));
        let service = match (
            &settings.bind_dn,
            settings.bind_password().map_err(invalid)?,
        ) {
            (Some(dn), Some(password)) => Some((dn.clone(), password)),
            _ => None,
        };
        let lookup = match (&settings.user_dn_template, &settings.base_dn) {
            (Some(template), _) => Lookup::Direct {
                template: template.clone(),
            },
            (None, Some(base)) => Lookup::Search {
                base: base.clone(),
                filter: settings.user_filter.clone(),
            },
            (None, None) => {
                return Err(invalid(
                    "give base_dn or user_dn_template (the config check should have said so)"
                        .into(),
                ))
            }
        };
        Ok(Self {
            url: settings.url.clone(),
            connect,
            timeout: settings.timeout,
            service,
            lookup,
            username_attribute: settings.username_attribute.clone(),
            attributes: settings
                .attributes
                .iter()
                .map(|(from, to)| (from.clone(), to.clone()))
                .collect(),
            group_attribute: settings.group_attribute.clone(),
            group_search: settings
                .group_base_dn
                .as_ref()
                .map(|base| (base.clone(), settings.group_filter.clone())),
            group_format: settings.group_format,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(settings.pool_size.max(1))),
            name,
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> AuthError {
        AuthError::Unavailable {
            source_name: self.name.clone(),
            reason: format!("{}: {}", self.url, reason.into()),
        }
    }

    /// An idle connection, or a new one bound as the service account.
    async fn checkout(&self) -> Result<Conn, AuthError> {
        let wait = self.timeout;
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                self.unavailable(format!(
                    "every connection stayed busy for {}",
                    humantime::format_duration(wait)
                ))
            })?
            .map_err(|e| self.unavailable(e.to_string()))?;
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match idle {
                Some(mut ldap) => {
                    if ldap.is_closed() {
                        continue;
                    }
                    return Ok(Conn {
                        ldap,
                        reused: true,
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let ldap = match tokio::time::timeout(wait * 2, self.connect()).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(self.unavailable(format!(
                    "no answer within {}",
                    humantime::format_duration(wait * 2)
                )))
            }
        };
        Ok(Conn {
            ldap,
            reused: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Ldap, AuthError> {
        let (conn, mut ldap) = LdapConnAsync::with_settings(self.connect.clone(), &self.url)
            .await
            .map_err(|e| self.unavailable(format!("cannot connect: {e}")))?;
        ldap3::drive!(conn);
        if let Some((dn, password)) = &self.service {
            let result = ldap
                .with_timeout(self.timeout)
                .simple_bind(dn, password.expose())
                .await
                .map_err(|e| self.unavailable(format!("service account bind: {e}")))?;
            if result.rc != 0 {
                return Err(self.unavailable(format!(
                    "the service account ({dn}) was refused (result {}: {}); check bind_dn and bind_password",
                    result.rc,
                    result.text.trim()
                )));
            }
        }
        Ok(ldap)
    }

    fn checkin(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn.ldap);
        }
    }

    /// The attributes to read from the entry (`1.1`: none).
    fn wanted(&self) -> Vec<String> {
        let mut wanted: Vec<String> = self.attributes.iter().map(|(a, _)| a.clone()).collect();
        wanted.extend(self.group_attribute.iter().cloned());
        wanted.extend(self.username_attribute.iter().cloned());
        if wanted.is_empty() {
            wanted.push("1.1".into());
        }
        wanted
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Option<Vec<SearchEntry>>, Fail> {
        let ldap3::SearchResult(entries, result) = ldap
            .with_timeout(self.timeout)
            .search(base, scope, filter, attrs)
            .await?;
        match result.rc {
            0 => Ok(Some(
                entries
                    .into_iter()
                    .filter(|e| !e.is_ref() && !e.is_intermediate())
                    .map(SearchEntry::construct)
                    .collect(),
            )),
            NO_SUCH_OBJECT => Ok(None),
            rc => Err(Fail::Directory(format!(
                "search under {base} failed with result {rc} ({})",
                result.text.trim()
            ))),
        }
    }

    /// Binds as `dn`; `Ok(false)` when the directory refuses these credentials.
    async fn bind(&self, ldap: &mut Ldap, dn: &str, password: &str) -> Result<bool, Fail> {
        let result = ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await?;
        match result.rc {
            0 => Ok(true),
            rc if REFUSED.contains(&rc) => Ok(false),
            rc => Err(Fail::Directory(format!(
                "bind failed with result {rc} ({})",
                result.text.trim()
            ))),
        }
    }

    /// Back to the pool's identity: the service account, or anonymous.
    async fn reset(&self, ldap: &mut Ldap) -> Result<(), Fail> {
        let (dn, password) = match &self.service {
            Some((dn, password)) => (dn.as_str(), password.expose()),
            None => ("", ""),
        };
        if self.bind(ldap, dn, password).await? {
            Ok(())
        } else {
            Err(Fail::Directory(
                "the service account was refused when rebinding".into(),
            ))
        }
    }

    /// One attempt on one connection.
    async fn attempt(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &Password,
    ) -> Result<Outcome, Fail> {
        let (dn, entry) = match &self.lookup {
            Lookup::Search { base, filter } => {
                let filter = filter.replace("{username}", &ldap_escape(username));
                let Some(mut found) = self
                    .search(ldap, base, Scope::Subtree, &filter, self.wanted())
                    .await?
                else {
                    return Err(Fail::Directory(format!(
                        "base_dn {base} does not exist in the directory"
                    )));
                };
                match found.len() {
                    0 => return Ok(Outcome::Unknown),
                    1 => {}
                    n => {
                        tracing::error!(source = %self.name, user = %username, entries = n, "user_filter matches several entries; login refused (make the filter select one entry)");
                        return Ok(Outcome::Rejected);
                    }
                }
                let entry = found.remove(0);
                (entry.dn.clone(), Some(entry))
            }
            Lookup::Direct { template } => {
                let dn = template.replace("{username}", &dn_escape(username));
                if self.service.is_some() {
                    match self
                        .search(ldap, &dn, Scope::Base, "(objectClass=*)", self.wanted())
                        .await?
                    {
                        Some(mut found) if !found.is_empty() => {
                            let entry = found.remove(0);
                            (dn, Some(entry))
                        }
                        _ => return Ok(Outcome::Unknown),
                    }
                } else {
                    (dn, None)
                }
            }
        };
        // An empty password is an unauthenticated bind, which succeeds: never send one.
        if password.expose().is_empty() {
            return Ok(Outcome::Rejected);
        }
        if !self.bind(ldap, &dn, password.expose()).await? {
            self.reset(ldap).await?;
            return Ok(match (&self.lookup, &entry) {
                (Lookup::Direct { .. }, None) => Outcome::Unknown,
                _ => Outcome::Rejected,
            });
        }
        // Logged in. Read what is missing, as the service account when there is one.
        if self.service.is_some() {
            self.reset(ldap).await?;
        }
        let entry = match entry {
            Some(entry) => Some(entry),
            None => self
                .search(ldap, &dn, Scope::Base, "(objectClass=*)", self.wanted())
                .await?
                .and_then(|mut found| (!found.is_empty()).then(|| found.remove(0))),
        };
        let mut groups: Vec<String> = Vec::new();
        if let (Some(attribute), Some(entry)) = (&self.group_attribute, &entry) {
            groups.extend(values(entry, attribute).iter().cloned());
        }
        if let Some((base, filter)) = &self.group_search {
            let filter = filter
                .replace("{dn}", &ldap_escape(dn.as_str()))
                .replace("{username}", &ldap_escape(username));
            if let Some(found) = self
                .search(ldap, base, Scope::Subtree, &filter, vec!["1.1".into()])
                .await?
            {
                groups.extend(found.into_iter().map(|g| g.dn));
            }
        }
        if self.service.is_none() {
            self.reset(ldap).await?;
        }
        let mut attributes = Attributes::new();
        if let Some(entry) = &entry {
            for (from, to) in &self.attributes {
                let found = values(entry, from);
                if !found.is_empty() {
                    let slot = attributes.entry(to.clone()).or_default();
                    slot.extend(found.iter().filter(|v| !v.is_empty()).cloned());
                }
            }
        }
        let mut released: Vec<String> = Vec::new();
        for g in groups {
            let g = match self.group_format {
                GroupFormat::Dn => g,
                GroupFormat::Name => first_rdn_value(&g),
            };
            if !g.is_empty() && !released.iter().any(|r| r.eq_ignore_ascii_case(&g)) {
                released.push(g);
            }
        }
        if !released.is_empty() {
            attributes
                .entry("groups".into())
                .or_default()
                .extend(released);
        }
        attributes.retain(|_, v| !v.is_empty());
        let canonical = self
            .username_attribute
            .as_ref()
            .zip(entry.as_ref())
            .and_then(|(a, e)| values(e, a).first().cloned())
            .unwrap_or_else(|| username.to_owned());
        Ok(Outcome::Accepted(AuthenticatedUser {
            username: canonical,
            attributes,
        }))
    }
}

/// The values of `attribute` (names are case-insensitive in LDAP).
fn values<'e>(entry: &'e SearchEntry, attribute: &str) -> &'e [String] {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// `cn=staff\2C old,ou=groups,dc=example,dc=org` → `staff, old`.
fn first_rdn_value(dn: &str) -> String {
    let bytes = dn.as_bytes();
    let mut end = bytes.len();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b',' | b'+' => {
                end = i;
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let rdn = &dn[..end];
    let value = rdn.split_once('=').map_or(rdn, |(_, v)| v).trim();
    let mut out = Vec::with_capacity(value.len());
    let v = value.as_bytes();
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(v[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_owned())
}

#[async_trait]
impl Source for LdapSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self, username: &str, password: &Password) -> Result<Outcome, AuthError> {
        for retry in [false, true] {
            let mut conn = self.checkout().await?;
            match self.attempt(&mut conn.ldap, username, password).await {
                Ok(outcome) => {
                    self.checkin(conn);
                    return Ok(outcome);
                }
                // A pooled connection the server has dropped since: once more on a new one.
                Err(Fail::Transport(_)) if conn.reused && !retry => continue,
                Err(Fail::Transport(e)) | Err(Fail::Directory(e)) => {
                    return Err(self.unavailable(e));
                }
            }
        }
        Err(self.unavailable("the directory keeps dropping the connection"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_are_escaped_for_filters_and_dns() {
        assert_eq!(
            "(uid={username})".replace("{username}", &ldap_escape("*)(uid=*")),
            r"(uid=\2a\29\28uid=\2a)"
        );
        assert_eq!(
            "uid={username},ou=people".replace("{username}", &dn_escape("doe, john")),
            r"uid=doe\2c john,ou=people"
        );
        assert_eq!(dn_escape("#x+y=z "), r"\23x\2by\3dz\20");
        assert_eq!(dn_escape(" a"), r"\20a");
    }

    #[test]
    fn group_names_are_the_first_rdn_value() {
        assert_eq!(
            first_rdn_value("cn=staff,ou=groups,dc=example,dc=org"),
            "staff"
        );
        assert_eq!(first_rdn_value(r"cn=doe\2C john,ou=groups"), "doe, john");
        assert_eq!(first_rdn_value(r"cn=a\,b,ou=groups"), "a,b");
        assert_eq!(first_rdn_value("staff"), "staff");
    }
}
