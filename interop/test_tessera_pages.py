"""Tessera's own pages and answers, as a browser and plain HTTP see them:
the login form, the /cas root redirect, refusals, the TGC cookie, logout."""

from __future__ import annotations

import copy
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from cas import CASClientV2, CASClientV3

from harness import ALICE, HTTP_TIMEOUT, ZOE, login_for_ticket


def login_url(stack, service: str) -> str:
    return stack.tessera.url("login") + "?" + urlencode({"service": service})


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def test_the_login_page_is_a_single_post_form_that_echoes_the_service(stack, browser):
    service = stack.direct_service("form-shape?a=1&b=two%20words")

    page = browser.get(login_url(stack, service))

    assert page.status == 200
    assert page.response.headers["Content-Type"].startswith("text/html")
    form = page.login_form  # exactly one <form>
    assert form.method == "post"
    assert form.action, "the form needs an explicit action"
    assert form.input_types.get("username") in ("text", "email")
    assert form.input_types.get("password") == "password"
    assert form.value("service") == service


@pytest.mark.parametrize("root", ["/cas", "/cas/"])
def test_the_cas_root_redirects_to_login_keeping_the_query(stack, browser, root):
    service = stack.direct_service("flask-cas-style")
    requested = stack.tessera.root + root + "?" + urlencode({"service": service})

    hop = browser.get(requested)

    assert hop.status == 302
    target = urlsplit(hop.location)
    assert target.path == "/cas/login"
    assert parse_qsl(target.query) == [("service", service)]


def test_an_unregistered_service_is_refused_with_403_and_no_ticket(stack, browser):
    service = stack.unregistered_service("callback")

    page = browser.get(login_url(stack, service))

    assert page.status == 403
    assert page.location is None


def test_an_unregistered_service_gets_no_ticket_even_with_a_session(stack, browser):
    login_for_ticket(browser, login_url(stack, stack.direct_service("sso")), stack.direct_service("sso"), ALICE)

    page = browser.get(login_url(stack, stack.unregistered_service("callback")))

    assert page.status == 403
    assert page.location is None


def test_a_successful_login_sets_the_tgc_cookie_for_cas_and_oidc(stack, browser):
    service = stack.direct_service("cookie")

    login_for_ticket(browser, login_url(stack, service), service, ALICE)

    tgc = browser.cookie("TGC")
    assert tgc is not None
    # The SSO session serves /cas and /oidc alike, so the cookie covers the site.
    assert tgc.path == "/"
    assert tgc.value


def test_a_password_with_spaces_and_form_metacharacters_is_accepted(stack, browser):
    service = stack.direct_service("tricky-password")

    ticket = login_for_ticket(browser, login_url(stack, service), service, ZOE)

    assert ticket.startswith("ST-")


def test_validation_failures_are_http_200_failure_documents(stack, http):
    params = {"service": stack.direct_service("failures"), "ticket": "ST-doesnotexist0000000000000"}

    for endpoint in ("serviceValidate", "p3/serviceValidate"):
        answer = http.get(stack.tessera.url(endpoint), params=params, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 200, endpoint
        assert '<cas:authenticationFailure code="INVALID_TICKET">' in answer.text, answer.text

    answer = http.get(stack.tessera.url("validate"), params=params, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 200
    assert answer.text == "no\n"


# -- logout ------------------------------------------------------------------

# python-cas CASClientV2 sends `url=`, CASClientV3 sends `service=`.
LOGOUT_CLIENTS = pytest.mark.parametrize(
    "client_class", [CASClientV2, CASClientV3], ids=["url-param", "service-param"]
)


@LOGOUT_CLIENTS
def test_logout_redirects_to_a_registered_url(stack, browser, client_class):
    back = stack.direct_service("signed-out")
    client = client_class(service_url=back, server_url=stack.tessera.base + "/")
    login_for_ticket(browser, client.get_login_url(), back, ALICE)

    hop = browser.get(client.get_logout_url(back))

    assert hop.status == 302
    assert hop.location == back


@LOGOUT_CLIENTS
@pytest.mark.parametrize(
    "target",
    ["https://evil.example.org/phish", "unregistered-loopback"],
    ids=["external", "unregistered-loopback"],
)
def test_logout_does_not_redirect_to_an_unregistered_url(stack, browser, client_class, target):
    if target == "unregistered-loopback":
        target = stack.unregistered_service("after-logout")
    client = client_class(service_url=stack.direct_service("x"), server_url=stack.tessera.base + "/")
    login_for_ticket(browser, client.get_login_url(), client.service_url, ALICE)

    hop = browser.get(client.get_logout_url(target))

    assert hop.status == 200
    assert hop.location is None


def test_logout_expires_the_tgc_cookie(stack, browser):
    service = stack.direct_service("expire-cookie")
    login_for_ticket(browser, login_url(stack, service), service, ALICE)
    assert browser.cookie("TGC") is not None

    browser.get(stack.tessera.url("logout"))

    assert browser.cookie("TGC") is None


def test_a_stale_tgc_gives_no_single_sign_on_after_logout(stack, browser):
    service = stack.direct_service("stale-cookie")
    login_for_ticket(browser, login_url(stack, service), service, ALICE)
    stale = copy.copy(browser.cookie("TGC"))

    logout = browser.get(stack.tessera.url("logout"))
    assert logout.status == 200
    browser.session.cookies.set_cookie(stale)  # as if the browser had kept it
    page = browser.get(login_url(stack, service))

    assert page.status == 200, page.describe()
    assert page.shows_login_form
    assert page.location is None
