//! The `tessera` command line: `serve`, and the `user`, `service`, `client`, `keys`, `session` and
//! `config` admin commands.
//! Scripts depend on these names and on `serve`'s first line of output.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tessera_protocol::attributes::is_valid_attribute_name;
use tessera_protocol::oidc::{ClientRegistry, ClientSecret, OidcClient, SigningAlg};
use tessera_protocol::service::{
    AttributeRelease, LogoutType, MatchOutcome, ServiceOrigin, ServicePattern, ServiceRegistry,
    ServiceUrl,
};
use tessera_protocol::{Attributes, Timestamp};
use tessera_store::{SigningKeyRecord, Store, StoreError, UserRecord};

use crate::app::{open_store, AppState, Server, StartError};
use crate::audit::audit;
use crate::auth::local::PasswordHasher;
use crate::auth::{is_valid_username, AuthError, Password};
use crate::clock::{Clock, SystemClock};
use crate::config::{
    build_service, chosen_secret, redact_url, ClientSpec, ConfigError, Loaded, Settings,
};
use crate::oidc::ProviderError;
use crate::slo;
use crate::telemetry::LogFormat;
use tessera_protocol::session::SessionId;

/// Tessera single sign-on server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults apply.
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server. The first line printed is `tessera listening on http://ADDR`.
    Serve {
        /// Listen address, overriding `[server] listen` (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Also create a demo user (new random password, printed) and a demo service for
        /// http://localhost:* and http://127.0.0.1:*.
        #[arg(long)]
        demo: bool,
    },
    /// Manage users of the built-in user store.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage registered services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Manage OpenID Connect clients (relying parties).
    #[command(subcommand)]
    Client(ClientCommand),
    /// List and rotate the OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List and revoke SSO sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Copy a whole deployment (users, services, clients, sessions, tickets, tokens, signing keys,
    /// settings) into a new, empty database of either backend. Stop the servers first.
    Migrate {
        /// The database to copy, e.g. `sqlite://tessera-data/tessera.db`.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new, empty database, e.g. `postgres://tessera@db.example.org/tessera` (a
        /// PostgreSQL database must exist; its tables are created).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// `tessera session …`
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List live sessions.
    List {
        /// Only this user's sessions.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// End sessions now; every application they entered is told (single logout).
    Revoke {
        /// The session id (from `session list`).
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// All sessions of this user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

/// `tessera user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// An attribute, KEY=VALUE; repeat a key for several values.
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
    },
    /// Set a user's password.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set attributes: each KEY given replaces that attribute's values (repeat a key for several
    /// values; `KEY=` with nothing after it removes the attribute). Other attributes stay.
    Attr {
        /// Login name.
        name: String,
        /// KEY=VALUE pairs.
        #[arg(value_name = "KEY=VALUE", required = true)]
        attrs: Vec<String>,
    },
    /// List users and their attributes.
    List,
    /// Lift a login lock: forget a user's failed logins (and, with `--address`, an address's).
    Unlock {
        /// Login name.
        name: String,
        /// Also forget the failures counted against this source address.
        #[arg(long)]
        address: Option<std::net::IpAddr>,
    },
    /// Remove a user and end their sessions.
    Remove {
        /// Login name.
        name: String,
    },
    /// Import users from a CSV file (header line: username, password or password_hash, then one
    /// column per attribute, repeated for several values) or a JSON array of {"username",
    /// "password" | "password_hash", "attributes": {...}}. Hashes in a known format (argon2,
    /// bcrypt, crypt(3), Django, LDAP {SSHA}…) are kept, and replaced by Argon2id at the user's
    /// next login; passwords are hashed.
    Import {
        /// The file.
        file: PathBuf,
        /// csv or json (default: from the file name's extension).
        #[arg(long, value_parser = ["csv", "json"])]
        format: Option<String>,
        /// Replace the password and attributes of users that already exist (default: skip them).
        #[arg(long)]
        update: bool,
        /// Report what would be imported, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `tessera service …`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register a service.
    Add(Box<ServiceAdd>),
    /// List registered services, in the order they are matched.
    List,
    /// Remove a service registered in the database.
    Remove {
        /// Service name.
        name: String,
    },
    /// Tell which service, if any, a URL belongs to, and why.
    Match {
        /// The service URL, as a CAS client would send it (decoded).
        url: String,
    },
    /// Import the services of another CAS server, reporting what could not be carried over.
    Import {
        /// apereo-json (a directory of Apereo CAS JSON service definitions) or django-cas-server
        /// (a `manage.py dumpdata cas_server` JSON file, or its database: sqlite://PATH,
        /// postgres://USER@HOST/DATABASE, mysql://USER@HOST/DATABASE).
        #[arg(long = "from", value_name = "FORMAT", value_parser = ["apereo-json", "django-cas-server"])]
        from: String,
        /// The directory, file or database URL (read only).
        #[arg(value_name = "DIR_FILE_OR_URL")]
        source: PathBuf,
        /// Report what would be imported, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print `[[service]]` tables for the config file instead of writing to the database (the
        /// file keeps the source's evaluation order; the database matches services by name).
        #[arg(long, conflicts_with = "dry_run")]
        toml: bool,
    },
}

/// `tessera service add`
#[derive(Debug, Args)]
pub struct ServiceAdd {
    /// Unique name.
    pub name: String,
    /// Regular expression that must match the whole service URL.
    #[arg(long, group = "match", required_unless_present_any = ["exact", "prefix"])]
    pub pattern: Option<String>,
    /// The one URL of the service.
    #[arg(long, group = "match")]
    pub exact: Option<String>,
    /// A URL prefix; the URL must continue with `/`, `?` or `#` (or the prefix end with `/`).
    #[arg(long, group = "match")]
    pub prefix: Option<String>,
    /// Release every attribute.
    #[arg(long, conflicts_with = "release")]
    pub release_all: bool,
    /// Release this attribute, optionally renamed (ATTR or ATTR=RENAMED); repeatable.
    #[arg(long, value_name = "ATTR[=RENAMED]")]
    pub release: Vec<String>,
    /// Send this attribute's first value as the user id instead of the login name.
    #[arg(long, value_name = "ATTR")]
    pub username_attr: Option<String>,
    /// Require an attribute value matching REGEX (whole value); repeatable, all must hold.
    #[arg(long, value_name = "ATTR=REGEX")]
    pub require: Vec<String>,
    /// Where single-logout requests go (default: the URL the service logged in with).
    #[arg(long, value_name = "URL")]
    pub logout_url: Option<String>,
    /// How the service hears of a logout: back (Tessera POSTs to it), front (the browser loads
    /// its logout URL), or none.
    #[arg(long, value_name = "TYPE", default_value = "back", value_parser = ["back", "front", "none"])]
    pub logout_type: String,
    /// Let the service obtain proxy-granting tickets through callback URLs (pgtUrl) matching REGEX.
    #[arg(long, value_name = "REGEX")]
    pub proxy_callback: Option<String>,
    /// Let the service accept proxy tickets (be a proxy's target).
    #[arg(long)]
    pub proxy_target: bool,
    /// Ask for the password at every login, even with an SSO session.
    #[arg(long)]
    pub no_sso: bool,
    /// Register it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Show its pages with the per-service theme NAME (the directory `themes/NAME/` of `[theme] dir`).
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// What the service is, shown under its name on the login page.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

/// `tessera client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. Without --secret-stdin or --public, a secret is generated and printed
    /// once.
    Add(Box<ClientAdd>),
    /// List the clients: the config file's, then the database's. Secrets are never shown.
    List,
    /// Remove a client registered in the database, with its grants (their tokens stop working)
    /// and consents.
    Remove {
        /// The client id.
        id: String,
    },
}

/// `tessera client add`
#[derive(Debug, Args)]
pub struct ClientAdd {
    /// The client_id: 1 to 128 printable ASCII characters, no spaces or `:`.
    pub id: String,
    /// Read the client secret (at least 32 characters) from the first line of standard input
    /// instead of generating one.
    #[arg(long, conflicts_with = "public")]
    pub secret_stdin: bool,
    /// A public client (native or browser app): no secret; PKCE is required.
    #[arg(long)]
    pub public: bool,
    /// A redirect URI, matched exactly (absolute http or https, no fragment); repeatable.
    #[arg(long = "redirect-uri", value_name = "URI", required = true)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to, matched exactly; repeatable.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A scope it may be granted; repeatable (default: openid profile email).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Where back-channel logout tokens are POSTed.
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// ID token signing algorithm (default RS256).
    #[arg(long, value_name = "ALG", value_parser = ["RS256", "ES256"])]
    pub signing_alg: Option<String>,
    /// Ask users for consent (once, remembered) before it receives their identity.
    #[arg(long)]
    pub consent: bool,
    /// Name shown to users (default: the id).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Release every attribute as a claim.
    #[arg(long, conflicts_with = "release")]
    pub release_all: bool,
    /// Release this attribute as a claim, optionally renamed (ATTR or ATTR=CLAIM); repeatable.
    #[arg(long, value_name = "ATTR[=CLAIM]")]
    pub release: Vec<String>,
}

/// `tessera keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: key id, algorithm, state, creation time.
    List,
    /// Generate new signing keys. Each is published at once and signs after the delay; the key it
    /// replaces then retires but stays published while tokens it signed live.
    Rotate {
        /// Only this algorithm (default: both).
        #[arg(long, value_name = "ALG", value_parser = ["RS256", "ES256"])]
        alg: Option<String>,
        /// How long to publish the new keys before they sign, e.g. `1h`, `30min`, `0s`
        /// (default: `[oidc] key_prepublish`).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        activate_in: Option<Duration>,
    },
}

/// `tessera config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration file and the registered services; exit non-zero on a problem.
    Check,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A signing key could not be made or read.
    #[error("signing keys: {0}")]
    Keys(#[from] ProviderError),
    /// Reading or writing the terminal failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The command's arguments or target are wrong.
    #[error("{0}")]
    Invalid(String),
    /// A lookup found nothing (exit status 1, no error message beyond the output).
    #[error("{0}")]
    NotFound(String),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Invalid(_) => 2,
            _ => 1,
        }
    }
}

