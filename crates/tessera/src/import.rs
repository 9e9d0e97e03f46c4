//! Taking over the service registry of another CAS server: Apereo CAS JSON service definitions
//! (one file per service), and django-cas-server's settings from a `dumpdata` JSON file or read
//! from its database.
//!
//! The conversion is pure: rows in, [`RegisteredService`]s and notes out; `tessera service import`
//! stores them. Reading django-cas-server's database only gathers the rows a dump would hold.
//! Whatever a definition says that Tessera cannot carry over is reported, never dropped silently.
//! A restriction that cannot be carried over (an access rule, a user list, an MFA policy) imports
//! the service **disabled**, so it is never more open than it was.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::{ConnectOptions as _, Connection as _, ValueRef as _};
use sqlx_mysql::MySqlConnectOptions;
use sqlx_postgres::PgConnectOptions;
use sqlx_sqlite::SqliteConnectOptions;
use tessera_protocol::attributes::is_valid_attribute_name;
use tessera_protocol::service::{
    AttributeRelease, AttributeRule, LogoutType, RegisteredService, Requirement, ServiceOrigin,
    ServicePattern, ServiceUrl,
};

use crate::auth::sql::SqlDriver;

/// A service read from the source.
#[derive(Debug, Clone)]
pub struct ImportedService {
    /// The service, ready to store.
    pub service: RegisteredService,
    /// Where it came from (a file name, a `ServicePattern` primary key).
    pub origin: String,
    /// Its position in the source's evaluation order.
    pub order: i64,
    /// What could not be carried over, or was carried over differently.
    pub notes: Vec<String>,
}

/// A definition that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it came from.
    pub origin: String,
    /// Why.
    pub reason: String,
}

/// What an import found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The services, in the source's evaluation order.
    pub services: Vec<ImportedService>,
    /// What was not imported.
    pub skipped: Vec<Skipped>,
    /// Notes about the whole import.
    pub notes: Vec<String>,
}

impl Report {
    /// Sorts by evaluation order and makes names unique (a later duplicate gets `-2`, `-3`…).
    fn finish(&mut self) {
        self.services.sort_by_key(|s| s.order);
        let mut seen: Vec<String> = Vec::new();
        for s in &mut self.services {
            let base = s.service.name.clone();
            let mut name = base.clone();
            let mut n = 2;
            while seen.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            if name != base {
                s.notes.push(format!(
                    "another service is named `{base}`: imported as `{name}`"
                ));
                s.service.name = name.clone();
            }
            seen.push(name);
        }
    }
}

// --- Apereo CAS ------------------------------------------------------------------------------

/// Reads every `*.json` file of `dir` (Apereo's JSON service registry), in name order.
pub fn apereo_dir(dir: &Path) -> Result<Report, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the directory {}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut report = Report::default();
    for path in files {
        let origin = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            report
                .notes
                .push(format!("{origin}: not a .json file, ignored"));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => match apereo_service(&origin, &text) {
                Ok(s) => report.services.push(s),
                Err(reason) => report.skipped.push(Skipped { origin, reason }),
            },
            Err(e) => report.skipped.push(Skipped {
                origin,
                reason: format!("cannot read it: {e}"),
            }),
        }
    }
    if report.services.is_empty() && report.skipped.is_empty() {
        return Err(format!(
            "{} holds no .json service definition",
            dir.display()
        ));
    }
    let proxying = report
        .services
        .iter()
        .any(|s| s.service.proxy_callback.is_some());
    if proxying {
        report.notes.push("Apereo lets every service accept proxy tickets; Tessera only those marked as proxy targets: for each service that receives proxy tickets, add it again with --proxy-target (or proxy_target = true)".into());
    }
    report.finish();
    Ok(report)
}

/// The class name without its package (`org.apereo.cas.services.RegexRegisteredService` →
/// `RegexRegisteredService`).
fn short_class(v: &Value) -> Option<&str> {
    let class = v.get("@class")?.as_str()?;
    Some(class.rsplit('.').next().unwrap_or(class))
}

/// A Java collection as Jackson writes it (`["java.util.ArrayList", [...]]`), or a plain array, or
/// one value.
fn java_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items)
            if items.len() == 2
                && items[0]
                    .as_str()
                    .is_some_and(|c| c.starts_with("java.util."))
                && items[1].is_array() =>
        {
            items[1].as_array().cloned().unwrap_or_default()
        }
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A Java map (`{"@class": "java.util.TreeMap", ...}`) without its class.
fn java_map(v: &Value) -> Map<String, Value> {
    let mut map = v.as_object().cloned().unwrap_or_default();
    map.remove("@class");
    map
}

/// Whether a value says nothing: null, false, 0, empty, `NONE`, or an object of such values.
fn is_trivial(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "NONE",
        Value::Array(_) => java_list(v).iter().all(is_trivial),
        Value::Object(m) => m.iter().all(|(k, v)| k == "@class" || is_trivial(v)),
        Value::Bool(true) => false,
    }
}

