//! `[oidc]` and `[[client]]`: the OpenID Connect provider and the clients declared in the file.

use std::time::Duration;

use serde::Deserialize;
use tessera_protocol::oidc::claims::ClaimSources;
use tessera_protocol::oidc::client::MIN_SECRET_LEN;
use tessera_protocol::oidc::{ClientSecret, OidcClient, SigningAlg};
use tessera_protocol::service::{AttributeRelease, AttributeRule, ServiceOrigin};

/// `[oidc]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// Serve the OpenID Connect provider. Default `true`.
    pub enabled: bool,
    /// Path of the issuer under the public URL: the issuer is `public_url + issuer_path`, and
    /// discovery is at `issuer + /.well-known/openid-configuration`. Default `/oidc`.
    pub issuer_path: String,
    /// Lifetime of an authorization code. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// Lifetime of an ID token. Default `10min` (at least 5 minutes).
    #[serde(with = "humantime_serde")]
    pub id_token_ttl: Duration,
    /// Lifetime of an access token. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token; a grant also ends with its SSO session. Default `8h`.
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// How long a just-rotated refresh token may be presented again (parallel refreshes) before it
    /// counts as reuse and ends the grant. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub refresh_grace: Duration,
    /// How long `tessera keys rotate` publishes a new key before signing with it, so relying
    /// parties' key caches learn it first. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub key_prepublish: Duration,
    /// How long a retired key is kept to check `id_token_hint`s it signed. Default `30days`.
    #[serde(with = "humantime_serde")]
    pub retired_key_retention: Duration,
    /// Attributes the `name` claim comes from, first found wins.
    pub name_attributes: Vec<String>,
    /// Attributes the `given_name` claim comes from.
    pub given_name_attributes: Vec<String>,
    /// Attributes the `family_name` claim comes from.
    pub family_name_attributes: Vec<String>,
    /// Attributes the `email` claim comes from.
    pub email_attributes: Vec<String>,
    /// Whether e-mail addresses of the user store are verified (`email_verified`). Default `true`.
    pub email_verified: bool,
}

impl Default for OidcSettings {
    fn default() -> Self {
        let sources = ClaimSources::default();
        Self {
            enabled: true,
            issuer_path: "/oidc".into(),
            code_ttl: Duration::from_secs(60),
            id_token_ttl: Duration::from_secs(600),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(8 * 3600),
            refresh_grace: Duration::from_secs(10),
            key_prepublish: Duration::from_secs(3600),
            retired_key_retention: Duration::from_secs(30 * 24 * 3600),
            name_attributes: sources.name,
            given_name_attributes: sources.given_name,
            family_name_attributes: sources.family_name,
            email_attributes: sources.email,
            email_verified: sources.email_verified,
        }
    }
}

impl OidcSettings {
    /// Where the standard claims come from.
    pub fn claim_sources(&self) -> ClaimSources {
        ClaimSources {
            name: self.name_attributes.clone(),
            given_name: self.given_name_attributes.clone(),
            family_name: self.family_name_attributes.clone(),
            email: self.email_attributes.clone(),
            email_verified: self.email_verified,
        }
    }

    /// Checks what serde cannot; returns the offending key and the fix.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        let path = &self.issuer_path;
        let well_formed = path.is_empty()
            || (path.starts_with('/')
                && !path.ends_with('/')
                && !path.contains("//")
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.')));
        if !well_formed {
            return Err((
                "[oidc] issuer_path",
                "must be empty or start with `/` and not end with one; use e.g. \"/oidc\"".into(),
            ));
        }
        if self.id_token_ttl < Duration::from_secs(300) {
            return Err((
                "[oidc] id_token_ttl",
                "must be at least 5 minutes (relying parties allow no leeway); use e.g. \"10min\""
                    .into(),
            ));
        }
        for (key, d) in [
            ("[oidc] code_ttl", self.code_ttl),
            ("[oidc] access_token_ttl", self.access_token_ttl),
            ("[oidc] refresh_token_ttl", self.refresh_token_ttl),
        ] {
            if d.is_zero() {
                return Err((key, "must be longer than zero".into()));
            }
        }
        if self.code_ttl > Duration::from_secs(600) {
            return Err((
                "[oidc] code_ttl",
                "must be at most 10 minutes (RFC 6749 §4.1.2); use e.g. \"60s\"".into(),
            ));
        }
        Ok(())
    }
}

