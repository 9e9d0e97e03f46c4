use super::*;

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    let mut a = Attributes::new();
    for (k, v) in pairs {
        a.entry((*k).to_owned()).or_default().push((*v).to_owned());
    }
    a
}

#[test]
fn service_urls_refuse_redirect_tricks() {
    for ok in [
        "http://localhost:8000/",
        "https://app.example.org/login?next=%2Fadmin%2F",
        "http://127.0.0.1:5000/login/?origin=/x#frag",
        "imap://localhost",
        "https://app.example.org/page?q=a b",
    ] {
        assert!(ServiceUrl::parse(ok).is_ok(), "{ok}");
    }
    for (bad, why) in [
        ("", ServiceUrlError::Empty),
        (
            "https://good.example.org@evil.example.net/",
            ServiceUrlError::BadHttpUrl,
        ),
        (
            "https://user:pw@good.example.org/",
            ServiceUrlError::BadHttpUrl,
        ),
        (
            "https:\\\\evil.example.net",
            ServiceUrlError::ForbiddenCharacter,
        ),
        (
            "https://good.example.org/\r\nSet-Cookie: x=y",
            ServiceUrlError::ForbiddenCharacter,
        ),
        ("https:evil.example.net", ServiceUrlError::BadHttpUrl),
        ("//evil.example.net/", ServiceUrlError::NoScheme),
        ("/relative", ServiceUrlError::NoScheme),
        ("http://", ServiceUrlError::BadHttpUrl),
        (
            "https://app.example.org ",
            ServiceUrlError::SurroundingSpace,
        ),
        ("https://ht.. ", ServiceUrlError::SurroundingSpace),
        (
            " https://app.example.org/",
            ServiceUrlError::SurroundingSpace,
        ),
        ("imap://localhost\u{a0}", ServiceUrlError::SurroundingSpace),
    ] {
        assert_eq!(ServiceUrl::parse(bad), Err(why), "{bad}");
    }
    assert_eq!(
        ServiceUrl::parse(&"h:".repeat(3000)),
        Err(ServiceUrlError::TooLong)
    );
}

#[test]
fn ticket_goes_last_before_the_fragment() {
    let t = "ST-1";
    let u = |s: &str| ServiceUrl::parse(s).unwrap().with_ticket(t);
    assert_eq!(u("http://h/foo"), "http://h/foo?ticket=ST-1");
    assert_eq!(u("http://h/foo?a=b"), "http://h/foo?a=b&ticket=ST-1");
    assert_eq!(u("http://h/foo?a=b#x"), "http://h/foo?a=b&ticket=ST-1#x");
    assert_eq!(u("http://h/foo#x?y"), "http://h/foo?ticket=ST-1#x?y");
    assert_eq!(
        u("http://h/?next=%2Fa%3Fb%3Dc"),
        "http://h/?next=%2Fa%3Fb%3Dc&ticket=ST-1"
    );
}

#[test]
fn presented_service_matches_case_insensitively_after_one_more_decode() {
    let stored = ServiceUrl::parse("https://App.example.org/login?next=%2Fadmin%2F").unwrap();
    assert!(stored.matches_presented("https://app.example.org/login?next=%2Fadmin%2F"));
    assert!(stored.matches_presented("https://app.example.org/login?next=/admin/"));
    assert!(stored.matches_presented("https://app.example.org/login?next=%2fadmin%2f#x"));
    assert!(!stored.matches_presented("https://app.example.org/login?next=%2Fadmin"));
    assert!(!stored.matches_presented("https://app.example.org/login/?next=%2Fadmin%2F"));
    let with_amp = ServiceUrl::parse("https://a.org/x?a=1&b=2").unwrap();
    assert!(with_amp.matches_presented("https://a.org/x?a=1&b=2"));
    assert!(!with_amp.matches_presented("https://a.org/x?b=2&a=1"));
}

#[test]
fn regex_patterns_are_anchored() {
    let p = ServicePattern::regex(r"https://app\.example\.org/.*").unwrap();
    assert!(p.matches("https://app.example.org/x"));
    assert!(!p.matches("https://evil.net/?https://app.example.org/x"));
    assert!(!p.matches("https://app.example.org.evil.net/"));
    let alt = ServicePattern::regex("https://a.org/|https://b.org/").unwrap();
    assert!(!alt.matches("https://a.org/and-more"));
    assert!(ServicePattern::regex("(").is_err());
}