/// The JSON text without `//` and `/* */` comments (Apereo reads its files leniently).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// A service name Tessera accepts: trimmed, printable, at most 128 characters.
fn clean_name(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

const APEREO_KNOWN: [&str; 14] = [
    "@class",
    "serviceId",
    "name",
    "id",
    "evaluationOrder",
    "attributeReleasePolicy",
    "logoutUrl",
    "logoutType",
    "proxyPolicy",
    "accessStrategy",
    "usernameAttributeProvider",
    "multifactorPolicy",
    "matchingStrategy",
    "description",
];

/// One Apereo service definition; `Err` says why it was not imported.
pub fn apereo_service(origin: &str, text: &str) -> Result<ImportedService, String> {
    let json: Value =
        serde_json::from_str(&strip_comments(text)).map_err(|e| format!("not valid JSON: {e}"))?;
    if !json.is_object() {
        return Err("not a JSON object".into());
    }
    match short_class(&json) {
        Some("RegexRegisteredService" | "CasRegisteredService") => {}
        Some("OidcRegisteredService") => return Err(
            "an OpenID Connect client, not a CAS service: register it with `tessera client add`"
                .into(),
        ),
        Some(other) => {
            return Err(format!(
            "{other} is not a CAS service definition; Tessera serves CAS and OpenID Connect only"
        ))
        }
        None => return Err("no @class: not an Apereo service definition".into()),
    }
    let mut notes = Vec::new();
    let disable = |notes: &mut Vec<String>, why: String| {
        notes.push(format!("{why}; the service is imported DISABLED so it is not more open than before: review it, then register it again without --disabled"));
    };
    let id = json.get("id").and_then(Value::as_i64);
    let name = json
        .get("name")
        .and_then(Value::as_str)
        .map(clean_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("service-{}", id.unwrap_or_default()));
    let service_id = json
        .get("serviceId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("no serviceId")?;
    // Apereo compiles serviceId case-insensitively and matches it against the whole URL.
    let pattern = match json.get("matchingStrategy").and_then(short_class) {
        None | Some("FullRegexRegisteredServiceMatchingStrategy") => {
            ServicePattern::regex(&format!("(?i){service_id}"))
        }
        Some("PartialRegexRegisteredServiceMatchingStrategy") => {
            ServicePattern::regex(&format!("(?i)(?s:.*)(?:{service_id})(?s:.*)"))
        }
        Some("LiteralRegisteredServiceMatchingStrategy") => {
            let insensitive = json
                .pointer("/matchingStrategy/caseInsensitive")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if insensitive {
                ServicePattern::regex(&format!("(?i){}", regex::escape(service_id)))
            } else {
                Ok(ServicePattern::Exact(service_id.to_owned()))
            }
        }
        Some(other) => {
            return Err(format!(
                "matching strategy {other} cannot be carried over; add the service with `tessera service add`"
            ))
        }
    }
    .map_err(|e| {
        format!("serviceId `{service_id}` is not a regular expression Tessera can use ({e}); rewrite it and add the service with `tessera service add --pattern`")
    })?;
    let mut service = RegisteredService::new(name, pattern, ServiceOrigin::Database);
    if let Some(id) = id {
        notes.push(format!("Apereo id {id}"));
    }
    if let Some(description) = json.get("description").and_then(Value::as_str) {
        let description = description.trim();
        match crate::config::check_service_description(description) {
            Ok(()) if !description.is_empty() => service.description = Some(description.to_owned()),
            Ok(()) => {}
            Err(e) => notes.push(format!("description not carried over: {e}")),
        }
    }

    // Attribute release.
    if let Some(policy) = json.get("attributeReleasePolicy") {
        let class = short_class(policy).unwrap_or("(no @class)");
        service.release = match class {
            "ReturnAllAttributeReleasePolicy" => AttributeRelease::All,
            "DenyAllAttributeReleasePolicy" => AttributeRelease::Nothing,
            "ReturnAllowedAttributeReleasePolicy" => {
                let mut rules = Vec::new();
                for a in policy
                    .get("allowedAttributes")
                    .map(java_list)
                    .unwrap_or_default()
                {
                    match a.as_str().map(AttributeRule::parse) {
                        Some(Ok(rule)) => rules.push(rule),
                        _ => notes.push(format!(
                            "allowed attribute {a} is not a valid attribute name: not released"
                        )),
                    }
                }
                only(rules)
            }
            "ReturnMappedAttributeReleasePolicy" => {
                let mut rules = Vec::new();
                for (from, to) in policy
                    .get("allowedAttributes")
                    .map(java_map)
                    .unwrap_or_default()
                {
                    for target in java_list(&to) {
                        let Some(target) = target.as_str() else {
                            continue;
                        };
                        if target.starts_with("groovy")
                            || target.starts_with("file:")
                            || target.starts_with("classpath:")
                        {
                            notes.push(format!("attribute {from}: a script mapping cannot be carried over: not released"));
                            continue;
                        }
                        match AttributeRule::parse(&format!("{from}={target}")) {
                            Ok(rule) => rules.push(rule),
                            Err(e) => notes.push(format!(
                                "attribute mapping {from} → {target}: {e}: not released"
                            )),
                        }
                    }
                }
                only(rules)
            }
            other => {
                notes.push(format!(
                    "attribute release policy {other} cannot be carried over: no attributes are released"
                ));
                AttributeRelease::Nothing
            }
        };
        let extra: Vec<&String> = policy
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                let default = matches!(k.as_str(), "@class" | "allowedAttributes" | "order")
                    || (k.as_str() == "authorizedToReleaseAuthenticationAttributes"
                        && v.as_bool() == Some(true));
                !default && !is_trivial(v)
            })
            .map(|(k, _)| k)
            .collect();
        if !extra.is_empty() {
            notes.push(format!(
                "attribute release settings not carried over: {}",
                join(&extra)
            ));
        }
    }

    // The username sent to the service.
    if let Some(provider) = json.get("usernameAttributeProvider") {
        match short_class(provider) {
            Some("PrincipalAttributeRegisteredServiceUsernameProvider") => {
                service.username_attribute = provider
                    .get("usernameAttribute")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            Some("DefaultRegisteredServiceUsernameProvider") | None => {}
            Some(other) => notes.push(format!(
                "username provider {other} cannot be carried over: the login name is sent"
            )),
        }
        let extra: Vec<&String> = provider
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                !matches!(k.as_str(), "@class" | "usernameAttribute") && !is_trivial(v)
            })
            .map(|(k, _)| k)
            .collect();
        if !extra.is_empty() {
            notes.push(format!(
                "username settings not carried over: {}",
                join(&extra)
            ));
        }
    }

    // Logout.
    if let Some(url) = json.get("logoutUrl").and_then(Value::as_str) {
        match ServiceUrl::parse(url) {
            Ok(_) => service.logout_url = Some(url.to_owned()),
            Err(e) => notes.push(format!("logoutUrl `{url}` dropped: {e}")),
        }
    }
    service.logout_type = match json.get("logoutType").and_then(Value::as_str) {
        None | Some("BACK_CHANNEL") => LogoutType::BackChannel,
        Some("FRONT_CHANNEL") => LogoutType::FrontChannel,
        Some("NONE") => LogoutType::None,
        Some(other) => {
            notes.push(format!(
                "logoutType {other} is unknown: back-channel logout is used"
            ));
            LogoutType::BackChannel
        }
    };

    // Proxying.
    if let Some(policy) = json.get("proxyPolicy") {
        match short_class(policy) {
            Some("RegexMatchingRegisteredServiceProxyPolicy") => {
                match policy.get("pattern").and_then(Value::as_str) {
                    // Apereo finds the pattern anywhere in the callback URL, ignoring case.
                    Some(p) => match ServicePattern::regex(&format!("(?i)(?s:.*)(?:{p})(?s:.*)")) {
                        Ok(pattern) => service.proxy_callback = Some(pattern),
                        Err(e) => notes.push(format!(
                            "proxy callback pattern `{p}` cannot be used ({e}): the service may not proxy"
                        )),
                    },
                    None => notes.push("proxy policy without a pattern: the service may not proxy".into()),
                }
                let extra: Vec<&String> = policy
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| !matches!(k.as_str(), "@class" | "pattern") && !is_trivial(v))
                    .map(|(k, _)| k)
                    .collect();
                if !extra.is_empty() {
                    notes.push(format!("proxy settings not carried over: {}", join(&extra)));
                }
            }
            Some("RefuseRegisteredServiceProxyPolicy") | None => {}
            Some("AllowRegisteredServiceProxyPolicy") => {
                notes.push(
                    "proxy policy allows any callback: imported as any https callback URL".into(),
                );
                service.proxy_callback = ServicePattern::regex("https://.*").ok();
            }
            Some(other) => notes.push(format!(
                "proxy policy {other} cannot be carried over: the service may not proxy"
            )),
        }
    }

    // Access.
    if let Some(access) = json.get("accessStrategy") {
        let class = short_class(access).unwrap_or("DefaultRegisteredServiceAccessStrategy");
        if access.get("enabled").and_then(Value::as_bool) == Some(false) {
            service.enabled = false;
            notes.push("disabled in Apereo: imported disabled".into());
        }
        if access.get("ssoEnabled").and_then(Value::as_bool) == Some(false) {
            service.sso = false;
        }
        if class != "DefaultRegisteredServiceAccessStrategy" {
            service.enabled = false;
            disable(
                &mut notes,
                format!("access strategy {class} cannot be carried over"),
            );
        }
        let required = access
            .get("requiredAttributes")
            .map(java_map)
            .unwrap_or_default();
        let insensitive = access
            .get("caseInsensitive")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let require_all = access
            .get("requireAllAttributes")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if !required.is_empty() && !require_all && required.len() > 1 {
            service.enabled = false;
            disable(
                &mut notes,
                "requiredAttributes with requireAllAttributes = false (any one of several attributes) cannot be expressed".into(),
            );
        } else {
            for (attribute, values) in &required {
                let values: Vec<String> = java_list(values)
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| format!("(?:{v})"))
                    .collect();
                let flag = if insensitive { "(?i)" } else { "" };
                let spec = format!("{attribute}={flag}(?:{})", values.join("|"));
                match Requirement::parse(&spec) {
                    Ok(r) => service.requirements.push(r),
                    Err(e) => {
                        service.enabled = false;
                        disable(&mut notes, format!("required attribute {attribute}: {e}"));
                    }
                }
            }
        }
        let extra: Vec<&String> = access
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                !matches!(
                    k.as_str(),
                    "@class"
                        | "enabled"
                        | "ssoEnabled"
                        | "requiredAttributes"
                        | "requireAllAttributes"
                        | "caseInsensitive"
                        | "order"
                ) && !is_trivial(v)
            })
            .map(|(k, _)| k)
            .collect();
        if !extra.is_empty() && service.enabled {
            service.enabled = false;
            disable(
                &mut notes,
                format!("access settings {} cannot be carried over", join(&extra)),
            );
        } else if !extra.is_empty() {
            notes.push(format!(
                "access settings not carried over: {}",
                join(&extra)
            ));
        }
    }

    // Multifactor authentication.
    if let Some(mfa) = json.get("multifactorPolicy").filter(|m| !is_trivial(m)) {
        let providers: Vec<String> = mfa
            .get("multifactorAuthenticationProviders")
            .map(java_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        service.enabled = false;
        disable(
            &mut notes,
            format!(
                "a multifactor policy ({}) cannot be carried over: Tessera asks for a password only",
                if providers.is_empty() {
                    "settings".to_owned()
                } else {
                    providers.join(", ")
                }
            ),
        );
    }

    let extra: Vec<&String> = json
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !APEREO_KNOWN.contains(&k.as_str()) && !is_trivial(v))
        .map(|(k, _)| k)
        .collect();
    if !extra.is_empty() {
        notes.push(format!("not carried over: {}", join(&extra)));
    }
    Ok(ImportedService {
        service,
        origin: origin.to_owned(),
        order: json
            .get("evaluationOrder")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        notes,
    })
}

