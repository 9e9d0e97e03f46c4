//! Message catalogs and language negotiation. Pure: strings in, strings out; no HTTP types.
//!
//! Every user-facing string of the pages lives in `i18n/<lang>.toml` (embedded at build time),
//! looked up by key (`login.title`). English is the reference: a key missing from another catalog
//! falls back to it. An operator theme may add `i18n/<lang>.toml` files to `[theme] dir`: their keys
//! replace the built-in ones, and a file for a new language adds that language.
//!
//! A visitor's language is, in this order: the `lang` query parameter (the switcher's links), the
//! OpenID Connect `ui_locales` of the request being served, the language cookie the switcher set,
//! then `Accept-Language` (RFC 9110 §12.5.4, q-values honoured), and English when none matches.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The built-in catalogs: English first (the fallback), then the others.
const BUILT_IN: &[(&str, &str)] = &[
    ("en", include_str!("i18n/en.toml")),
    ("fr", include_str!("i18n/fr.toml")),
    ("de", include_str!("i18n/de.toml")),
    ("es", include_str!("i18n/es.toml")),
];

/// The language of the reference catalog, used when nothing else matches.
pub const DEFAULT_LANG: &str = "en";

/// A catalog could not be read.
#[derive(Debug, thiserror::Error)]
#[error("message catalog {file}: {message}")]
pub struct CatalogError {
    file: String,
    message: String,
}

/// One language's messages.
#[derive(Debug)]
struct Catalog {
    code: String,
    messages: HashMap<String, String>,
}

/// Every language's messages, English first.
#[derive(Debug)]
pub struct Catalogs {
    langs: Vec<Catalog>,
}

/// What a request says about the language it wants, strongest first.
#[derive(Debug, Default, Clone, Copy)]
pub struct LangRequest<'a> {
    /// The `lang` query parameter (a language code).
    pub explicit: Option<&'a str>,
    /// OpenID Connect `ui_locales`: language tags separated by spaces, preferred first.
    pub ui_locales: Option<&'a str>,
    /// The language cookie.
    pub cookie: Option<&'a str>,
    /// The `Accept-Language` header.
    pub accept_language: Option<&'a str>,
}

/// A language offered by the switcher.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Language {
    /// Its code (`fr`).
    pub code: String,
    /// Its name, in itself (`Français`).
    pub name: String,
}

