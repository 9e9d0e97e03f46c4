//! Relying parties (OAuth clients): what is registered about them and the checks made against it.

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SigningAlg;
use crate::service::{AttributeRelease, ServiceOrigin};
use crate::ticket::random_base62;

/// Scopes a client may ask for unless its registration narrows them.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// How a client authenticates at the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// A public client (a native or browser app): no secret, PKCE required.
    Public,
    /// A confidential client: the SHA-256 of its secret, lowercase hex. Secrets are long random
    /// strings (or at least 32 characters when chosen by an operator), so a fast hash suffices.
    Sha256(String),
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Public => f.write_str("Public"),
            Self::Sha256(_) => f.write_str("Sha256(…)"),
        }
    }
}

/// The shortest secret an operator may choose.
pub const MIN_SECRET_LEN: usize = 32;

impl ClientSecret {
    /// The stored form of `secret`.
    pub fn hash(secret: &str) -> Self {
        Self::Sha256(hex_sha256(secret.as_bytes()))
    }

    /// A new secret: 43 base62 characters (≈ 256 bits), all unreserved, so it reads the same
    /// whether or not a client form-encodes it for HTTP Basic (trap 2).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> (String, Self) {
        let secret = random_base62(rng, 43);
        let stored = Self::hash(&secret);
        (secret, stored)
    }

    /// Whether `presented` is the secret, compared in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        match self {
            Self::Public => false,
            Self::Sha256(hex) => {
                let candidate = hex_sha256(presented.as_bytes());
                candidate.as_bytes().ct_eq(hex.as_bytes()).into()
            }
        }
    }

    /// Whether this is a public client.
    pub fn is_public(&self) -> bool {
        matches!(self, Self::Public)
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// A registered OpenID Connect client and its policy.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// The `client_id`: unreserved characters only (`[A-Za-z0-9-._~]`).
    pub id: String,
    /// What users are shown (consent page, logged-out page); defaults to the id.
    pub name: String,
    /// Secret or public.
    pub secret: ClientSecret,
    /// Redirect URIs, compared byte for byte.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to, compared byte for byte.
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
    /// Where back-channel logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// ID and logout token signing algorithm.
    pub signing_alg: SigningAlg,
    /// Whether users must consent (once, remembered) before it receives their identity.
    pub consent: bool,
    /// Which user attributes it receives as extra claims, possibly renamed (as for CAS services).
    pub release: AttributeRelease,
    /// A disabled client is treated as unknown.
    pub enabled: bool,
    /// Where it was declared.
    pub origin: ServiceOrigin,
}

/// Why a client registration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The client id is unusable.
    #[error(
        "client id `{0}` must be 1 to 128 characters among letters, digits, `-`, `.`, `_` and `~`"
    )]
    BadId(String),
    /// No redirect URI.
    #[error("a client needs at least one redirect URI")]
    NoRedirectUri,
    /// A redirect or logout URI is unusable.
    #[error("`{uri}` {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A scope is unusable.
    #[error("scope `{0}` is not a valid scope token")]
    BadScope(String),
    /// A chosen secret is too short.
    #[error("a client secret must be at least {MIN_SECRET_LEN} characters")]
    WeakSecret,
}

impl OidcClient {
    /// A confidential client with default policy: scopes `openid profile email`, RS256, no consent.
    pub fn new(id: impl Into<String>, secret: ClientSecret, origin: ServiceOrigin) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            secret,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            backchannel_logout_uri: None,
            signing_alg: SigningAlg::Rs256,
            consent: false,
            release: AttributeRelease::Nothing,
            enabled: true,
            origin,
        }
    }

    /// Checks the registration: id, URIs (absolute http(s), no fragment, no userinfo) and scopes.
    pub fn validate(&self) -> Result<(), ClientError> {
        // Unreserved characters only: the id then reads the same whether or not a client
        // form-encodes it for HTTP Basic (trap 2), and never contains `:`.
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !id_ok {
            return Err(ClientError::BadId(self.id.clone()));
        }
        if self.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri);
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
            .chain(&self.backchannel_logout_uri)
        {
            check_uri(uri)?;
        }
        if let Some(bad) = self.scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(ClientError::BadScope(bad.clone()));
        }
        Ok(())
    }

    /// Whether `uri` is one of the registered redirect URIs (exact string equality, rule 1).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether `uri` is one of the registered post-logout redirect URIs.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }
}