fn only(rules: Vec<AttributeRule>) -> AttributeRelease {
    if rules.is_empty() {
        AttributeRelease::Nothing
    } else {
        AttributeRelease::Only(rules)
    }
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// --- django-cas-server -----------------------------------------------------------------------

/// A django-cas-server model that holds service settings.
struct DjangoModel {
    /// Its name in a dump (`app_label.model`).
    model: &'static str,
    /// Its table, as django-cas-server's migrations create it.
    table: &'static str,
    /// The fields the conversion reads. A foreign key's column is the field's name + `_id`.
    fields: &'static [&'static str],
}

/// The field of every other model that points at its `ServicePattern`.
const PATTERN_KEY: &str = "service_pattern";

/// What django-cas-server knows of its services; other models (users, tickets…) are not read.
const DJANGO_MODELS: [DjangoModel; 5] = [
    DjangoModel {
        model: "cas_server.servicepattern",
        table: "cas_server_servicepattern",
        fields: &[
            "pos",
            "name",
            "pattern",
            "user_field",
            "restrict_users",
            "proxy",
            "proxy_callback",
            "single_log_out",
            "single_log_out_callback",
        ],
    },
    DjangoModel {
        model: "cas_server.replaceattributname",
        table: "cas_server_replaceattributname",
        fields: &["name", "replace", PATTERN_KEY],
    },
    DjangoModel {
        model: "cas_server.filterattributvalue",
        table: "cas_server_filterattributvalue",
        fields: &["attribut", "pattern", PATTERN_KEY],
    },
    DjangoModel {
        model: "cas_server.replaceattributvalue",
        table: "cas_server_replaceattributvalue",
        fields: &["attribut", "pattern", "replace", PATTERN_KEY],
    },
    DjangoModel {
        model: "cas_server.username",
        table: "cas_server_username",
        fields: &["value", PATTERN_KEY],
    },
];

