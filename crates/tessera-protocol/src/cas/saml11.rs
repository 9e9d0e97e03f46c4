//! SAML 1.1 ticket validation, `POST {base}/samlValidate` (CAS 3.0 §4.2; protocol digest §1.7, traps
//! T3, T20, T21, T35).
//!
//! This module owns the wire format only: reading the ticket out of the SOAP request and rendering
//! the SOAP answer. The decision is [`validate_service_ticket`](crate::cas::validate::validate_service_ticket)
//! with `service` = `TARGET`, exactly as for `/serviceValidate` (digest §2.2: service tickets only).
//! Nothing here reads a clock or draws randomness on its own: `now` and the RNG that makes the
//! `ResponseID`/`AssertionID` are arguments.
//!
//! What the clients need, and why the renderer writes literal text instead of using an XML writer:
//! - literal `samlp:`/`saml:` prefixes and `Value="samlp:Success"` (pycas-sso drops exactly six
//!   characters of the status value);
//! - `Status` and `Assertion` direct children of `Response`, inside `Body` inside `Envelope`
//!   (mod_auth_cas walks that path by local name);
//! - no `NameIdentifier` anywhere in a failure (phpCAS takes any `NameIdentifier` as success);
//! - Apereo's byte layout for every attribute, no whitespace between its tags, escaped text and
//!   never CDATA (consumers that match text rather than parse XML).

use std::fmt::Write as _;
use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use rand_core::{CryptoRng, RngCore};

use crate::cas::validate::{
    Endpoint, ProtocolAttributes, ValidateParams, ValidateRequest, Validation,
};
use crate::cas::ValidationError;
use crate::time::Timestamp;

/// The SAML 1.0/1.1 protocol namespace (`samlp:`), where the request's `AssertionArtifact` lives.
pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:1.0:protocol";
/// The SAML 1.0/1.1 assertion namespace (`saml:`).
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:1.0:assertion";
/// The namespace Apereo puts on every CAS attribute (`AttributeNamespace`).
pub const ATTRIBUTE_NS: &str = "http://www.ja-sig.org/products/cas/";
/// The largest request body read. The server caps bodies too; this keeps the parser safe alone.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The deepest element nesting accepted. A real request is four levels deep
/// (`Envelope/Body/Request/AssertionArtifact`).
pub const MAX_DEPTH: usize = 32;
/// How long the assertion is valid after it is issued (`Conditions/@NotOnOrAfter`).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(30);

/// Why a SOAP request body could not be read. Each is answered as a `samlp:Requester` failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body exceeds [`MAX_REQUEST_BYTES`].
    #[error("the request body is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// The body has a document type declaration; refused outright, so no entity is ever defined
    /// or fetched (XXE, entity expansion).
    #[error("the request body must not contain a document type declaration")]
    DocType,
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("the request body nests elements deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The body is not well-formed UTF-8 XML.
    #[error("the request body is not well-formed XML: {0}")]
    Malformed(String),
    /// No `AssertionArtifact` in the SAML protocol namespace, or an empty one.
    #[error("the request has no samlp:AssertionArtifact")]
    MissingArtifact,
    /// More than one `AssertionArtifact`; CAS validates one ticket per request.
    #[error("the request has more than one samlp:AssertionArtifact")]
    SeveralArtifacts,
    /// The artifact is not valid percent-encoded UTF-8.
    #[error("the samlp:AssertionArtifact is not a ticket")]
    BadArtifact,
}