/// A registered URI must be absolute http(s), without fragment or userinfo.
fn check_uri(uri: &str) -> Result<(), ClientError> {
    let bad = |reason| ClientError::BadUri {
        uri: uri.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(uri).map_err(|_| bad("is not an absolute URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(bad("must be an http or https URL"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// A scope token (RFC 6749 §3.3): printable ASCII except space, `"` and `\`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// All registered clients: config-file clients first, then database clients; a database client
/// whose id is taken by the config file is ignored (the file wins), as for services.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistry {
    clients: Vec<OidcClient>,
}

impl ClientRegistry {
    /// Builds the registry from config-file clients and database clients.
    pub fn new(from_file: Vec<OidcClient>, mut from_database: Vec<OidcClient>) -> Self {
        from_database.sort_by(|a, b| a.id.cmp(&b.id));
        let mut clients = from_file;
        for c in from_database {
            if !clients.iter().any(|f| f.id == c.id) {
                clients.push(c);
            }
        }
        Self { clients }
    }

    /// The enabled client with this id.
    pub fn get(&self, id: &str) -> Option<&OidcClient> {
        self.clients.iter().find(|c| c.enabled && c.id == id)
    }

    /// All clients, file first.
    pub fn clients(&self) -> &[OidcClient] {
        &self.clients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OidcClient {
        let mut c = OidcClient::new(
            "app",
            ClientSecret::hash("s3cret-s3cret-s3cret-s3cret-s3cret"),
            ServiceOrigin::Database,
        );
        c.redirect_uris = vec!["https://app.example.org/login/callback".into()];
        c
    }

    #[test]
    fn secrets_verify_in_constant_time_and_only_when_equal() {
        let (secret, stored) = ClientSecret::generate(&mut rand::thread_rng());
        assert_eq!(secret.len(), 43);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(stored.verify(&secret));
        assert!(!stored.verify(&secret[1..]));
        assert!(!stored.verify(""));
        assert!(!ClientSecret::Public.verify(""));
        assert_eq!(format!("{stored:?}"), "Sha256(…)");
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let c = client();
        assert!(c.has_redirect_uri("https://app.example.org/login/callback"));
        for near in [
            "https://app.example.org/login/callback/",
            "https://app.example.org:443/login/callback",
            "https://APP.example.org/login/callback",
            "https://app.example.org/login/callback?x=1",
            "http://app.example.org/login/callback",
            "https://app.example.org/login/Callback",
        ] {
            assert!(!c.has_redirect_uri(near), "{near}");
        }
    }

    #[test]
    fn registrations_are_validated() {
        assert_eq!(client().validate(), Ok(()));
        let mut c = client();
        c.id = "a:b".into();
        assert!(matches!(c.validate(), Err(ClientError::BadId(_))));
        let mut c = client();
        c.redirect_uris.clear();
        assert_eq!(c.validate(), Err(ClientError::NoRedirectUri));
        for bad in [
            "javascript:alert(1)",
            "/relative",
            "https://app.example.org/cb#frag",
            "https://user:pw@app.example.org/cb",
        ] {
            let mut c = client();
            c.redirect_uris = vec![bad.into()];
            assert!(
                matches!(c.validate(), Err(ClientError::BadUri { .. })),
                "{bad}"
            );
        }
        let mut c = client();
        c.scopes.push("bad scope".into());
        assert!(matches!(c.validate(), Err(ClientError::BadScope(_))));
    }

    #[test]
    fn the_file_wins_over_the_database() {
        let mut file = client();
        file.origin = ServiceOrigin::ConfigFile;
        file.name = "From file".into();
        let mut other = client();
        other.id = "other".into();
        let registry = ClientRegistry::new(vec![file], vec![other, client()]);
        assert_eq!(
            registry.get("app").map(|c| c.name.as_str()),
            Some("From file")
        );
        assert!(registry.get("other").is_some());
        assert_eq!(registry.clients().len(), 2);
    }
}