fn load(cli_config: Option<&std::path::Path>) -> Result<Loaded, ConfigError> {
    Settings::load(cli_config, std::env::vars())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let loaded = load(cli.config.as_deref())?;
    let admin = admin_action(&cli.command);
    let result = dispatch(cli, loaded).await;
    if let (Some((action, subject)), Ok(())) = (admin, &result) {
        audit!("admin", action, subject = %subject);
    }
    result
}

/// The audit description of a command that changes something: what it did, and to whom.
fn admin_action(command: &Command) -> Option<(&'static str, String)> {
    Some(match command {
        Command::User(cmd) => match cmd {
            UserCommand::Add { name, .. } => ("user add", name.clone()),
            UserCommand::Passwd { name, .. } => ("user passwd", name.clone()),
            UserCommand::Attr { name, .. } => ("user attr", name.clone()),
            UserCommand::Unlock { name, .. } => ("user unlock", name.clone()),
            UserCommand::Remove { name } => ("user remove", name.clone()),
            UserCommand::Import { dry_run: true, .. } | UserCommand::List => return None,
            UserCommand::Import { file, .. } => ("user import", file.display().to_string()),
        },
        Command::Service(cmd) => match cmd {
            ServiceCommand::Add(add) => ("service add", add.name.clone()),
            ServiceCommand::Remove { name } => ("service remove", name.clone()),
            ServiceCommand::Import {
                source,
                dry_run: false,
                toml: false,
                ..
            } => ("service import", redact_url(&source.to_string_lossy())),
            _ => return None,
        },
        Command::Client(cmd) => match cmd {
            ClientCommand::Add(add) => ("client add", add.id.clone()),
            ClientCommand::Remove { id } => ("client remove", id.clone()),
            ClientCommand::List => return None,
        },
        Command::Keys(KeysCommand::Rotate { alg, .. }) => (
            "keys rotate",
            alg.clone().unwrap_or_else(|| "all algorithms".into()),
        ),
        Command::Session(SessionCommand::Revoke { id, user }) => (
            "session revoke",
            id.clone().or_else(|| user.clone()).unwrap_or_default(),
        ),
        Command::Migrate { to, .. } => ("migrate", redact_url(to)),
        _ => return None,
    })
}

