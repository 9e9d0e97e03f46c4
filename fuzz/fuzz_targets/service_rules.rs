//! The per-service policy strings of the config file and `tessera service`: attribute release rules
//! (`ATTR` or `ATTR=RENAMED`), requirements (`ATTR=REGEX`) and logout types. Each line is tried as
//! each kind; the lines also serve as attribute values for the requirement and release checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::text;
use tessera_protocol::attributes::is_valid_attribute_name;
use tessera_protocol::service::{AttributeRelease, AttributeRule, LogoutType, Requirement};
use tessera_protocol::Attributes;

fuzz_target!(|data: &[u8]| {
    let input = text(data);
    let specs: Vec<&str> = input.split('\n').take(16).collect();
    let mut rules = Vec::new();
    let mut attributes = Attributes::new();
    for (i, spec) in specs.iter().enumerate() {
        if let Ok(rule) = AttributeRule::parse(spec) {
            assert!(is_valid_attribute_name(&rule.from) && is_valid_attribute_name(&rule.to));
            let shown = rule.to_string();
            assert_eq!(
                AttributeRule::parse(&shown).as_ref(),
                Ok(&rule),
                "{shown:?} does not read back"
            );
            rules.push(rule);
        }
        if let Ok(req) = Requirement::parse(spec) {
            assert!(is_valid_attribute_name(&req.attribute));
            assert_eq!(
                req.to_string(),
                *spec,
                "a requirement does not print as written"
            );
            assert!(!req.is_met_by(&Attributes::new()));
            let mut own = Attributes::new();
            own.insert(
                req.attribute.clone(),
                specs.iter().map(|s| (*s).to_owned()).collect(),
            );
            let _ = req.is_met_by(&own);
        }
        if let Ok(t) = LogoutType::parse(spec) {
            assert_eq!(t.as_str(), *spec);
        }
        // Attribute names from the input, valid or not, with the other lines as values.
        let (name, value) = spec.split_once('=').unwrap_or((spec, ""));
        attributes
            .entry(name.to_owned())
            .or_default()
            .push(specs.get(i + 1).map_or(value, |v| *v).to_owned());
    }
    for policy in [
        AttributeRelease::All,
        AttributeRelease::Only(rules),
        AttributeRelease::Nothing,
    ] {
        let released = policy.apply(&attributes);
        for (name, values) in &released {
            assert!(
                is_valid_attribute_name(name),
                "released an invalid name {name:?}"
            );
            assert!(!values.is_empty() && values.iter().all(|v| !v.is_empty()));
        }
        if policy == AttributeRelease::Nothing {
            assert!(released.is_empty());
        }
    }
});