/// CAS 3.0 §4.2.2, digest §1.7 "Parsing rules": the ticket in a SOAP `samlp:Request`.
///
/// The `AssertionArtifact` element is found by namespace and local name, whatever its prefix. Its
/// text is trimmed and percent-decoded once (phpCAS urlencodes it). `RequestID` and `IssueInstant`
/// are not looked at: mod_auth_cas omits them and phpCAS sends constant 2002 values (trap T21). A
/// DOCTYPE, unclosed or mismatched tags, deep nesting and oversized bodies are refused.
pub fn parse_artifact(body: &[u8]) -> Result<String, RequestError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body)
        .map_err(|_| RequestError::Malformed("the body is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    let protocol = Namespace(PROTOCOL_NS.as_bytes());
    let mut depth = 0usize;
    let mut seen_root = false;
    // Some(text so far) while inside the artifact element.
    let mut inside: Option<String> = None;
    let mut artifact: Option<String> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| RequestError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(RequestError::DocType),
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 && seen_root {
                    return Err(RequestError::Malformed("more than one root element".into()));
                }
                if inside.is_some() {
                    return Err(RequestError::Malformed(
                        "samlp:AssertionArtifact must hold only text".into(),
                    ));
                }
                seen_root = true;
                if depth + 1 > MAX_DEPTH {
                    return Err(RequestError::TooDeep);
                }
                let is_artifact = matches!(ns, ResolveResult::Bound(n) if n == protocol)
                    && e.local_name().as_ref() == b"AssertionArtifact";
                if is_artifact && artifact.is_some() {
                    return Err(RequestError::SeveralArtifacts);
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if is_artifact {
                        inside = Some(String::new());
                    }
                } else if is_artifact {
                    artifact = Some(String::new());
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if let Some(done) = inside.take() {
                    artifact = Some(done);
                }
            }
            Event::Text(t) => {
                let unescaped = t
                    .unescape()
                    .map_err(|e| RequestError::Malformed(e.to_string()))?;
                if let Some(buf) = inside.as_mut() {
                    buf.push_str(&unescaped);
                } else if depth == 0 && !unescaped.trim().is_empty() {
                    return Err(RequestError::Malformed(
                        "text outside the root element".into(),
                    ));
                }
            }
            Event::CData(c) => {
                if let Some(buf) = inside.as_mut() {
                    let raw = std::str::from_utf8(&c)
                        .map_err(|_| RequestError::Malformed("CDATA is not UTF-8".into()))?;
                    buf.push_str(raw);
                }
            }
            Event::Eof => {
                if depth != 0 || !seen_root {
                    return Err(RequestError::Malformed(
                        "the document ends before its root element is closed".into(),
                    ));
                }
                break;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    let raw = artifact.ok_or(RequestError::MissingArtifact)?;
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(RequestError::MissingArtifact);
    }
    let decoded = percent_encoding::percent_decode_str(trimmed)
        .decode_utf8()
        .map_err(|_| RequestError::BadArtifact)?;
    Ok(decoded.trim().to_owned())
}

/// CAS 3.0 §4.2.1–§4.2.2: the request the ordinary validation decides, made of the query's `TARGET`
/// and `renew` and the ticket in the SOAP body.
///
/// A missing `TARGET` or an unreadable body is `INVALID_REQUEST`; a proxy ticket is
/// `INVALID_TICKET_SPEC`, because `/samlValidate` takes service tickets only (digest §2.2).
pub fn parse_validate_request(
    target: Option<&str>,
    renew: Option<&str>,
    body: &[u8],
) -> Result<ValidateRequest, ValidationError> {
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Err(ValidationError::InvalidRequest(
            "the TARGET parameter is required".into(),
        ));
    };
    let ticket =
        parse_artifact(body).map_err(|e| ValidationError::InvalidRequest(e.to_string()))?;
    ValidateRequest::parse(
        Endpoint::ServiceValidate,
        &ValidateParams {
            service: Some(target.to_owned()),
            ticket: Some(ticket),
            renew: renew.map(str::to_owned),
            pgt_url: None,
        },
    )
}

/// CAS 3.0 §4.2: attributes go only to `https` targets when the rule is on. Local and test services
/// (`http://localhost/`) need it off (digest §1.7). The user id and protocol attributes always go.
pub fn releases_attributes_to(target: &str, attributes_require_https: bool) -> bool {
    !attributes_require_https || url::Url::parse(target).is_ok_and(|u| u.scheme() == "https")
}

/// Everything a SAML answer says besides the validation outcome.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// `TARGET` as presented: the `Recipient` and the `Audience`. `None` when the request had none.
    pub target: Option<&'a str>,
    /// The server's host name, the assertion's `Issuer`.
    pub issuer: &'a str,
    /// `IssueInstant` and `Conditions/@NotBefore`.
    pub now: Timestamp,
}

