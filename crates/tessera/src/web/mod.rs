//! Server-rendered pages: templates embedded in the binary, overridable from a theme directory.

pub mod templates;