async fn dispatch(cli: Cli, loaded: Loaded) -> Result<(), CliError> {
    match cli.command {
        Command::Serve { listen, demo } => serve(loaded, listen, demo).await,
        Command::User(cmd) => user(&loaded, cmd).await,
        Command::Service(cmd) => service(&loaded, cmd).await,
        Command::Client(cmd) => client(&loaded, cmd).await,
        Command::Keys(cmd) => keys(&loaded, cmd).await,
        Command::Session(cmd) => session(loaded, cmd).await,
        Command::Config(ConfigCommand::Check) => config_check(&loaded, cli.config.as_deref()).await,
        Command::Migrate { from, to } => migrate(&from, &to).await,
    }
}

async fn serve(mut loaded: Loaded, listen: Option<SocketAddr>, demo: bool) -> Result<(), CliError> {
    if let Some(listen) = listen {
        loaded.settings.server.listen = listen;
    }
    let server = Server::bind(loaded, Arc::new(SystemClock)).await?;
    let addr = server.local_addr()?;
    let shutdown = shutdown_signal()?;
    if let Some(tls) = server.state().tls.clone() {
        reload_on_sighup(tls)?;
    }
    let scheme = if server.state().tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("tessera listening on {scheme}://{addr}");
    if let Some(operations) = server.operations_addr() {
        println!("metrics listening on http://{operations}/metrics");
    }
    if demo {
        set_up_demo(server.state()).await?;
    }
    tracing::info!(%addr, base = %server.state().public_base(), "tessera started");
    server.run(shutdown).await?;
    tracing::info!("tessera stopped");
    Ok(())
}

/// The demo service: any http URL on localhost or 127.0.0.1, any port.
pub const DEMO_SERVICE_PATTERN: &str = r"http://(localhost|127\.0\.0\.1)(:[0-9]+)?([/?#].*)?";

async fn set_up_demo(app: &AppState) -> Result<(), CliError> {
    let password = tessera_protocol::ticket::random_base62(&mut rand::rngs::OsRng, 16);
    let hash = app.hasher.hash(&Password::new(password.clone())).await?;
    if !app.store.put_password_hash("demo", &hash).await? {
        let mut attributes = Attributes::new();
        attributes.insert("mail".into(), vec!["demo@example.org".into()]);
        attributes.insert("displayName".into(), vec!["Demo User".into()]);
        attributes.insert(
            "eduPersonAffiliation".into(),
            vec!["member".into(), "staff".into()],
        );
        let user = UserRecord {
            username: "demo".into(),
            password_hash: hash,
            attributes,
        };
        app.store.put_user(&user, app.clock.now()).await?;
    }
    let registry = app.registry().await?;
    if registry.by_name("demo").is_none() {
        let service = build_service(
            "demo",
            Some(DEMO_SERVICE_PATTERN),
            None,
            None,
            true,
            &[],
            None,
            &[],
            ServiceOrigin::Database,
        )
        .map_err(CliError::Invalid)?;
        app.store.put_service(&service).await?;
    }
    println!("demo user: demo");
    println!("demo password: {password}");
    println!("demo service: http://localhost:* and http://127.0.0.1:* (all attributes released)");
    println!("log in at: {}/login", app.public_base());
    Ok(())
}

/// Reloads the TLS certificate and key on every SIGHUP; a bad file keeps the current ones.
fn reload_on_sighup(tls: Arc<crate::tls::Tls>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate and key reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; the previous certificate stays")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
    Ok(())
}

/// Listens for SIGINT and SIGTERM from now on (so a signal sent as soon as the server says it is
/// listening already stops it cleanly), and resolves when one arrives.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn read_password(from_stdin: bool) -> Result<Password, CliError> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            return Err(CliError::Invalid("the passwords differ".into()));
        }
        first
    } else {
        return Err(CliError::Invalid(
            "standard input is not a terminal; pass --password-stdin to read the password from it"
                .into(),
        ));
    };
    if password.is_empty() {
        return Err(CliError::Invalid("the password is empty".into()));
    }
    Ok(Password::new(password))
}

/// Reads `KEY=VALUE` pairs into attributes; values of a repeated key accumulate.
fn parse_attributes(pairs: &[String]) -> Result<Attributes, CliError> {
    let mut attributes = Attributes::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Invalid(format!("`{pair}` is not KEY=VALUE")))?;
        if !is_valid_attribute_name(key) {
            return Err(CliError::Invalid(format!(
                "`{key}` is not a valid attribute name (letters, digits, - _ . ; not starting with a digit)"
            )));
        }
        let values = attributes.entry(key.to_owned()).or_default();
        if !value.is_empty() {
            values.push(value.to_owned());
        }
    }
    Ok(attributes)
}

