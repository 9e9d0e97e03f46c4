//! User attributes: a name maps to one or more values, in a stable order.

use std::collections::BTreeMap;

/// Multi-valued user attributes (`eduPersonAffiliation` → `["staff", "member"]`).
pub type Attributes = BTreeMap<String, Vec<String>>;

/// Whether `name` can be an XML element local name in a CAS response (CAS 3.0 §2.5 attributes;
/// trap T18): letters, digits, `-`, `_`, `.`, not starting with a digit, `-` or `.`, no `:`.
pub fn is_valid_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_must_be_xml_local_names() {
        for ok in ["mail", "eduPersonAffiliation", "_x", "a.b-c_d1"] {
            assert!(is_valid_attribute_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "-a", "a:b", "a b", "é", "<x>"] {
            assert!(!is_valid_attribute_name(bad), "{bad}");
        }
    }
}