/// A `manage.py dumpdata cas_server` file.
pub fn django_dump_file(path: &Path) -> Result<Report, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.starts_with(b"SQLite format 3\0") {
        return Err(format!(
            "{} is a SQLite database, not a dumpdata file: give it as sqlite://{}",
            path.display(),
            path.display()
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "{} is not a dumpdata JSON file (not UTF-8 text)",
            path.display()
        )
    })?;
    django_dumpdata(&text)
}

/// The rows of a `manage.py dumpdata cas_server` JSON file.
pub fn django_dumpdata(text: &str) -> Result<Report, String> {
    let rows: Vec<Value> =
        serde_json::from_str(text).map_err(|e| format!("not a dumpdata JSON array: {e}"))?;
    let mut tables = DjangoTables::default();
    let mut other = 0;
    for row in rows {
        let model = row
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let pk = row.get("pk").cloned().unwrap_or(Value::Null);
        let fields = row.get("fields").cloned().unwrap_or(Value::Null);
        match tables.rows_mut(&model) {
            Some(rows) => rows.push(DjangoRow { pk, fields }),
            None => other += 1,
        }
    }
    if tables.patterns.is_empty() {
        return Err("the dump holds no cas_server.ServicePattern row; dump them with `manage.py dumpdata cas_server`".into());
    }
    let mut report = django_services(&tables);
    if other > 0 {
        report.notes.push(format!(
            "{other} rows of other models (users, tickets, sessions…) ignored"
        ));
    }
    Ok(report)
}

/// How long reading django-cas-server's database may take, connecting included.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether an import source is a database URL (`sqlite:`, `postgres://`, `postgresql://`,
/// `mysql://`, `mariadb://`) rather than a file.
pub fn is_database_url(source: &str) -> bool {
    SqlDriver::of_url(source).is_some()
}

/// django-cas-server's services read from its database (`sqlite://PATH`, `postgres://…`,
/// `mysql://…`), converted as a dump of the same rows would be. Only SELECTs are sent, and a SQLite
/// file is opened read-only.
pub async fn django_database(url: &str) -> Result<Report, String> {
    let tables = tokio::time::timeout(DATABASE_TIMEOUT, read_django_database(url))
        .await
        .map_err(|_| {
            format!(
                "the database did not answer within {}",
                humantime::format_duration(DATABASE_TIMEOUT)
            )
        })??;
    if tables.patterns.is_empty() {
        return Err(
            "table cas_server_servicepattern is empty: there is no service pattern to import"
                .into(),
        );
    }
    Ok(django_services(&tables))
}

async fn read_django_database(url: &str) -> Result<DjangoTables, String> {
    let mut db = Database::open(url).await?;
    let tables = read_django_tables(&mut db).await;
    db.close().await;
    tables
}

async fn read_django_tables(db: &mut Database) -> Result<DjangoTables, String> {
    let present = db
        .tables()
        .await
        .map_err(|e| format!("cannot list the tables of the database: {e}"))?;
    if let Some(missing) = DJANGO_MODELS
        .iter()
        .find(|m| !present.iter().any(|t| t.eq_ignore_ascii_case(m.table)))
    {
        let hint = if present.is_empty() {
            " (the database has no table at all: is the database named in the URL the right one?)"
        } else {
            ""
        };
        return Err(format!(
            "this does not look like a django-cas-server database: table {} is missing{hint}",
            missing.table
        ));
    }
    let mut tables = DjangoTables::default();
    for model in &DJANGO_MODELS {
        let columns: Vec<String> = std::iter::once("id".to_owned())
            .chain(model.fields.iter().map(|&f| {
                if f == PATTERN_KEY {
                    format!("{f}_id")
                } else {
                    f.to_owned()
                }
            }))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            columns
                .iter()
                .map(|c| db.quote(c))
                .collect::<Vec<_>>()
                .join(", "),
            db.quote(model.table),
            db.quote("id")
        );
        let rows = db
            .rows(&sql, &columns)
            .await
            .map_err(|e| format!("cannot read table {}: {e}", model.table))?;
        let Some(slot) = tables.rows_mut(model.model) else {
            continue;
        };
        for mut row in rows {
            let pk = row.remove("id").unwrap_or(Value::Null);
            if let Some(key) = row.remove(&format!("{PATTERN_KEY}_id")) {
                row.insert(PATTERN_KEY.to_owned(), key);
            }
            slot.push(DjangoRow {
                pk,
                fields: Value::Object(row),
            });
        }
    }
    Ok(tables)
}