async fn store_of(loaded: &Loaded) -> Result<Arc<dyn Store>, CliError> {
    Ok(open_store(&loaded.settings.database.url).await?)
}

async fn user(loaded: &Loaded, cmd: UserCommand) -> Result<(), CliError> {
    let store = store_of(loaded).await?;
    let hasher = PasswordHasher::new(&loaded.settings.password)?;
    match cmd {
        UserCommand::Add {
            name,
            password_stdin,
            attrs,
        } => {
            if !is_valid_username(&name) {
                return Err(CliError::Invalid(format!("`{name}` is not a valid user name: 1 to 256 characters, no control characters or surrounding spaces")));
            }
            let mut attributes = parse_attributes(&attrs)?;
            attributes.retain(|_, v| !v.is_empty());
            if store.get_user(&name).await?.is_some() {
                return Err(CliError::Invalid(format!(
                    "user {name} already exists; use `tessera user passwd` or `tessera user attr`"
                )));
            }
            let password_hash = hasher.hash(&read_password(password_stdin)?).await?;
            let record = UserRecord {
                username: name.clone(),
                password_hash,
                attributes,
            };
            store.put_user(&record, SystemClock.now()).await?;
            println!("user {name} added");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            if store.get_user(&name).await?.is_none() {
                return Err(CliError::NotFound(format!("no user {name}")));
            }
            let hash = hasher.hash(&read_password(password_stdin)?).await?;
            store.put_password_hash(&name, &hash).await?;
            println!("password of {name} changed");
        }
        UserCommand::Attr { name, attrs } => {
            let changes = parse_attributes(&attrs)?;
            let Some(mut user) = store.get_user(&name).await? else {
                return Err(CliError::NotFound(format!("no user {name}")));
            };
            for (key, values) in changes {
                if values.is_empty() {
                    user.attributes.remove(&key);
                } else {
                    user.attributes.insert(key, values);
                }
            }
            store.put_user_attributes(&name, &user.attributes).await?;
            println!("{name}: {}", format_attributes(&user.attributes));
        }
        UserCommand::List => {
            for user in store.list_users().await? {
                println!("{}\t{}", user.username, format_attributes(&user.attributes));
            }
        }
        UserCommand::Unlock { name, address } => {
            let user_key = crate::auth::throttle::user_key(&name);
            let locked = store.get_login_failures(&user_key).await?.is_some();
            store.delete_login_failures(&user_key).await?;
            if let Some(ip) = address {
                store
                    .delete_login_failures(&crate::auth::throttle::address_key(ip))
                    .await?;
                println!("failed logins from {ip} forgotten");
            }

            if locked {
                println!("user {name} unlocked: its failed logins are forgotten");
            } else {
                println!("user {name} had no failed logins to forget");
            }
        }
        UserCommand::Remove { name } => {
            if !store.delete_user(&name, SystemClock.now()).await? {
                return Err(CliError::NotFound(format!("no user {name}")));
            }
            println!("user {name} removed");
        }
        UserCommand::Import {
            file,
            format,
            update,
            dry_run,
        } => {
            import_users(
                store.as_ref(),
                &hasher,
                &file,
                format.as_deref(),
                update,
                dry_run,
            )
            .await?
        }
    }
    Ok(())
}