/// `[[client]]`: an OpenID Connect client declared in the file. It wins over a database client of
/// the same id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// The `client_id`.
    pub id: String,
    /// Display name. Default: the id.
    pub name: Option<String>,
    /// The client secret (at least 32 characters). Prefer `secret_sha256` in shared files.
    pub secret: Option<String>,
    /// SHA-256 (hex) of the client secret.
    pub secret_sha256: Option<String>,
    /// A public client: no secret, PKCE required. Default `false`.
    #[serde(default)]
    pub public: bool,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to, matched exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes it may be granted. Default `["openid", "profile", "email"]`.
    pub scopes: Option<Vec<String>>,
    /// Where back-channel logout tokens go.
    pub backchannel_logout_uri: Option<String>,
    /// `RS256` (default) or `ES256`.
    pub signing_alg: Option<String>,
    /// Ask users for consent (once). Default `false`.
    #[serde(default)]
    pub consent: bool,
    /// Release every attribute as a claim. Default `false`.
    #[serde(default)]
    pub release_all: bool,
    /// Attributes to release as claims, as `ATTR` or `ATTR=CLAIM`.
    #[serde(default)]
    pub release: Vec<String>,
    /// Default `true`.
    #[serde(default = "super::yes")]
    pub enabled: bool,
}

/// Everything a client registration is made of, before checking; shared by the config file and
/// the CLI.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    /// The `client_id`.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// The stored secret (`None` for a public client).
    pub secret: Option<ClientSecret>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed scopes (empty: the default set).
    pub scopes: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// `RS256` or `ES256` (`None`: RS256).
    pub signing_alg: Option<String>,
    /// Ask for consent.
    pub consent: bool,
    /// Release every attribute.
    pub release_all: bool,
    /// Attributes to release.
    pub release: Vec<String>,
}

impl ClientSpec {
    /// The checked client.
    pub fn build(self, origin: ServiceOrigin) -> Result<OidcClient, String> {
        let secret = self.secret.unwrap_or(ClientSecret::Public);
        let mut client = OidcClient::new(self.id, secret, origin);
        if let Some(name) = self.name.filter(|n| !n.trim().is_empty()) {
            client.name = name;
        }
        client.redirect_uris = self.redirect_uris;
        client.post_logout_redirect_uris = self.post_logout_redirect_uris;
        if !self.scopes.is_empty() {
            client.scopes = self.scopes;
            if !client.scopes.iter().any(|s| s == "openid") {
                client.scopes.insert(0, "openid".into());
            }
        }
        client.backchannel_logout_uri = self.backchannel_logout_uri;
        if let Some(alg) = self.signing_alg {
            client.signing_alg = SigningAlg::parse(&alg).ok_or_else(|| {
                format!("signing alg `{alg}` is not supported; use RS256 or ES256")
            })?;
        }
        client.consent = self.consent;
        client.release = match (self.release_all, self.release.is_empty()) {
            (true, false) => return Err("give either release-all or release, not both".into()),
            (true, true) => AttributeRelease::All,
            (false, true) => AttributeRelease::Nothing,
            (false, false) => AttributeRelease::Only(
                self.release
                    .iter()
                    .map(|r| AttributeRule::parse(r))
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?,
            ),
        };
        client.validate().map_err(|e| e.to_string())?;
        Ok(client)
    }
}

/// A secret an operator chose: long enough to stand in for a random one.
pub fn chosen_secret(secret: &str) -> Result<ClientSecret, String> {
    if secret.chars().count() < MIN_SECRET_LEN {
        return Err(format!(
            "a client secret must be at least {MIN_SECRET_LEN} characters; leave it out to have one generated"
        ));
    }
    Ok(ClientSecret::hash(secret))
}

impl ClientSettings {
    pub(super) fn to_client(&self) -> Result<OidcClient, String> {
        let secret = match (&self.secret, &self.secret_sha256, self.public) {
            (Some(s), None, false) => Some(chosen_secret(s)?),
            (None, Some(hex), false) => {
                let hex = hex.to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("secret_sha256 must be 64 hexadecimal digits".into());
                }
                Some(ClientSecret::Sha256(hex))
            }
            (None, None, true) => None,
            (None, None, false) => {
                return Err("give secret or secret_sha256, or public = true".into())
            }
            _ => return Err("give one of secret, secret_sha256 or public = true".into()),
        };
        let mut client = ClientSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            secret,
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            scopes: self.scopes.clone().unwrap_or_default(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            signing_alg: self.signing_alg.clone(),
            consent: self.consent,
            release_all: self.release_all,
            release: self.release.clone(),
        }
        .build(ServiceOrigin::ConfigFile)?;
        client.enabled = self.enabled;
        Ok(client)
    }
}