/// A connection to django-cas-server's database.
enum Database {
    Sqlite(sqlx_sqlite::SqliteConnection),
    Postgres(sqlx_postgres::PgConnection),
    MySql(sqlx_mysql::MySqlConnection),
}

impl Database {
    async fn open(url: &str) -> Result<Self, String> {
        let unusable = |e: sqlx::Error| format!("not a usable database URL: {e}");
        let unreachable = |e: sqlx::Error| format!("cannot connect to the database: {e}");
        Ok(match SqlDriver::of_url(url) {
            Some(SqlDriver::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(unusable)?
                    .read_only(true)
                    .create_if_missing(false);
                let connection = options.connect().await.map_err(|e| {
                    format!(
                        "cannot open the SQLite database {}: {e}",
                        options.get_filename().display()
                    )
                })?;
                Self::Sqlite(connection)
            }
            Some(SqlDriver::Postgres) => Self::Postgres(
                PgConnectOptions::from_str(url)
                    .map_err(unusable)?
                    .connect()
                    .await
                    .map_err(unreachable)?,
            ),
            Some(SqlDriver::MySql) => Self::MySql(
                MySqlConnectOptions::from_str(url)
                    .map_err(unusable)?
                    .connect()
                    .await
                    .map_err(unreachable)?,
            ),
            None => return Err("not a database URL: give sqlite://PATH, postgres://USER@HOST/DATABASE or mysql://USER@HOST/DATABASE".into()),
        })
    }

    /// An identifier quoted for this database (MySQL does not take `"` unless in ANSI mode).
    fn quote(&self, name: &str) -> String {
        match self {
            Self::MySql(_) => format!("`{name}`"),
            Self::Sqlite(_) | Self::Postgres(_) => format!("\"{name}\""),
        }
    }

    /// The names of the tables (and views) a query without a schema name can reach.
    async fn tables(&mut self) -> Result<Vec<String>, sqlx::Error> {
        let sql = match self {
            Self::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')",
            Self::Postgres(_) => {
                "SELECT c.relname::text AS name FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND pg_catalog.pg_table_is_visible(c.oid)"
            }
            Self::MySql(_) => {
                "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
                 WHERE table_schema = DATABASE()"
            }
        };
        let rows = self.rows(sql, &["name".to_owned()]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut row| match row.remove("name") {
                Some(Value::String(name)) => Some(name),
                _ => None,
            })
            .collect())
    }

    /// The rows of a SELECT, each as `column → value`.
    async fn rows(
        &mut self,
        sql: &str,
        columns: &[String],
    ) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => row_maps(&sqlx::query(sql).fetch_all(c).await?, columns),
            Self::Postgres(c) => row_maps(&sqlx::query(sql).fetch_all(c).await?, columns),
            Self::MySql(c) => row_maps(&sqlx::query(sql).fetch_all(c).await?, columns),
        }
    }

    async fn close(self) {
        // The rows are read: a failed goodbye changes nothing.
        let _ = match self {
            Self::Sqlite(c) => c.close().await,
            Self::Postgres(c) => c.close().await,
            Self::MySql(c) => c.close().await,
        };
    }
}

fn row_maps<R>(rows: &[R], columns: &[String]) -> Result<Vec<Map<String, Value>>, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i16: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| Ok((c.clone(), cell(row, c)?)))
                .collect()
        })
        .collect()
}

/// A column's value as JSON, as `dumpdata` would write it: text, an integer or a boolean, whatever
/// type this database gives the column (SQLite and MySQL store booleans as integers, PostgreSQL's
/// integer columns are 32 bits).
fn cell<R>(row: &R, column: &str) -> Result<Value, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i16: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    if row.try_get_raw(column)?.is_null() {
        return Ok(Value::Null);
    }
    if let Ok(text) = row.try_get::<String, _>(column) {
        return Ok(Value::String(text));
    }
    if let Ok(n) = row.try_get::<i64, _>(column) {
        return Ok(n.into());
    }
    if let Ok(n) = row.try_get::<i32, _>(column) {
        return Ok(n.into());
    }
    if let Ok(n) = row.try_get::<i16, _>(column) {
        return Ok(n.into());
    }
    if let Ok(b) = row.try_get::<bool, _>(column) {
        return Ok(b.into());
    }
    Err(sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: "neither text, an integer nor a boolean".into(),
    })
}

/// One row of a django-cas-server table: its primary key and fields, read from a dump or from the
/// database.
#[derive(Debug, Clone)]
struct DjangoRow {
    pk: Value,
    fields: Value,
}

impl DjangoRow {
    fn text(&self, field: &str) -> &str {
        self.fields.get(field).and_then(Value::as_str).unwrap_or("")
    }

    fn flag(&self, field: &str) -> bool {
        self.fields
            .get(field)
            .and_then(|v| v.as_bool().or_else(|| v.as_i64().map(|n| n != 0)))
            .unwrap_or(false)
    }

    /// Whether this row belongs to the service pattern `pk`.
    fn of(&self, pk: &Value) -> bool {
        self.fields
            .get(PATTERN_KEY)
            .is_some_and(|v| same_key(v, pk))
    }
}

fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_i64() == y.as_i64(),
        _ => a.to_string().trim_matches('"') == b.to_string().trim_matches('"'),
    }
}

/// The rows the conversion reads, by model; a dump and a database both fill it.
#[derive(Debug, Default)]
struct DjangoTables {
    patterns: Vec<DjangoRow>,
    renames: Vec<DjangoRow>,
    filters: Vec<DjangoRow>,
    value_rewrites: Vec<DjangoRow>,
    usernames: Vec<DjangoRow>,
}