/// `tessera user import`.
async fn import_users(
    store: &dyn Store,
    hasher: &PasswordHasher,
    file: &std::path::Path,
    format: Option<&str>,
    update: bool,
    dry_run: bool,
) -> Result<(), CliError> {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match format.or(extension.as_deref()) {
        Some("json") => true,
        Some("csv") => false,
        _ => {
            return Err(CliError::Invalid(format!(
                "{}: say --format csv or --format json",
                file.display()
            )))
        }
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", file.display())))?;
    let (rows, mut skipped) = crate::import::user_rows(&text, json)
        .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
    let (mut added, mut updated, mut kept_hashes) = (0, 0, 0);
    for row in rows {
        let exists = store.get_user(&row.username).await?.is_some();
        if exists && !update {
            skipped.push(crate::import::Skipped {
                origin: row.origin,
                reason: format!(
                    "{}: already exists (pass --update to replace its password and attributes)",
                    row.username
                ),
            });
            continue;
        }
        let password_hash = match &row.secret {
            crate::import::UserSecret::Hash(h) => {
                kept_hashes += 1;
                h.clone()
            }
            crate::import::UserSecret::Password(p) if dry_run => {
                let _ = p;
                String::new()
            }
            crate::import::UserSecret::Password(p) => {
                hasher.hash(&Password::new(p.clone())).await?
            }
        };
        if exists {
            updated += 1;
        } else {
            added += 1;
        }
        if dry_run {
            continue;
        }
        if exists {
            store
                .put_password_hash(&row.username, &password_hash)
                .await?;
            store
                .put_user_attributes(&row.username, &row.attributes)
                .await?;
        } else {
            let record = UserRecord {
                username: row.username,
                password_hash,
                attributes: row.attributes,
            };
            store.put_user(&record, SystemClock.now()).await?;
        }
    }
    let verb = if dry_run { "would import" } else { "imported" };
    println!(
        "{verb} {} users from {} ({added} new, {updated} updated; {kept_hashes} with their existing hash), {} skipped",
        added + updated,
        file.display(),
        skipped.len()
    );
    for s in &skipped {
        println!("  skipped {}: {}", s.origin, s.reason);
    }
    if kept_hashes > 0 {
        println!("note: users imported with a hash log in with their current password; a hash other than Argon2id is replaced by Argon2id at their first login");
    }
    Ok(())
}

/// `tessera service import`.
async fn import_services(
    loaded: &Loaded,
    store: &dyn Store,
    from: &str,
    source: &std::path::Path,
    dry_run: bool,
    toml: bool,
) -> Result<(), CliError> {
    let url = source
        .to_str()
        .filter(|s| crate::import::is_database_url(s));
    let shown = redact_url(&source.to_string_lossy());
    let report = match (from, url) {
        ("apereo-json", None) => crate::import::apereo_dir(source),
        ("apereo-json", Some(_)) => Err(format!(
            "{shown}: apereo-json reads a directory of JSON service definitions, not a database"
        )),
        (_, Some(url)) => crate::import::django_database(url)
            .await
            .map_err(|e| format!("{shown}: {e}")),
        (_, None) => crate::import::django_dump_file(source),
    }
    .map_err(CliError::Invalid)?;
    if toml {
        let services: Vec<_> = report.services.iter().map(|s| s.service.clone()).collect();
        print!("{}", crate::import::to_toml(&services));
        for s in &report.services {
            for note in &s.notes {
                eprintln!("{} ({}): {note}", s.service.name, s.origin);
            }
        }
        for s in &report.skipped {
            eprintln!("skipped {}: {}", s.origin, s.reason);
        }
        for note in &report.notes {
            eprintln!("note: {note}");
        }
        return Ok(());
    }
    let existing = store.list_services().await?;
    let (mut imported, mut skipped) = (Vec::new(), report.skipped.clone());
    for s in &report.services {
        let name = &s.service.name;
        if loaded.file_services.iter().any(|f| &f.name == name)
            || existing.iter().any(|e| &e.name == name)
        {
            skipped.push(crate::import::Skipped {
                origin: s.origin.clone(),
                reason: format!("a service named {name} is already registered; remove it first or rename it in the source"),
            });
            continue;
        }
        if !dry_run {
            store.put_service(&s.service).await?;
        }
        imported.push(s);
    }
    let verb = if dry_run { "would import" } else { "imported" };
    println!(
        "{verb} {} services from {shown} ({from}), {} skipped",
        imported.len(),
        skipped.len()
    );
    for s in &imported {
        let svc = &s.service;
        println!(
            "  {}\t{} {}\trelease={}{}\tfrom {}",
            svc.name,
            svc.pattern.kind(),
            svc.pattern.source(),
            format_release(&svc.release),
            if svc.enabled { "" } else { "\tDISABLED" },
            s.origin
        );
        for note in &s.notes {
            println!("    not carried over / changed: {note}");
        }
    }
    for s in &skipped {
        println!("  skipped {}: {}", s.origin, s.reason);
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    if imported.len() > 1 {
        println!("note: the database matches services by name, not in the source's order; where patterns overlap, use --toml and put the services in the config file in that order");
    }
    Ok(())
}

fn format_attributes(attributes: &Attributes) -> String {
    attributes
        .iter()
        .flat_map(|(k, values)| values.iter().map(move |v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn service(loaded: &Loaded, cmd: ServiceCommand) -> Result<(), CliError> {
    let store = store_of(loaded).await?;
    match cmd {
        ServiceCommand::Add(add) => {
            if loaded.file_services.iter().any(|s| s.name == add.name) {
                return Err(CliError::Invalid(format!(
                    "service {} is declared in the config file, which wins; choose another name",
                    add.name
                )));
            }
            let mut service = build_service(
                &add.name,
                add.pattern.as_deref(),
                add.exact.as_deref(),
                add.prefix.as_deref(),
                add.release_all,
                &add.release,
                add.username_attr,
                &add.require,
                ServiceOrigin::Database,
            )
            .map_err(|e| CliError::Invalid(format!("service {}: {e}", add.name)))?;
            service.sso = !add.no_sso;
            service.proxy_target = add.proxy_target;
            if let Some(pattern) = &add.proxy_callback {
                let pattern = ServicePattern::regex(pattern)
                    .map_err(|e| CliError::Invalid(format!("--proxy-callback: {e}")))?;
                service.proxy_callback = Some(pattern);
            }
            service.logout_type = LogoutType::parse(&add.logout_type)
                .map_err(|e| CliError::Invalid(e.to_string()))?;
            service.enabled = !add.disabled;
            if let Some(theme) = &add.theme {
                crate::config::check_service_theme(&loaded.settings.theme, theme)
                    .map_err(|e| CliError::Invalid(format!("--theme: {e}")))?;
            }
            if let Some(description) = &add.description {
                crate::config::check_service_description(description)
                    .map_err(|e| CliError::Invalid(format!("--description: {e}")))?;
            }
            service.theme = add.theme;
            service.description = add.description;
            if let Some(url) = add.logout_url {
                ServiceUrl::parse(&url)
                    .map_err(|e| CliError::Invalid(format!("--logout-url: {e}")))?;
                service.logout_url = Some(url);
            }
            match store.put_service(&service).await {
                Err(StoreError::Conflict(_)) => {
                    return Err(CliError::Invalid(format!(
                        "service {} already exists; remove it first",
                        add.name
                    )));
                }
                other => other?,
            }
            println!(
                "service {} added ({} {})",
                service.name,
                service.pattern.kind(),
                service.pattern.source()
            );
        }
        ServiceCommand::List => {
            let registry =
                ServiceRegistry::new(loaded.file_services.clone(), store.list_services().await?);
            for s in registry.services() {
                let release = format_release(&s.release);
                let origin = match s.origin {
                    ServiceOrigin::ConfigFile => "file",
                    ServiceOrigin::Database => "db",
                };
                let mut flags = Vec::new();
                match s.logout_type {
                    LogoutType::BackChannel => {}
                    LogoutType::FrontChannel => flags.push("front-channel-logout"),
                    LogoutType::None => flags.push("no-logout"),
                }
                if !s.enabled {
                    flags.push("disabled");
                }
                if !s.sso {
                    flags.push("no-sso");
                }
                let proxy = s
                    .proxy_callback
                    .as_ref()
                    .map(|p| format!("proxy-callback={}", p.source()));
                if let Some(p) = &proxy {
                    flags.push(p);
                }
                if s.proxy_target {
                    flags.push("proxy-target");
                }
                println!(
                    "{}\t{origin}\t{} {}\trelease={release}\t{}",
                    s.name,
                    s.pattern.kind(),
                    s.pattern.source(),
                    flags.join(",")
                );
            }
        }
        ServiceCommand::Remove { name } => {
            let in_file = loaded.file_services.iter().any(|s| s.name == name);
            if store.delete_service(&name).await? {
                println!("service {name} removed");
                if in_file {
                    println!("note: the config file's service {name} stays; remove it there");
                }
            } else if in_file {
                return Err(CliError::Invalid(format!(
                    "service {name} is declared in the config file; remove it there"
                )));
            } else {
                return Err(CliError::NotFound(format!("no service {name}")));
            }
        }
        ServiceCommand::Import {
            from,
            source,
            dry_run,
            toml,
        } => import_services(loaded, store.as_ref(), &from, &source, dry_run, toml).await?,
        ServiceCommand::Match { url } => {
            if let Err(e) = ServiceUrl::parse(&url) {
                return Err(CliError::NotFound(format!(
                    "{url}: refused before matching: {e}"
                )));
            }
            let from_db = store.list_services().await?;
            let shadowed: Vec<_> = from_db
                .iter()
                .filter(|d| loaded.file_services.iter().any(|f| f.name == d.name))
                .cloned()
                .collect();
            let registry = ServiceRegistry::new(loaded.file_services.clone(), from_db);
            let mut chosen = None;
            for (s, outcome) in registry.explain(&url, &shadowed) {
                let why = match outcome {
                    MatchOutcome::Chosen => {
                        chosen = Some(s.name.clone());
                        "matches: this service is used"
                    }
                    MatchOutcome::Shadowed => "matches, but an earlier service wins",
                    MatchOutcome::Disabled => "matches, but is disabled",
                    MatchOutcome::NoMatch => "does not match",
                    MatchOutcome::OverriddenByFile => {
                        "ignored: the config file declares a service of the same name"
                    }
                };
                println!(
                    "{}\t{} {}\t{why}",
                    s.name,
                    s.pattern.kind(),
                    s.pattern.source()
                );
            }
            match chosen {
                Some(name) => println!("{url} belongs to service {name}"),
                None => {
                    return Err(CliError::NotFound(format!(
                        "{url} matches no enabled service"
                    )))
                }
            }
        }
    }
    Ok(())
}

fn format_release(release: &AttributeRelease) -> String {
    match release {
        AttributeRelease::Nothing => "none".to_owned(),
        AttributeRelease::All => "all".to_owned(),
        AttributeRelease::Only(rules) => rules
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Reads a client secret from the first line of standard input and checks it.
fn read_client_secret() -> Result<ClientSecret, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    chosen_secret(line.trim_end_matches(['\n', '\r'])).map_err(CliError::Invalid)
}

async fn client(loaded: &Loaded, cmd: ClientCommand) -> Result<(), CliError> {
    let store = store_of(loaded).await?;
    match cmd {
        ClientCommand::Add(add) => {
            let add = *add;
            if loaded.file_clients.iter().any(|c| c.id == add.id) {
                return Err(CliError::Invalid(format!(
                    "client {} is declared in the config file, which wins; choose another id",
                    add.id
                )));
            }
            let (plain, secret) = if add.public {
                (None, None)
            } else if add.secret_stdin {
                (None, Some(read_client_secret()?))
            } else {
                let (plain, stored) = ClientSecret::generate(&mut rand::rngs::OsRng);
                (Some(plain), Some(stored))
            };
            let id = add.id.clone();
            let client = ClientSpec {
                id: add.id,
                name: add.name,
                secret,
                redirect_uris: add.redirect_uris,
                post_logout_redirect_uris: add.post_logout_redirect_uris,
                scopes: add
                    .scopes
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_owned)
                    .collect(),
                backchannel_logout_uri: add.backchannel_logout_uri,
                signing_alg: add.signing_alg,
                consent: add.consent,
                release_all: add.release_all,
                release: add.release,
            }
            .build(ServiceOrigin::Database)
            .map_err(|e| CliError::Invalid(format!("client {id}: {e}")))?;
            match store.put_client(&client).await {
                Err(StoreError::Conflict(_)) => {
                    return Err(CliError::Invalid(format!(
                        "client {id} already exists; remove it first"
                    )));
                }
                other => other?,
            }
            println!(
                "client {id} added ({}, {})",
                client_kind(&client),
                client.signing_alg
            );
            println!("client_id: {id}");
            if let Some(plain) = plain {
                println!("client_secret: {plain}");
                println!("note: the secret is shown only now and stored hashed; give it to the client now");
            }
        }
        ClientCommand::List => {
            let from_db = store.list_clients().await?;
            let shadowed: Vec<&OidcClient> = from_db
                .iter()
                .filter(|d| loaded.file_clients.iter().any(|f| f.id == d.id))
                .collect();
            let registry = ClientRegistry::new(loaded.file_clients.clone(), from_db.clone());
            let mut first = true;
            for c in registry.clients() {
                if !first {
                    println!();
                }
                first = false;
                let origin = match c.origin {
                    ServiceOrigin::ConfigFile => "config file",
                    ServiceOrigin::Database => "database",
                };
                print_client(c, origin);
            }
            for c in shadowed {
                if !first {
                    println!();
                }
                first = false;
                print_client(
                    c,
                    "database; ignored: the config file declares a client of the same id",
                );
            }
        }
        ClientCommand::Remove { id } => {
            let in_file = loaded.file_clients.iter().any(|c| c.id == id);
            if store.delete_client(&id).await? {
                println!("client {id} removed, with its grants (their tokens no longer work) and consents");
                if in_file {
                    println!("note: the config file's client {id} stays; remove it there");
                }
            } else if in_file {
                return Err(CliError::Invalid(format!(
                    "client {id} is declared in the config file; remove it there"
                )));
            } else {
                return Err(CliError::NotFound(format!("no client {id}")));
            }
        }
    }
    Ok(())
}

fn client_kind(c: &OidcClient) -> &'static str {
    if c.secret.is_public() {
        "public, PKCE required"
    } else {
        "confidential"
    }
}

/// One block of `client list`; never the secret or its hash.
fn print_client(c: &OidcClient, origin: &str) {
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(" ")
        }
    };
    println!("client {} ({origin})", c.id);
    println!("  name:                      {}", c.name);
    println!("  type:                      {}", client_kind(c));
    println!("  signing alg:               {}", c.signing_alg);
    println!(
        "  consent:                   {}",
        if c.consent { "asked" } else { "not asked" }
    );
    println!("  redirect URIs:             {}", list(&c.redirect_uris));
    println!(
        "  post-logout redirect URIs: {}",
        list(&c.post_logout_redirect_uris)
    );
    println!(
        "  back-channel logout URI:   {}",
        c.backchannel_logout_uri.as_deref().unwrap_or("none")
    );
    println!("  scopes:                    {}", list(&c.scopes));
    println!(
        "  release:                   {}",
        format_release(&c.release)
    );
    if !c.enabled {
        println!("  disabled");
    }
}

/// What a key does at `now`: signs, is published ahead of signing, is retired, or is published
/// but no longer chosen (a newer key of its algorithm signs).
fn key_state(k: &SigningKeyRecord, signer: Option<&str>, now: Timestamp) -> String {
    match k.retired_at {
        Some(retired) if retired <= now => {
            return format!("retired (since {})", retired.to_rfc3339_seconds())
        }
        _ => {}
    }
    if k.active_from > now {
        return format!(
            "published (signs from {})",
            k.active_from.to_rfc3339_seconds()
        );
    }
    if signer != Some(k.kid.as_str()) {
        return "published (a newer key signs)".to_owned();
    }
    match k.retired_at {
        Some(retired) => format!("active (until {})", retired.to_rfc3339_seconds()),
        None => "active".to_owned(),
    }
}

/// The key of `alg` that signs at `now`, as the server chooses it: the latest `active_from`.
fn signer_at(keys: &[SigningKeyRecord], alg: SigningAlg, now: Timestamp) -> Option<&str> {
    keys.iter()
        .filter(|k| k.alg == alg && k.active_from <= now && k.retired_at.is_none_or(|r| r > now))
        .max_by(|a, b| {
            a.active_from
                .cmp(&b.active_from)
                .then_with(|| a.kid.cmp(&b.kid))
        })
        .map(|k| k.kid.as_str())
}

async fn keys(loaded: &Loaded, cmd: KeysCommand) -> Result<(), CliError> {
    let store = store_of(loaded).await?;
    let now = SystemClock.now();
    match cmd {
        KeysCommand::List => {
            let keys = store.list_signing_keys().await?;
            if keys.is_empty() {
                println!("no signing keys yet: `tessera serve` makes them at its first start, or run `tessera keys rotate`");
                return Ok(());
            }
            let rows: Vec<[String; 4]> = keys
                .iter()
                .map(|k| {
                    let signer = signer_at(&keys, k.alg, now);
                    [
                        k.kid.clone(),
                        k.alg.to_string(),
                        key_state(k, signer, now),
                        k.created_at.to_rfc3339_seconds(),
                    ]
                })
                .collect();
            let header = ["KID", "ALG", "STATE", "CREATED"].map(str::to_owned);
            let mut widths = [0; 4];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                println!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2]
                );
            }
        }
        KeysCommand::Rotate { alg, activate_in } => {
            let algs: Vec<SigningAlg> = match alg {
                Some(name) => vec![SigningAlg::parse(&name).ok_or_else(|| {
                    CliError::Invalid(format!(
                        "signing alg `{name}` is not supported; use RS256 or ES256"
                    ))
                })?],
                None => SigningAlg::ALL.to_vec(),
            };
            let delay = activate_in.unwrap_or(loaded.settings.oidc.key_prepublish);
            let existing = store.list_signing_keys().await?;
            let mut replaced_now = false;
            for alg in algs {
                let current = signer_at(&existing, alg, now);
                // With nothing signing, waiting would only leave the algorithm without a key.
                let active_from = if current.is_some() {
                    now.plus(delay)
                } else {
                    now
                };
                let mut pending = false;
                for k in existing
                    .iter()
                    .filter(|k| k.alg == alg && k.active_from > now && k.retired_at.is_none())
                {
                    pending = true;
                    println!(
                        "note: {alg} key {} (to sign from {}) is superseded by the new one at {}",
                        k.kid,
                        k.active_from.to_rfc3339_seconds(),
                        active_from.to_rfc3339_seconds()
                    );
                }
                let kid = crate::oidc::add_key(store.as_ref(), alg, now, active_from).await?;
                let from = active_from.to_rfc3339_seconds();
                match current {
                    Some(old) if active_from > now => {
                        let meanwhile = if pending {
                            String::new()
                        } else {
                            format!("; key {old} signs until then")
                        };
                        println!(
                            "new {alg} key {kid}: published now, signs from {from} (in {}){meanwhile}",
                            humantime::format_duration(delay)
                        );
                    }
                    Some(old) => {
                        replaced_now = true;
                        println!("new {alg} key {kid}: signs from now ({from}); key {old} no longer signs");
                    }
                    None => println!(
                        "new {alg} key {kid}: signs from now ({from}); no {alg} key was signing"
                    ),
                }
            }
            println!("old keys stay published until the tokens they signed expire; running servers see the new keys within a few seconds");
            if replaced_now {
                println!("note: relying parties that cache the key set may reject new tokens until they fetch it again");
            }
        }
    }
    Ok(())
}