#[test]
fn prefix_patterns_stop_at_a_segment_boundary() {
    let p = ServicePattern::from_parts("prefix", "https://app.example.org").unwrap();
    assert!(p.matches("https://app.example.org"));
    assert!(p.matches("https://app.example.org/x"));
    assert!(p.matches("https://app.example.org?x"));
    assert!(!p.matches("https://app.example.org.evil.net/"));
    assert!(!p.matches("https://app.example.org:9999/"));
    let slash = ServicePattern::from_parts("prefix", "https://app.example.org/a/").unwrap();
    assert!(slash.matches("https://app.example.org/a/b"));
    assert!(!slash.matches("https://app.example.org/ab"));
    assert!(ServicePattern::from_parts("exact", "x")
        .unwrap()
        .matches("x"));
    assert!(ServicePattern::from_parts("glob", "x").is_err());
}

#[test]
fn release_renames_filters_and_drops_empties() {
    let user = attrs(&[
        ("mail", "a@x.org"),
        ("eduPersonAffiliation", "staff"),
        ("eduPersonAffiliation", "member"),
        ("bad name", "x"),
        ("empty", ""),
    ]);
    let mut s = RegisteredService::new(
        "s",
        ServicePattern::Exact("x".into()),
        ServiceOrigin::Database,
    );
    assert!(s.released(&user).is_empty());
    s.release = AttributeRelease::All;
    let all = s.released(&user);
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        ["eduPersonAffiliation", "mail"]
    );
    assert_eq!(all["eduPersonAffiliation"], ["staff", "member"]);
    s.release = AttributeRelease::Only(vec![
        AttributeRule::parse("mail=email").unwrap(),
        AttributeRule::parse("missing").unwrap(),
    ]);
    assert_eq!(s.released(&user), attrs(&[("email", "a@x.org")]));
    assert!(AttributeRule::parse("a b").is_err());
}

#[test]
fn username_attribute_and_requirements() {
    let user = attrs(&[("uid", "jdoe"), ("memberOf", "cn=staff,dc=x")]);
    let mut s = RegisteredService::new(
        "s",
        ServicePattern::Exact("x".into()),
        ServiceOrigin::Database,
    );
    assert_eq!(s.principal_for("login", &user), "login");
    s.username_attribute = Some("uid".into());
    assert_eq!(s.principal_for("login", &user), "jdoe");
    s.username_attribute = Some("absent".into());
    assert_eq!(s.principal_for("login", &user), "login");
    s.requirements = vec![Requirement::parse("memberOf=cn=staff,.*").unwrap()];
    assert!(s.allows(&user));
    s.requirements
        .push(Requirement::parse("memberOf=cn=admin,.*").unwrap());
    assert!(!s.allows(&user));
    assert!(Requirement::parse("nope").is_err());
}

#[test]
fn file_services_come_first_and_win_name_conflicts() {
    let svc = |name: &str, pat: &str, origin| {
        RegisteredService::new(name, ServicePattern::regex(pat).unwrap(), origin)
    };
    let file = vec![svc("app", "https://a/.*", ServiceOrigin::ConfigFile)];
    let db = vec![
        svc("zz", "https://.*", ServiceOrigin::Database),
        svc("app", "https://other/.*", ServiceOrigin::Database),
        svc("bb", "https://b/.*", ServiceOrigin::Database),
    ];
    let r = ServiceRegistry::new(file, db);
    assert_eq!(
        r.services()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["app", "bb", "zz"]
    );
    assert_eq!(
        r.find("https://a/x").unwrap().origin,
        ServiceOrigin::ConfigFile
    );
    assert_eq!(r.find("https://b/x").unwrap().name, "bb");
    assert_eq!(r.find("https://other/x").unwrap().name, "zz");
    assert!(r.find("http://a/x").is_none());
    let explained = r.explain("https://b/x", &[]);
    assert_eq!(explained[1].1, MatchOutcome::Chosen);
    assert_eq!(explained[2].1, MatchOutcome::Shadowed);
}

#[test]
fn disabled_services_are_unregistered() {
    let mut s = RegisteredService::new(
        "s",
        ServicePattern::Exact("x".into()),
        ServiceOrigin::Database,
    );
    s.enabled = false;
    let r = ServiceRegistry::new(vec![], vec![s]);
    assert!(r.find("x").is_none());
    assert!(r.by_name("s").is_some());
}