impl DjangoTables {
    /// Where the rows of `model` (`cas_server.servicepattern`…) go; `None` for a model the
    /// conversion does not read.
    fn rows_mut(&mut self, model: &str) -> Option<&mut Vec<DjangoRow>> {
        Some(match model {
            "cas_server.servicepattern" => &mut self.patterns,
            "cas_server.replaceattributname" => &mut self.renames,
            "cas_server.filterattributvalue" => &mut self.filters,
            "cas_server.replaceattributvalue" => &mut self.value_rewrites,
            "cas_server.username" => &mut self.usernames,
            _ => return None,
        })
    }
}

/// django-cas-server matches its patterns with Python's `re.match`: from the start of the URL,
/// not necessarily to its end.
fn django_regex(pattern: &str) -> String {
    format!("(?:{pattern}).*")
}

fn django_services(t: &DjangoTables) -> Report {
    let mut report = Report::default();
    let mut patterns = t.patterns.clone();
    patterns.sort_by_key(|p| {
        (
            p.fields.get("pos").and_then(Value::as_i64).unwrap_or(100),
            p.pk.as_i64().unwrap_or(0),
        )
    });
    // A callback URL is allowed when it matches a pattern marked proxy_callback, whichever service
    // asks: the union of those patterns is every service's proxy callback pattern.
    let callbacks: Vec<String> = patterns
        .iter()
        .filter(|p| p.flag("proxy_callback"))
        .map(|p| format!("(?:{})", django_regex(p.text("pattern"))))
        .collect();
    let callback_pattern = if callbacks.is_empty() {
        None
    } else {
        match ServicePattern::regex(&callbacks.join("|")) {
            Ok(p) => Some(p),
            Err(e) => {
                report.notes.push(format!("the proxy_callback patterns cannot be combined ({e}): no service may obtain proxy-granting tickets"));
                None
            }
        }
    };
    if callback_pattern.is_some() {
        report.notes.push(format!(
            "{} pattern(s) marked proxy_callback: as in django-cas-server, every imported service may obtain proxy-granting tickets through callback URLs matching them",
            callbacks.len()
        ));
    }
    for p in &patterns {
        let origin = format!("ServicePattern {}", p.pk);
        let raw = p.text("pattern");
        if raw.is_empty() {
            report.skipped.push(Skipped {
                origin,
                reason: "no pattern".into(),
            });
            continue;
        }
        let pattern = match ServicePattern::regex(&django_regex(raw)) {
            Ok(pattern) => pattern,
            Err(e) => {
                report.skipped.push(Skipped {
                    origin,
                    reason: format!("pattern `{raw}` is not a regular expression Tessera can use ({e}); rewrite it and add the service with `tessera service add --pattern`"),
                });
                continue;
            }
        };
        let name = Some(clean_name(p.text("name")))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("service-{}", p.pk.to_string().trim_matches('"')));
        let mut service = RegisteredService::new(name, pattern, ServiceOrigin::Database);
        let mut notes = Vec::new();
        let disable = |service: &mut RegisteredService, notes: &mut Vec<String>, why: String| {
            service.enabled = false;
            notes.push(format!("{why}; the service is imported DISABLED so it is not more open than before: review it, then register it again without --disabled"));
        };

        let user_field = p.text("user_field");
        if !user_field.is_empty() {
            service.username_attribute = Some(user_field.to_owned());
            notes.push(format!("user_field {user_field}: django-cas-server refused users without that attribute; Tessera sends the login name instead"));
        }
        service.proxy_target = p.flag("proxy");
        service.proxy_callback = callback_pattern.clone();
        service.logout_type = if p.flag("single_log_out") {
            LogoutType::BackChannel
        } else {
            LogoutType::None
        };
        let callback = p.text("single_log_out_callback");
        if !callback.is_empty() {
            match ServiceUrl::parse(callback) {
                Ok(_) => service.logout_url = Some(callback.to_owned()),
                Err(e) => notes.push(format!("single_log_out_callback `{callback}` dropped: {e}")),
            }
        }
        if p.flag("restrict_users") {
            let users: Vec<&str> = t
                .usernames
                .iter()
                .filter(|u| u.of(&p.pk))
                .map(|u| u.text("value"))
                .collect();
            disable(
                &mut service,
                &mut notes,
                format!(
                    "restrict_users (allowed: {}) cannot be expressed as a list of login names; give those users an attribute and require it",
                    if users.is_empty() { "nobody".to_owned() } else { users.join(", ") }
                ),
            );
        }

        // Attributes: released only when listed; `*` means all.
        let renames: Vec<&DjangoRow> = t.renames.iter().filter(|r| r.of(&p.pk)).collect();
        let all = renames.iter().any(|r| r.text("name") == "*");
        let mut rules = Vec::new();
        for r in &renames {
            let (from, to) = (r.text("name"), r.text("replace"));
            if from == "*" {
                continue;
            }
            let to = if to.is_empty() { from } else { to };
            if all && from == to {
                continue;
            }
            match AttributeRule::parse(&format!("{from}={to}")) {
                Ok(rule) => rules.push(rule),
                Err(e) => notes.push(format!("attribute {from} → {to}: {e}: not released")),
            }
        }
        service.release = if all {
            if !rules.is_empty() {
                notes.push(format!(
                    "all attributes are released under their own names; the renames {} are not applied",
                    rules.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
            AttributeRelease::All
        } else {
            only(rules)
        };

        // Filters: one value of the attribute must match (re.match: a prefix match).
        for f in t.filters.iter().filter(|f| f.of(&p.pk)) {
            let (attribute, pattern) = (f.text("attribut"), f.text("pattern"));
            if !is_valid_attribute_name(attribute) {
                disable(
                    &mut service,
                    &mut notes,
                    format!("filter on `{attribute}`: not a valid attribute name"),
                );
                continue;
            }
            match Requirement::parse(&format!("{attribute}={}", django_regex(pattern))) {
                Ok(r) => service.requirements.push(r),
                Err(e) => disable(
                    &mut service,
                    &mut notes,
                    format!("filter {attribute} ~ `{pattern}` cannot be used ({e})"),
                ),
            }
        }
        for r in t.value_rewrites.iter().filter(|r| r.of(&p.pk)) {
            notes.push(format!(
                "attribute value rewriting ({}: s/{}/{}/) is not supported: values are released unchanged",
                r.text("attribut"),
                r.text("pattern"),
                r.text("replace")
            ));
        }
        let order = p.fields.get("pos").and_then(Value::as_i64).unwrap_or(100);
        report.services.push(ImportedService {
            service,
            origin,
            order,
            notes,
        });
    }
    report.finish();
    report
}

// --- Users -----------------------------------------------------------------------------------

/// The credential of an imported user.
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// A password in clear, to hash with Argon2id.
    Password(String),
    /// A hash in a format [`crate::auth::hashes`] recognises, stored as it is.
    Hash(String),
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Password(<redacted>)",
            Self::Hash(_) => "Hash(<redacted>)",
        })
    }
}