impl Catalogs {
    /// The built-in catalogs, with `<theme>/i18n/<lang>.toml` files laid over them.
    pub fn load(theme: Option<&Path>) -> Result<Self, CatalogError> {
        let mut langs = Vec::new();
        for (code, text) in BUILT_IN {
            langs.push(Catalog {
                code: (*code).to_owned(),
                messages: parse(&format!("built-in {code}.toml"), text)?,
            });
        }
        let mut catalogs = Self { langs };
        if let Some(dir) = theme.map(|t| t.join("i18n")).filter(|d| d.is_dir()) {
            let entries = std::fs::read_dir(&dir).map_err(|e| CatalogError {
                file: dir.display().to_string(),
                message: e.to_string(),
            })?;
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for path in files {
                let file = path.display().to_string();
                let Some(code) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_ascii_lowercase)
                    .filter(|c| is_language_code(c))
                else {
                    return Err(CatalogError {
                        file,
                        message: "name the file after a language code, e.g. fr.toml or pt-br.toml"
                            .into(),
                    });
                };
                let text = std::fs::read_to_string(&path).map_err(|e| CatalogError {
                    file: file.clone(),
                    message: e.to_string(),
                })?;
                catalogs.overlay(&code, parse(&file, &text)?);
            }
        }
        Ok(catalogs)
    }

    fn overlay(&mut self, code: &str, messages: HashMap<String, String>) {
        match self.langs.iter_mut().find(|c| c.code == code) {
            Some(catalog) => catalog.messages.extend(messages),
            None => self.langs.push(Catalog {
                code: code.to_owned(),
                messages,
            }),
        }
    }

    /// The languages offered, English first, each named in itself.
    pub fn languages(&self) -> Vec<Language> {
        self.langs
            .iter()
            .map(|c| Language {
                code: c.code.clone(),
                name: self
                    .text(&c.code, "lang.name")
                    .unwrap_or(&c.code)
                    .to_owned(),
            })
            .collect()
    }

    /// Whether `code` is one of the languages offered.
    pub fn has(&self, code: &str) -> bool {
        self.langs.iter().any(|c| c.code == code)
    }

    /// The message `key` in `lang`, else in English.
    pub fn text(&self, lang: &str, key: &str) -> Option<&str> {
        let find = |code: &str| {
            self.langs
                .iter()
                .find(|c| c.code == code)
                .and_then(|c| c.messages.get(key))
                .map(String::as_str)
        };
        find(lang).or_else(|| find(DEFAULT_LANG))
    }

    /// `{n} seconds` / `{n} minutes` as a visitor reads it: whole seconds under a minute, else
    /// minutes rounded up; never less than one second.
    pub fn wait(&self, lang: &str, seconds: u64) -> String {
        let seconds = seconds.max(1);
        let (n, unit) = if seconds < 60 {
            (seconds, "time.seconds")
        } else {
            (seconds.div_ceil(60), "time.minutes")
        };
        // French counts 0 and 1 as singular; the other built-in languages only 1.
        let one = if lang == "fr" { n <= 1 } else { n == 1 };
        let key = format!("{unit}_{}", if one { "one" } else { "other" });
        let template = self.text(lang, &key).unwrap_or("{n}");
        interpolate(template, &[("n", n.to_string())])
    }

    /// The language to show: the first of the request's wishes that a catalog exists for.
    pub fn negotiate(&self, request: LangRequest<'_>) -> String {
        let explicit = request.explicit.into_iter();
        let hints = request
            .ui_locales
            .into_iter()
            .flat_map(str::split_ascii_whitespace);
        let cookie = request.cookie.into_iter();
        let accepted = request
            .accept_language
            .map(accept_language)
            .unwrap_or_default();
        explicit
            .chain(hints)
            .chain(cookie)
            .chain(accepted.iter().map(String::as_str))
            .find_map(|tag| self.find(tag))
            .unwrap_or_else(|| DEFAULT_LANG.to_owned())
    }

    /// The language offered for a tag: exactly (`pt-br`), else by its primary subtag (`fr-CA` → `fr`).
    pub fn find(&self, tag: &str) -> Option<String> {
        let tag = tag.trim().to_ascii_lowercase();
        if self.has(&tag) {
            return Some(tag);
        }
        let primary = tag.split('-').next().unwrap_or("");
        self.has(primary).then(|| primary.to_owned())
    }
}

/// The language tags of an `Accept-Language` header, most wanted first (equal weights keep their
/// order); `q=0` and `*` are left out.
pub fn accept_language(header: &str) -> Vec<String> {
    let mut tags: Vec<(String, u32)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let mut q = 1000;
            for param in parts {
                if let Some(value) = param.trim().strip_prefix("q=") {
                    q = parse_qvalue(value)?;
                }
            }
            (!tag.is_empty() && tag != "*" && q > 0).then(|| (tag.to_owned(), q))
        })
        .collect();
    tags.sort_by_key(|(_, q)| std::cmp::Reverse(*q));
    tags.into_iter().map(|(tag, _)| tag).collect()
}