async fn session(loaded: Loaded, cmd: SessionCommand) -> Result<(), CliError> {
    let store = store_of(&loaded).await?;
    let listen = loaded.settings.server.listen;
    let policy = loaded.settings.session.policy();
    let app = AppState::new(loaded, store, Arc::new(SystemClock), listen)?;
    let now = app.clock.now();
    match cmd {
        SessionCommand::List { user } => {
            for s in app.store.list_sessions(user.as_deref()).await? {
                let state = if s.is_expired(&policy, now) {
                    "expired"
                } else {
                    "live"
                };
                println!(
                    "{}\t{}\tlogged in {}\tlast used {}\t{}{}",
                    s.id,
                    s.username,
                    s.authenticated_at.to_rfc3339_seconds(),
                    s.last_used_at.to_rfc3339_seconds(),
                    state,
                    if s.long_term { "\tremembered" } else { "" }
                );
            }
        }
        SessionCommand::Revoke { id, user } => {
            let ids: Vec<SessionId> = match (id, user) {
                (Some(id), _) => vec![SessionId::from_stored(id)],
                (None, Some(user)) => app
                    .store
                    .list_sessions(Some(&user))
                    .await?
                    .into_iter()
                    .map(|s| s.id)
                    .collect(),
                (None, None) => {
                    return Err(CliError::Invalid("give a session id or --user NAME".into()))
                }
            };
            let mut revoked = 0;
            for id in &ids {
                match crate::sso::revoke_session(&app, id).await? {
                    Some(ended) => {
                        revoked += 1;
                        println!(
                            "session {} of {} revoked ({} applications to notify)",
                            id,
                            ended.session.username,
                            ended.services.len()
                        );
                    }
                    None => println!("session {id}: no such session"),
                }
            }
            if revoked == 0 {
                return Err(CliError::NotFound("no session revoked".into()));
            }
            deliver_now(&app).await?;
        }
    }
    Ok(())
}