/// CAS 3.0 §4.2.3, digest §1.7: the SOAP answer to `/samlValidate`, success or failure.
///
/// Success carries `samlp:Success` and one assertion with the `NameIdentifier`, the three protocol
/// attributes (CAS 3.0 §4.1.3, trap T35) and the released user attributes, in Apereo's layout.
/// Failure carries `samlp:Requester` (or `samlp:Responder` for our own faults) with a
/// `samlp:StatusMessage`, and neither an assertion nor a `NameIdentifier` (trap T20).
/// `ResponseID` and `AssertionID` are `_` and 32 hex digits drawn from `rng`.
pub fn response(
    result: &Result<Validation, ValidationError>,
    ctx: &ResponseContext<'_>,
    rng: &mut (impl RngCore + CryptoRng),
) -> String {
    let now = ctx.now.to_rfc3339_seconds();
    let mut out = String::with_capacity(2048);
    out.push_str(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <SOAP-ENV:Header/><SOAP-ENV:Body>\n",
    );
    let _ = write!(
        out,
        "<samlp:Response xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\"\n  \
         xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n  \
         ResponseID=\"{}\" IssueInstant=\"{now}\" MajorVersion=\"1\" MinorVersion=\"1\"",
        saml_id(rng)
    );
    if let Some(target) = ctx.target {
        let _ = write!(out, " Recipient=\"{}\"", esc(target));
    }
    out.push_str(">\n");
    match result {
        Ok(v) => success(&mut out, v, ctx, &now, rng),
        Err(e) => {
            let code = match e {
                ValidationError::InternalError(_) => "samlp:Responder",
                _ => "samlp:Requester",
            };
            let _ = writeln!(
                out,
                " <samlp:Status><samlp:StatusCode Value=\"{code}\"/>\
                 <samlp:StatusMessage>{}</samlp:StatusMessage></samlp:Status>",
                esc(&e.to_string())
            );
        }
    }
    out.push_str("</samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>\n");
    out
}

fn success(
    out: &mut String,
    v: &Validation,
    ctx: &ResponseContext<'_>,
    now: &str,
    rng: &mut (impl RngCore + CryptoRng),
) {
    let target = esc(ctx.target.unwrap_or_default());
    let not_on_or_after = ctx.now.plus(ASSERTION_LIFETIME).to_rfc3339_seconds();
    let subject = format!(
        "<saml:Subject><saml:NameIdentifier>{}</saml:NameIdentifier><saml:SubjectConfirmation>\
         <saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:artifact</saml:ConfirmationMethod>\
         </saml:SubjectConfirmation></saml:Subject>",
        esc(&v.user)
    );
    out.push_str(" <samlp:Status><samlp:StatusCode Value=\"samlp:Success\"/></samlp:Status>\n");
    let _ = writeln!(
        out,
        " <saml:Assertion AssertionID=\"{}\" IssueInstant=\"{now}\" Issuer=\"{}\" \
         MajorVersion=\"1\" MinorVersion=\"1\">",
        saml_id(rng),
        esc(ctx.issuer)
    );
    let _ = writeln!(
        out,
        "  <saml:Conditions NotBefore=\"{now}\" NotOnOrAfter=\"{not_on_or_after}\">\
         <saml:AudienceRestrictionCondition><saml:Audience>{target}</saml:Audience>\
         </saml:AudienceRestrictionCondition></saml:Conditions>"
    );
    out.push_str("  <saml:AttributeStatement>\n");
    let _ = writeln!(out, "   {subject}");
    for (name, value) in protocol_attributes(&v.protocol) {
        attribute(out, name, std::iter::once(value.as_str()));
    }
    for (name, values) in &v.attributes {
        attribute(out, name, values.iter().map(String::as_str));
    }
    out.push_str("  </saml:AttributeStatement>\n");
    let _ = writeln!(
        out,
        "  <saml:AuthenticationStatement AuthenticationInstant=\"{}\" \
         AuthenticationMethod=\"urn:oasis:names:tc:SAML:1.0:am:password\">",
        v.protocol.authentication_date.to_rfc3339_seconds()
    );
    let _ = writeln!(out, "   {subject}");
    out.push_str("  </saml:AuthenticationStatement>\n");
    out.push_str(" </saml:Assertion>\n");
}

/// One attribute in Apereo's byte layout (digest §1.7 "Attribute byte layout").
fn attribute<'v>(out: &mut String, name: &str, values: impl Iterator<Item = &'v str>) {
    let _ = write!(
        out,
        "   <saml:Attribute AttributeName=\"{}\" AttributeNamespace=\"{ATTRIBUTE_NS}\">",
        esc(name)
    );
    for value in values {
        let _ = write!(
            out,
            "<saml:AttributeValue>{}</saml:AttributeValue>",
            esc(value)
        );
    }
    out.push_str("</saml:Attribute>\n");
}

fn protocol_attributes(p: &ProtocolAttributes) -> [(&'static str, String); 3] {
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

/// `_` and 32 lowercase hex digits (128 random bits): an XML `ID` must not start with a digit.
fn saml_id(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    let mut id = String::with_capacity(33);
    id.push('_');
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// Text and attribute-value escaping (`& < > " '`); never CDATA (trap T18).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests;