/// An RFC 9110 qvalue in thousandths (`0.8` → 800); `None` when malformed.
fn parse_qvalue(value: &str) -> Option<u32> {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u32>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `en`, `fr`, `pt-br`, `zh-hant`: what may name a catalog.
pub fn is_language_code(code: &str) -> bool {
    let mut parts = code.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Replaces each `{name}` in `template` with its argument, HTML-escaped (the catalogs' own markup
/// is kept). Unknown placeholders are left as they are.
pub fn interpolate(template: &str, args: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let arg = after.find('}').and_then(|end| {
            args.iter()
                .find(|(name, _)| *name == &after[..end])
                .map(|a| (a, end))
        });
        match arg {
            Some(((_, value), end)) => {
                escape_into(&mut out, value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes the five HTML metacharacters.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A catalog file as `dotted.key → text` (nested tables give the dots).
fn parse(file: &str, text: &str) -> Result<HashMap<String, String>, CatalogError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| CatalogError {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    flatten("", &table, &mut out).map_err(|key| CatalogError {
        file: file.to_owned(),
        message: format!("{key}: every message must be a string"),
    })?;
    Ok(out.into_iter().collect())
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(key),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs() -> Catalogs {
        Catalogs::load(None).unwrap()
    }

    #[test]
    fn accept_language_honours_q_values() {
        assert_eq!(
            accept_language("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"),
            ["fr-CH", "fr", "en", "de"]
        );
        assert_eq!(accept_language("en;q=0.1, de"), ["de", "en"]);
        assert_eq!(accept_language("de;q=0, es;q=bad, it"), ["it"]);
        assert!(accept_language("").is_empty());
    }

    #[test]
    fn negotiation_prefers_the_parameter_then_hints_then_cookie_then_header() {
        let c = catalogs();
        let all = LangRequest {
            explicit: Some("es"),
            ui_locales: Some("de"),
            cookie: Some("fr"),
            accept_language: Some("en"),
        };
        assert_eq!(c.negotiate(all), "es");
        assert_eq!(
            c.negotiate(LangRequest {
                explicit: Some("xx"),
                ..all
            }),
            "de"
        );
        assert_eq!(
            c.negotiate(LangRequest {
                explicit: None,
                ui_locales: None,
                ..all
            }),
            "fr"
        );
        assert_eq!(
            c.negotiate(LangRequest {
                accept_language: Some("it, de-AT;q=0.8, fr;q=0.5"),
                ..LangRequest::default()
            }),
            "de"
        );
        assert_eq!(c.negotiate(LangRequest::default()), "en");
        assert_eq!(
            c.negotiate(LangRequest {
                accept_language: Some("ja, *"),
                ..LangRequest::default()
            }),
            "en"
        );
    }

    #[test]
    fn arguments_are_escaped_and_markup_kept() {
        assert_eq!(
            interpolate("as <strong>{u}</strong> {x} {", &[("u", "<b>&".into())]),
            "as <strong>&lt;b&gt;&amp;</strong> {x} {"
        );
    }

    #[test]
    fn waits_are_pluralised_per_language() {
        let c = catalogs();
        assert_eq!(c.wait("en", 1), "1 second");
        assert_eq!(c.wait("en", 0), "1 second");
        assert_eq!(c.wait("en", 2), "2 seconds");
        assert_eq!(c.wait("en", 61), "2 minutes");
        assert_eq!(c.wait("en", 300), "5 minutes");
        assert_eq!(c.wait("fr", 1), "1 seconde");
        assert_eq!(c.wait("de", 60), "1 Minute");
        assert_eq!(c.wait("es", 120), "2 minutos");
    }

    #[test]
    fn every_catalog_has_every_english_key_and_only_simple_markup() {
        let c = catalogs();
        let english = &c.langs[0].messages;
        let allowed = regex::Regex::new(r"</?(strong|code)>").unwrap();
        for catalog in &c.langs {
            for key in english.keys() {
                assert!(
                    catalog.messages.contains_key(key),
                    "{} lacks {key}",
                    catalog.code
                );
            }
            for (key, text) in &catalog.messages {
                assert!(
                    english.contains_key(key),
                    "{}: unknown key {key}",
                    catalog.code
                );
                let bare = allowed.replace_all(text, "");
                assert!(
                    !bare.contains(['<', '>', '"']) && !bare.contains('&'),
                    "{} {key}: only <strong> and <code> markup, no quotes or ampersands: {text}",
                    catalog.code
                );
            }
        }
        let names: Vec<_> = c.languages().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["English", "Français", "Deutsch", "Español"]);
    }

    #[test]
    fn a_theme_catalog_overrides_keys_and_adds_languages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("i18n")).unwrap();
        std::fs::write(
            dir.path().join("i18n/en.toml"),
            "[site]\nname = \"Example University\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("i18n/it.toml"),
            "[lang]\nname = \"Italiano\"\n[login]\ntitle = \"Accedi\"\n",
        )
        .unwrap();
        let c = Catalogs::load(Some(dir.path())).unwrap();
        assert_eq!(c.text("en", "site.name"), Some("Example University"));
        assert_eq!(c.text("en", "login.title"), Some("Log in"));
        assert_eq!(c.text("it", "login.title"), Some("Accedi"));
        assert_eq!(c.text("it", "login.submit"), Some("Log in"));
        assert!(c.languages().iter().any(|l| l.name == "Italiano"));
        std::fs::write(dir.path().join("i18n/Bad Name.toml"), "").unwrap();
        let e = Catalogs::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("Bad Name.toml"), "{e}");
    }
}
