"""Single logout into a django-cas-ng 5.1.1 app (``apps/django_app``, CAS_VERSION '3').

When a tessera SSO session ends (``/cas/logout`` with the browser's TGC, or
``tessera session revoke`` from the CLI), tessera POSTs ``logoutRequest=<SAML
LogoutRequest>`` to the service URL that validated a ticket in that session:
django-cas-ng's login view with ``?next=``. django-cas-ng then deletes the
Django session whose stored ticket equals the ``SessionIndex``. The tests watch
that from the outside: the same Django session cookie no longer opens the
protected page, and the ``django_session`` row is gone.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode, urlsplit

import pytest
from lxml import etree

from apps import django_app
from harness import (
    ALICE,
    App,
    AppServer,
    Browser,
    User,
    assert_alice_attributes,
    describe,
    query_params,
    sign_in_via_app,
    ticket_in,
)

SLO_TIMEOUT = 10  # seconds for a back-channel logout to take effect
POLL_INTERVAL = 0.05

# Only the CLI revocation test signs in as this user: revoking every session of
# it can never end a session another test relies on.
REVOKED = User("grace", "grace-django-slo-4", (("mail", "grace@example.org"),))

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SLO_SUMMARY_RE = re.compile(r"^single logout: (\d+) delivered, (\d+) left for the server to retry$", re.M)


@pytest.fixture(scope="module")
def django(stack, tmp_path_factory) -> App:
    """The Django app on a free port, registered with tessera as a back-channel SLO service."""
    server = AppServer("django")
    try:
        stack.tessera.add_service("app-django", rf"http://127\.0\.0\.1:{server.port}/.*")
        stack.tessera.add_user(REVOKED)
        server.mount(
            django_app.create_app(stack.tessera.root, server.root, tmp_path_factory.mktemp("django"))
        )
        yield App(django_app.CLIENT, django_app, server)
    finally:
        server.close()


# --------------------------------------------------------------------------
# helpers


# The service URL django-cas-ng sends to CAS for the protected page, past the origin.
SERVICE_TARGET = django_app.LOGIN_PATH + "?" + urlencode({"next": django_app.PROTECTED_PATH})


def service_url(app: App) -> str:
    return app.url(SERVICE_TARGET)


def django_session_key(browser: Browser) -> str:
    cookie = browser.cookie(django_app.SESSION_COOKIE_NAME)
    assert cookie is not None, "the browser has no Django session cookie"
    return cookie.value


def sign_in(browser: Browser, stack, app: App, user: User) -> str:
    """Sign in through tessera's form; return the ticket django-cas-ng validated."""
    hops = sign_in_via_app(browser, stack.tessera, app, user)
    arrived = app.ticket_hops(hops)
    assert len(arrived) == 1, describe(hops)
    return ticket_in(arrived[0].url)


def signed_in_user(browser: Browser, app: App) -> str | None:
    """Who the protected page shows to this browser (one request, no redirects followed)."""
    hop = browser.get(app.protected_url)
    who = hop.whoami()
    if who is not None:
        return who["user"]
    assert hop.is_redirect, f"unexpected answer from the protected page: {hop.describe()}\n{hop.text[:1000]}"
    return None


def parse_logout_request(xml: str) -> dict[str, str | None]:
    root = etree.fromstring(xml.encode("utf-8"))
    return {
        "root": root.tag,
        "name_id": root.findtext(f"{{{SAML}}}NameID"),
        "session_index": root.findtext(f"{{{SAMLP}}}SessionIndex"),
    }


def logout_posts() -> list[django_app.Received]:
    return [r for r in django_app.received() if r.method == "POST" and r.logout_request is not None]


def logout_posts_for(ticket: str) -> list[django_app.Received]:
    found = []
    for post in logout_posts():
        try:
            if parse_logout_request(post.logout_request)["session_index"] == ticket:
                found.append(post)
        except etree.XMLSyntaxError:
            pass
    return found


def slo_diagnostics() -> str:
    posts = logout_posts()
    lines = [f"  POST {p.target} -> {p.status}: logoutRequest={p.logout_request!r}" for p in posts]
    return "logout requests the Django app received:\n" + ("\n".join(lines) or "  (none)")


def wait_until_signed_out(browser: Browser, app: App, user: User, ticket: str) -> None:
    """Poll (bounded) until the browser's Django session no longer opens the protected page."""
    deadline = time.monotonic() + SLO_TIMEOUT
    while True:
        shown = signed_in_user(browser, app)
        if shown is None:
            return
        assert shown == user.name, f"the protected page shows {shown!r}, not {user.name!r}"
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"the Django session of {user.name} (ticket {ticket}) still opens the protected page "
                f"{SLO_TIMEOUT}s after the tessera session ended\n{slo_diagnostics()}"
            )
        time.sleep(POLL_INTERVAL)