/// One user of an import file.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Where it is in the file (`line 3`, `entry 2`).
    pub origin: String,
    /// The login name.
    pub username: String,
    /// The password or its hash.
    pub secret: UserSecret,
    /// The attributes.
    pub attributes: tessera_protocol::Attributes,
}

/// The rows of a user import file: CSV with a header line (`username`, `password` or
/// `password_hash`, then one column per attribute; repeat a column for several values), or a JSON
/// array of `{"username", "password" | "password_hash", "attributes": {NAME: VALUE | [VALUES]}}`.
pub fn user_rows(text: &str, json: bool) -> Result<(Vec<UserRow>, Vec<Skipped>), String> {
    let raw = if json {
        json_users(text)?
    } else {
        csv_users(text)?
    };
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for r in raw {
        match r {
            Ok(row) if rows.iter().any(|u: &UserRow| u.username == row.username) => {
                skipped.push(Skipped {
                    origin: row.origin,
                    reason: format!("{}: listed twice; the first row is kept", row.username),
                })
            }
            Ok(row) => rows.push(row),
            Err(s) => skipped.push(s),
        }
    }
    Ok((rows, skipped))
}

type RawUser = Result<UserRow, Skipped>;

fn user_row(
    origin: String,
    username: &str,
    password: Option<&str>,
    hash: Option<&str>,
    attributes: tessera_protocol::Attributes,
) -> RawUser {
    let skip = |reason: String| Skipped {
        origin: origin.clone(),
        reason: if username.is_empty() {
            reason
        } else {
            format!("{username}: {reason}")
        },
    };
    if !crate::auth::is_valid_username(username) {
        return Err(skip("not a valid login name (1 to 256 characters, no control characters or surrounding spaces)".into()));
    }
    let secret = match (
        password.filter(|p| !p.is_empty()),
        hash.map(str::trim).filter(|h| !h.is_empty()),
    ) {
        (Some(p), None) => UserSecret::Password(p.to_owned()),
        (None, Some(h)) => {
            if crate::auth::hashes::detect(h).is_none() {
                return Err(skip(format!(
                    "password_hash is in no format Tessera recognises ({}); give the password instead",
                    "argon2, bcrypt, crypt(3) $1$/$5$/$6$, Django pbkdf2_sha256/pbkdf2_sha1/argon2/bcrypt, LDAP {SSHA}/{SHA}/{SSHA256}/{SSHA512}/{CRYPT}"
                )));
            }
            UserSecret::Hash(h.to_owned())
        }
        (Some(_), Some(_)) => return Err(skip("give password or password_hash, not both".into())),
        (None, None) => return Err(skip("no password or password_hash".into())),
    };
    if let Some(bad) = attributes.keys().find(|k| !is_valid_attribute_name(k)) {
        return Err(skip(format!(
            "`{bad}` is not a valid attribute name (letters, digits, - _ . ; not starting with a digit)"
        )));
    }
    Ok(UserRow {
        origin,
        username: username.to_owned(),
        secret,
        attributes,
    })
}

fn csv_users(text: &str) -> Result<Vec<RawUser>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if !header.iter().any(|h| h == "username") {
        return Err("the CSV header has no `username` column; the first line must name the columns, e.g. username,password_hash,mail".into());
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let origin = format!("line {}", i + 2);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(Skipped {
                    origin,
                    reason: format!("not valid CSV: {e}"),
                }));
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let (mut username, mut password, mut hash) = ("", None, None);
        let mut attributes = tessera_protocol::Attributes::new();
        for (column, value) in header.iter().zip(record.iter()) {
            match column.as_str() {
                "username" => username = value.trim(),
                "password" => password = Some(value),
                "password_hash" => hash = Some(value),
                _ if value.is_empty() => {}
                name => attributes
                    .entry(name.to_owned())
                    .or_default()
                    .push(value.to_owned()),
            }
        }
        out.push(user_row(origin, username, password, hash, attributes));
    }
    Ok(out)
}

