//! Server-rendered pages: templates embedded in the binary, overridable from a theme directory,
//! with their messages in per-language catalogs.

pub mod i18n;
pub mod templates;