/// Sends the queued logout requests from this process (each within its timeout), so revocation
/// takes effect at once whether or not a server runs; failures stay queued for the server to retry.
async fn deliver_now(app: &AppState) -> Result<(), CliError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(app.settings.slo.max_parallel));
    let (mut delivered, mut pending) = (0, 0);
    loop {
        let tasks = slo::dispatch_due(app, &app.http, &permits).await?;
        if tasks.is_empty() {
            break;
        }
        for task in tasks {
            match task.await {
                Ok(slo::Outcome::Delivered) => delivered += 1,
                Ok(slo::Outcome::WillRetry) => pending += 1,
                Ok(_) | Err(_) => {}
            }
        }
        if pending > 0 {
            break;
        }
    }
    println!("single logout: {delivered} delivered, {pending} left for the server to retry");
    Ok(())
}

async fn config_check(loaded: &Loaded, file: Option<&std::path::Path>) -> Result<(), CliError> {
    crate::web::templates::Templates::new(loaded.settings.theme.dir.as_deref())
        .map_err(StartError::from)?;
    let store = store_of(loaded).await?;
    let from_db = store.list_services().await?;
    for d in &from_db {
        if loaded.file_services.iter().any(|f| f.name == d.name) {
            println!("note: database service {} is ignored: the config file declares a service of the same name", d.name);
        }
    }
    println!(
        "{}: ok ({} services in the file, {} in the database)",
        file.map_or_else(
            || "built-in defaults".to_owned(),
            |p| p.display().to_string()
        ),
        loaded.file_services.len(),
        from_db.len()
    );
    Ok(())
}