fn json_users(text: &str) -> Result<Vec<RawUser>, String> {
    let entries: Vec<Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of users: {e}"))?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let origin = format!("entry {}", i + 1);
        let Some(object) = entry.as_object() else {
            out.push(Err(Skipped {
                origin,
                reason: "not a JSON object".into(),
            }));
            continue;
        };
        if let Some(unknown) = object.keys().find(|k| {
            !matches!(
                k.as_str(),
                "username" | "password" | "password_hash" | "attributes"
            )
        }) {
            out.push(Err(Skipped {
                origin,
                reason: format!(
                    "unknown key `{unknown}` (use username, password or password_hash, attributes)"
                ),
            }));
            continue;
        }
        let mut attributes = tessera_protocol::Attributes::new();
        let mut bad = None;
        for (name, value) in object
            .get("attributes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let values: Vec<String> = match value {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect(),
                Value::Null => Vec::new(),
                Value::Number(_) | Value::Bool(_) => vec![value.to_string()],
                Value::Object(_) => {
                    bad = Some(name.clone());
                    Vec::new()
                }
            };
            let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
            if !values.is_empty() {
                attributes.insert(name.clone(), values);
            }
        }
        if let Some(name) = bad {
            out.push(Err(Skipped {
                origin,
                reason: format!("attribute `{name}`: give a string or a list of strings"),
            }));
            continue;
        }
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        out.push(user_row(
            origin,
            text("username").unwrap_or("").trim(),
            text("password"),
            text("password_hash"),
            attributes,
        ));
    }
    Ok(out)
}

// --- Output ----------------------------------------------------------------------------------

/// `[[service]]` tables for the config file, in order (the file keeps the order; the database
/// matches its services by name).
pub fn to_toml(services: &[RegisteredService]) -> String {
    let mut out = String::new();
    for s in services {
        let mut t = toml::Table::new();
        t.insert("name".into(), s.name.clone().into());
        let key = match s.pattern {
            ServicePattern::Regex { .. } => "pattern",
            ServicePattern::Exact(_) => "exact",
            ServicePattern::Prefix(_) => "prefix",
        };
        t.insert(key.into(), s.pattern.source().to_owned().into());
        if !s.enabled {
            t.insert("enabled".into(), false.into());
        }
        match &s.release {
            AttributeRelease::Nothing => {}
            AttributeRelease::All => {
                t.insert("release_all".into(), true.into());
            }
            AttributeRelease::Only(rules) => {
                t.insert(
                    "release".into(),
                    rules
                        .iter()
                        .map(|r| toml::Value::from(r.to_string()))
                        .collect::<Vec<_>>()
                        .into(),
                );
            }
        }
        if let Some(d) = &s.description {
            t.insert("description".into(), d.clone().into());
        }
        if let Some(a) = &s.username_attribute {
            t.insert("username_attribute".into(), a.clone().into());
        }
        if !s.requirements.is_empty() {
            t.insert(
                "require".into(),
                s.requirements
                    .iter()
                    .map(|r| toml::Value::from(r.to_string()))
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        if !s.sso {
            t.insert("sso".into(), false.into());
        }
        if let Some(url) = &s.logout_url {
            t.insert("logout_url".into(), url.clone().into());
        }
        if s.logout_type != LogoutType::BackChannel {
            t.insert("logout_type".into(), s.logout_type.as_str().into());
        }
        if let Some(p) = &s.proxy_callback {
            t.insert("proxy_callback".into(), p.source().to_owned().into());
        }
        if s.proxy_target {
            t.insert("proxy_target".into(), true.into());
        }
        let mut doc = toml::Table::new();
        doc.insert("service".into(), vec![toml::Value::Table(t)].into());
        out.push_str(&toml::to_string(&doc).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_outside_strings() {
        let text = "{ // a comment\n \"a\": \"http://x/*y*/\", /* block */ \"b\": 1 }";
        let v: Value = serde_json::from_str(&strip_comments(text)).unwrap();
        assert_eq!(v["a"], "http://x/*y*/");
        assert_eq!(v["b"], 1);
    }

    #[test]
    fn java_collections_unwrap() {
        let v: Value = serde_json::json!(["java.util.ArrayList", ["a", "b"]]);
        assert_eq!(java_list(&v).len(), 2);
        let v: Value = serde_json::json!({"@class": "java.util.TreeMap", "cn": "name"});
        assert_eq!(java_map(&v).len(), 1);
        assert!(is_trivial(
            &serde_json::json!({"@class": "x", "a": false, "b": ["java.util.HashSet", []]})
        ));
    }

    #[test]
    fn database_urls_are_told_from_files() {
        for url in [
            "sqlite:///var/lib/cas/db.sqlite3",
            "sqlite://cas.sqlite3",
            "sqlite:cas.sqlite3",
            "postgres://cas@db.example.org/cas",
            "postgresql://cas:pw@db.example.org:5433/cas",
            "mysql://cas@db.example.org/cas",
            "mariadb://cas@db.example.org/cas",
        ] {
            assert!(is_database_url(url), "{url}");
        }
        for file in [
            "dump.json",
            "/srv/cas/dump.json",
            "./sqlite.json",
            "C:\\cas\\dump.json",
            "https://cas.example.org/dump.json",
        ] {
            assert!(!is_database_url(file), "{file}");
        }
    }

    #[tokio::test]
    async fn unusable_or_unreachable_databases_are_errors() {
        // Nothing listens on port 1 of the loopback interface: refused at once.
        for url in [
            "mysql://cas:pw@127.0.0.1:1/cas",
            "mariadb://cas@127.0.0.1:1/cas",
            "postgres://cas@127.0.0.1:1/cas",
        ] {
            let e = django_database(url).await.unwrap_err();
            assert!(
                e.starts_with("cannot connect to the database"),
                "{url}: {e}"
            );
        }
        let e = django_database("mysql://cas@127.0.0.1:port/cas")
            .await
            .unwrap_err();
        assert!(e.starts_with("not a usable database URL"), "{e}");
        let e = django_database("sqlite:///nonexistent/dir/cas.sqlite3")
            .await
            .unwrap_err();
        assert!(e.starts_with("cannot open the SQLite database"), "{e}");
    }

    #[test]
    fn django_patterns_match_from_the_start() {
        let p = ServicePattern::regex(&django_regex(r"^https://app\.example\.org/")).unwrap();
        assert!(p.matches("https://app.example.org/login?next=/"));
        assert!(!p.matches("https://evil.example/https://app.example.org/"));
    }
}