def assert_signed_out(browser: Browser, stack, app: App, user: User, ticket: str, session_key: str) -> None:
    """The Django session is gone: the page sends the browser back to CAS, the row is
    deleted, and the logout request tessera sent was the one for this ticket."""
    at_tessera = lambda url: url.startswith(stack.tessera.root)  # noqa: E731
    wait_until_signed_out(browser, app, user, ticket)

    hops = browser.follow(app.protected_url, stop=at_tessera)
    assert hops[-1].is_redirect and hops[-1].location.startswith(stack.tessera.url("login")), describe(hops)
    assert query_params(hops[-1].location).get("service") == service_url(app), describe(hops)
    assert not django_app.session_row_exists(session_key), "the django_session row is still there"
    assert django_app.session_ticket(session_key) is None, "the SessionTicket row is still there"

    posts = logout_posts_for(ticket)
    assert posts, f"no logout request carried SessionIndex {ticket}\n{slo_diagnostics()}"
    post = posts[0]
    # Sent to the service URL exactly as stored, query string included.
    assert post.target == SERVICE_TARGET, slo_diagnostics()
    parsed = parse_logout_request(post.logout_request)
    assert parsed["root"] == f"{{{SAMLP}}}LogoutRequest", post.logout_request
    assert parsed["name_id"] == user.name, post.logout_request
    # django-cas-ng's login view answers a logout request with a redirect to `next`.
    assert post.status == 302, slo_diagnostics()


# --------------------------------------------------------------------------
# tests


def test_signing_in_through_tessera_shows_the_user_on_the_django_page(stack, django, browser):
    hops = sign_in_via_app(browser, stack.tessera, django, ALICE)

    # /profile/ -> django-cas-ng's login view -> tessera's /cas/login?service=<login view?next=>
    assert hops[0].is_redirect and urlsplit(hops[0].location).path == django_app.LOGIN_PATH, describe(hops)
    to_cas = next(h for h in hops if h.is_redirect and h.location.startswith(stack.tessera.url("login")))
    assert query_params(to_cas.location) == {"service": service_url(django)}, describe(hops)
    arrived = django.ticket_hops(hops)
    assert len(arrived) == 1, describe(hops)
    ticket = ticket_in(arrived[0].url)
    assert arrived[0].url == service_url(django) + "&ticket=" + ticket, describe(hops)

    who = hops[-1].whoami()
    assert who["client"] == "django-cas-ng"
    assert who["user"] == "alice"
    assert_alice_attributes(who["attributes"])

    # django-cas-ng (python-cas CASClientV3) validated it at /cas/p3/serviceValidate.
    checked = [v for v in django_app.validations() if query_params(v.url).get("ticket") == ticket]
    assert len(checked) == 1, django_app.validations()
    assert checked[0].method == "GET" and checked[0].status == 200, checked
    assert urlsplit(checked[0].url).path == "/cas/p3/serviceValidate", checked
    assert query_params(checked[0].url)["service"] == service_url(django), checked

    session_key = django_session_key(browser)
    assert django_app.session_row_exists(session_key)
    assert django_app.session_ticket(session_key) == ticket


@pytest.mark.parametrize("where", ["tessera-logout-page", "python-cas-app-sign-out"])
def test_logging_out_at_tessera_ends_the_django_session_through_the_back_channel(
    stack, django, browser, where
):
    ticket = sign_in(browser, stack, django, ALICE)
    session_key = django_session_key(browser)
    assert signed_in_user(browser, django) == "alice"

    if where == "tessera-logout-page":
        hops = browser.follow(stack.tessera.url("logout"))
        assert hops[-1].status == 200, describe(hops)
    else:
        other = stack.apps["python-cas"]
        sso = browser.follow(other.protected_url)
        assert not any(h.shows_login_form for h in sso), f"expected single sign-on:\n{describe(sso)}"
        assert sso[-1].whoami()["user"] == "alice", describe(sso)
        hops = browser.follow(other.logout_url)
        assert any(h.url.startswith(stack.tessera.url("logout")) for h in hops), describe(hops)
        assert hops[-1].url == other.after_logout_url, describe(hops)
    assert browser.cookie("TGC") is None, "tessera's logout did not clear the TGC"

    assert_signed_out(browser, stack, django, ALICE, ticket, session_key)


def test_revoking_the_session_from_the_cli_ends_the_django_session(stack, django, browser):
    ticket = sign_in(browser, stack, django, REVOKED)
    session_key = django_session_key(browser)
    listed = stack.tessera.cli("session", "list", "--user", REVOKED.name).stdout.decode()
    assert len(listed.splitlines()) == 1, listed

    result = stack.tessera.cli("session", "revoke", "--user", REVOKED.name)

    out = result.stdout.decode()
    summary = SLO_SUMMARY_RE.search(out)
    assert summary, f"no single-logout summary in the output:\n{out}"
    assert (int(summary[1]), int(summary[2])) == (1, 0), out
    assert_signed_out(browser, stack, django, REVOKED, ticket, session_key)
    after = stack.tessera.cli("session", "list", "--user", REVOKED.name).stdout.decode()
    assert after.strip() == "", f"the session is still listed:\n{after}"


def test_a_live_session_keeps_showing_the_user_while_another_one_is_logged_out(
    stack, django, new_browser
):
    kept, ended = new_browser(), new_browser()
    kept_ticket = sign_in(kept, stack, django, ALICE)
    kept_key = django_session_key(kept)
    ended_ticket = sign_in(ended, stack, django, ALICE)
    ended_key = django_session_key(ended)
    assert kept_key != ended_key and kept_ticket != ended_ticket
    for _ in range(3):
        assert signed_in_user(kept, django) == "alice"

    # The same user's other tessera session ends; only its own Django session may go.
    assert ended.follow(stack.tessera.url("logout"))[-1].status == 200
    assert_signed_out(ended, stack, django, ALICE, ended_ticket, ended_key)

    assert signed_in_user(kept, django) == "alice"
    assert django_app.session_row_exists(kept_key)
    assert django_app.session_ticket(kept_key) == kept_ticket
    assert logout_posts_for(kept_ticket) == [], slo_diagnostics()
