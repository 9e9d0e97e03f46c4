//! The bodies of validation answers, exactly as CAS clients parse them (CAS 3.0 §2.4–§2.6, appendix A;
//! protocol digest §1.4–§1.5 and traps T2, T3, T7, T18, T19).
//!
//! - CAS 1.0: `yes\n<user>\n` or `no\n`, LF only.
//! - XML: literal `cas:` prefix, no whitespace inside text nodes, one element per attribute value,
//!   `code="…"` the only attribute of `authenticationFailure`, escaped text and never CDATA.
//! - JSON: Apereo's shape, attribute values always arrays.

use std::fmt::Write as _;

use quick_xml::escape::escape;
use serde::Serialize;

use crate::attributes::Attributes;
use crate::cas::validate::{ProtocolAttributes, Validation};
use crate::cas::ValidationError;

/// `/validate` (CAS 1.0 §2.4.2). A user id that would break the line format answers `no`.
pub fn cas1(result: &Result<Validation, ValidationError>) -> String {
    match result {
        Ok(v) if !v.user.is_empty() && !v.user.contains(['\n', '\r']) => {
            format!("yes\n{}\n", v.user)
        }
        _ => "no\n".to_owned(),
    }
}

/// `/serviceValidate` and friends, XML (CAS 3.0 §2.5.2, §2.6.2).
pub fn service_response_xml(result: &Result<Validation, ValidationError>) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n");
    match result {
        Ok(v) => {
            out.push_str("    <cas:authenticationSuccess>\n");
            let _ = writeln!(
                out,
                "        <cas:user>{}</cas:user>",
                escape(v.user.as_str())
            );
            out.push_str("        <cas:attributes>\n");
            for (name, values) in protocol_attribute_values(&v.protocol) {
                let _ = writeln!(out, "            <cas:{name}>{}</cas:{name}>", values);
            }
            for (name, values) in &v.attributes {
                for value in values {
                    let _ = writeln!(
                        out,
                        "            <cas:{name}>{}</cas:{name}>",
                        escape(value.as_str())
                    );
                }
            }
            out.push_str("        </cas:attributes>\n");
            if let Some(iou) = &v.proxy_granting_ticket {
                let _ = writeln!(
                    out,
                    "        <cas:proxyGrantingTicket>{}</cas:proxyGrantingTicket>",
                    escape(iou.as_str())
                );
            }
            if !v.proxies.is_empty() {
                out.push_str("        <cas:proxies>\n");
                for proxy in &v.proxies {
                    let _ = writeln!(
                        out,
                        "            <cas:proxy>{}</cas:proxy>",
                        escape(proxy.as_str())
                    );
                }
                out.push_str("        </cas:proxies>\n");
            }
            out.push_str("    </cas:authenticationSuccess>\n");
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "    <cas:authenticationFailure code=\"{}\">{}</cas:authenticationFailure>",
                e.code(),
                escape(e.to_string().as_str())
            );
        }
    }
    out.push_str("</cas:serviceResponse>\n");
    out
}

fn protocol_attribute_values(p: &ProtocolAttributes) -> [(&'static str, String); 3] {
    [
        (
            "authenticationDate",
            p.authentication_date.to_rfc3339_seconds(),
        ),
        (
            "longTermAuthenticationRequestTokenUsed",
            p.long_term_authentication_request_token_used.to_string(),
        ),
        ("isFromNewLogin", p.is_from_new_login.to_string()),
    ]
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonEnvelope<'a> {
    service_response: JsonBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum JsonBody<'a> {
    AuthenticationSuccess(JsonSuccess<'a>),
    AuthenticationFailure(JsonFailure),
}

#[derive(Serialize)]
struct JsonSuccess<'a> {
    user: &'a str,
    #[serde(
        rename = "proxyGrantingTicket",
        skip_serializing_if = "Option::is_none"
    )]
    proxy_granting_ticket: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    proxies: &'a [String],
    attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct JsonFailure {
    code: &'static str,
    description: String,
}

/// `format=JSON` (CAS 3.0 §2.5.2, appendix A JSON): attribute values always arrays, as Apereo does.
pub fn service_response_json(result: &Result<Validation, ValidationError>) -> String {
    let body = match result {
        Ok(v) => JsonBody::AuthenticationSuccess(JsonSuccess {
            user: &v.user,
            proxy_granting_ticket: v.proxy_granting_ticket.as_deref(),
            proxies: &v.proxies,
            attributes: json_attributes(v),
        }),
        Err(e) => JsonBody::AuthenticationFailure(JsonFailure {
            code: e.code(),
            description: e.to_string(),
        }),
    };
    let mut out = serde_json::to_string_pretty(&JsonEnvelope {
        service_response: body,
    })
    .unwrap_or_else(|_| String::from("{}"));
    out.push('\n');
    out
}

fn json_attributes(v: &Validation) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let p = &v.protocol;
    let mut map = serde_json::Map::new();
    map.insert(
        "authenticationDate".into(),
        Value::from(vec![p.authentication_date.to_rfc3339_seconds()]),
    );
    map.insert(
        "longTermAuthenticationRequestTokenUsed".into(),
        Value::from(vec![p.long_term_authentication_request_token_used]),
    );
    map.insert(
        "isFromNewLogin".into(),
        Value::from(vec![p.is_from_new_login]),
    );
    let released: &Attributes = &v.attributes;
    for (name, values) in released {
        map.insert(name.clone(), Value::from(values.clone()));
    }
    map
}

/// `/proxy` (CAS 3.0 §2.7.2): the proxy ticket, or `proxyFailure` with its code.
pub fn proxy_response_xml(result: &Result<String, ValidationError>) -> String {
    let inner = match result {
        Ok(pt) => format!("    <cas:proxySuccess>\n        <cas:proxyTicket>{}</cas:proxyTicket>\n    </cas:proxySuccess>\n", escape(pt.as_str())),
        Err(e) => format!(
            "    <cas:proxyFailure code=\"{}\">{}</cas:proxyFailure>\n",
            e.code(),
            escape(e.to_string().as_str())
        ),
    };
    format!("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n{inner}</cas:serviceResponse>\n")
}

/// `/proxy` with `format=JSON`: `proxySuccess.proxyTicket` or `proxyFailure` with code and
/// description.
pub fn proxy_response_json(result: &Result<String, ValidationError>) -> String {
    let value = match result {
        Ok(pt) => serde_json::json!({"serviceResponse": {"proxySuccess": {"proxyTicket": pt}}}),
        Err(e) => {
            serde_json::json!({"serviceResponse": {"proxyFailure": {"code": e.code(), "description": e.to_string()}}})
        }
    };
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_else(|_| String::from("{}"));
    out.push('\n');
    out
}
