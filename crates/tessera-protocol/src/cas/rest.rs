//! The REST ticket API's bodies (Apereo CAS REST protocol; protocol digest §1.8).

use quick_xml::escape::escape;

/// The `201 Created` body of `POST /v1/tickets`, byte for byte as Apereo writes it: some clients
/// scrape the form's `action` for the new ticket-granting ticket's URL.
pub fn created_body(location: &str) -> String {
    [
        r#"<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>201 CREATED</title></head><body><h1>TGT Created</h1><form action=""#,
        &escape(location),
        r#"" method="POST">Service:<input type="text" name="service" value=""><br><input type="submit" value="Submit"></form></body></html>"#,
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_created_body_is_apereos() {
        assert_eq!(
            created_body("https://sso.example.org/cas/v1/tickets/TGT-1-abc"),
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\"><html><head><title>201 CREATED</title></head>\
<body><h1>TGT Created</h1><form action=\"https://sso.example.org/cas/v1/tickets/TGT-1-abc\" method=\"POST\">\
Service:<input type=\"text\" name=\"service\" value=\"\"><br><input type=\"submit\" value=\"Submit\"></form>\
</body></html>"
        );
        assert!(created_body("https://h/a\"b&c").contains(r#"action="https://h/a&quot;b&amp;c""#));
    }
}
