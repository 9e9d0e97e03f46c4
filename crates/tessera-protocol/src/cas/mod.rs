//! CAS 1.0, 2.0 and 3.0 (the Apereo CAS Protocol 3.0.3 specification, cited as "CAS 3.0 §n").
//!
//! `login` decides what `/login` does, `validate` what the validation endpoints answer, `logout`
//! where `/logout` may send the browser; `xml` renders the bodies the clients parse byte for byte;
//! `saml11` reads and answers SAML 1.1 `/samlValidate` (CAS 3.0 §4.2) around the same decision.

pub mod error;
pub mod login;
pub mod logout;
pub mod proxy;
pub mod rest;
pub mod saml11;
pub mod validate;
pub mod xml;

pub use error::ValidationError;

/// Whether a boolean request flag (`renew`, `gateway`, `warn`, `rememberMe`) is set.
///
/// Only `true`, `on`, `1` and `yes` (any case) count: pycas-sso sends `warn=False`, and an empty value
/// means "absent" as in Apereo (protocol digest §1.0, trap T12).
pub fn is_flag_set(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        ["true", "on", "1", "yes"]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_affirmative_flag_values_count() {
        for yes in ["true", "TRUE", "on", "1", "yes", " true "] {
            assert!(is_flag_set(Some(yes)), "{yes}");
        }
        for no in ["", "false", "False", "0", "no", "off", "maybe"] {
            assert!(!is_flag_set(Some(no)), "{no}");
        }
        assert!(!is_flag_set(None));
    }
}