/// `tessera migrate`: copies every row of the database at `from` into the empty database at `to`
/// (created or migrated to the current schema by connecting), in one transaction on each side.
async fn migrate(from: &str, to: &str) -> Result<(), CliError> {
    for (flag, url) in [("--from", from), ("--to", to)] {
        if tessera_store::backend_name(url).is_none() {
            return Err(CliError::Invalid(format!(
                "{flag} {}: unsupported database; use {}",
                redact_url(url),
                tessera_store::SUPPORTED_URLS
            )));
        }
    }
    if from == to {
        return Err(CliError::Invalid(
            "--from and --to name the same database".into(),
        ));
    }
    // Opening a SQLite database creates it: a mistyped source would copy nothing.
    if let Some(path) = sqlite_path(from) {
        if !std::path::Path::new(path).is_file() {
            return Err(CliError::Invalid(format!(
                "--from {from}: there is no database file at {path}"
            )));
        }
    }
    let snapshot = open_store(from).await?.export_all().await?;
    if snapshot.is_empty() {
        return Err(CliError::Invalid(format!(
            "--from {}: the database holds nothing to copy",
            redact_url(from)
        )));
    }
    let written = open_store(to).await?.import_all(&snapshot).await?;
    println!(
        "copied {} rows from {} to {}:",
        written.total(),
        redact_url(from),
        redact_url(to)
    );
    let width = written
        .tables
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(0);
    for (table, rows) in &written.tables {
        println!("  {table:<width$}  {rows}");
    }
    println!(
        "next: set `[database] url` (or TESSERA_DATABASE__URL) to {} on every node, then start the servers",
        redact_url(to)
    );
    Ok(())
}

/// The file a `sqlite://PATH` URL names (`None` for other URLs and in-memory databases).
fn sqlite_path(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then_some(path)
}
