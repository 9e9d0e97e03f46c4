"""phpCAS 1.6.0 (Debian's php-cas) in a PHP application run by PHP's built-in server.

phpCAS only speaks https to its CAS server, so these tests run against the second tessera of
``conftest.https_tessera``, whose certificate phpCAS checks against the run's CA
(``setCasServerCACert``). Three instances of the application use CAS 3.0, CAS 2.0 and SAML 1.1
validation; each is a registered service with back-channel single logout.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from harness import (
    ALICE,
    Browser,
    PhpServer,
    Tessera,
    assert_alice_attributes,
    describe,
    query_params,
    sign_in_at,
)

APP_SCRIPT = Path(__file__).resolve().parent / "apps" / "phpcas" / "app.php"
PROTOCOLS = ("3.0", "2.0", "saml")
SLO_WAIT = 10  # seconds for a back-channel logout to reach an application


@pytest.fixture(scope="module")
def phpcas(stack, https_tessera, tmp_path_factory):
    """One PHP application per protocol, each registered with the https tessera."""
    tessera = https_tessera
    apps: dict[str, PhpServer] = {}
    try:
        port = urlsplit(tessera.root).port
        for protocol in PROTOCOLS:
            env = {
                "PHPCAS_PROTOCOL": protocol,
                "TESSERA_HOST": "127.0.0.1",
                "TESSERA_PORT": str(port),
                "TESSERA_CA": str(stack.pki.ca_cert),
            }
            workdir = tmp_path_factory.mktemp(f"php-{protocol}")
            app = PhpServer(f"phpcas-{protocol}", APP_SCRIPT, workdir, env)
            apps[protocol] = app
            tessera.add_service(
                f"phpcas-{protocol}", rf"http://127\.0\.0\.1:{urlsplit(app.root).port}/.*"
            )
        yield tessera, apps
    finally:
        for app in apps.values():
            app.close()


def log_in(browser: Browser, tessera: Tessera, app: PhpServer, path: str = "/protected") -> dict:
    """Opens ``path`` of the application, signs in on tessera's form, returns what the page shows."""
    return sign_in_at(browser, tessera, app.url(path), ALICE)


def shows(browser: Browser, app: PhpServer, path: str = "/protected") -> dict | None:
    """What ``path`` shows this browser without a login: the user, or None when sent to log in."""
    hop = browser.get(app.url(path))
    return hop.whoami()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_phpcas_logs_in_and_reads_the_attributes(stack, phpcas, protocol):
    tessera, apps = phpcas
    browser = Browser(stack.pki.ca_cert)
    who = log_in(browser, tessera, apps[protocol])
    assert who["user"] == "alice", who
    assert_alice_attributes(who["attributes"])
    browser.close()


def test_phpcas_single_sign_on_then_single_logout_everywhere(stack, phpcas):
    tessera, apps = phpcas
    browser = Browser(stack.pki.ca_cert)
    assert log_in(browser, tessera, apps["3.0"])["user"] == "alice"
    # The other applications get in on the session, without a password.
    for protocol in ("2.0", "saml"):
        hops = browser.follow(apps[protocol].url("/protected"))
        who = hops[-1].whoami()
        assert who is not None and who["user"] == "alice", describe(hops)
        assert not any(hop.shows_login_form for hop in hops), describe(hops)

    # Each application has a PHP session of its own.
    assert all(browser.cookie(app.cookie) for app in apps.values()), browser.session.cookies

    # Logging out at one application logs out of tessera, which tells every application.
    hops = browser.follow(apps["3.0"].url("/logout"))
    assert hops[-1].url == apps["3.0"].url("/bye"), describe(hops)
    assert any(
        hop.url.startswith(tessera.url("/logout"))
        and query_params(hop.url).get("service") == apps["3.0"].url("/bye")
        for hop in hops
    ), describe(hops)
    deadline = time.monotonic() + SLO_WAIT
    for protocol in ("2.0", "saml"):
        # phpCAS ends the PHP session whose ticket the logout request names.
        while shows(browser, apps[protocol]) is not None:
            assert time.monotonic() < deadline, (
                f"{protocol}: still logged in after tessera's single logout\n"
                + tessera.log_tail()
                + "\n".join(apps[protocol].log)
            )
            time.sleep(0.2)
        received = apps[protocol].sessions / "logout-requests"
        assert received.is_file() and "<samlp:SessionIndex>ST-" in received.read_text(), (
            f"{protocol}: no logout request reached the application"
        )
    hop = browser.get(apps["2.0"].url("/protected"))
    assert hop.location and hop.location.startswith(tessera.base + "/login"), hop.describe()
    browser.close()


def test_phpcas_gateway_lets_an_anonymous_visitor_through(stack, phpcas):
    tessera, apps = phpcas
    browser = Browser(stack.pki.ca_cert)
    hops = browser.follow(apps["3.0"].url("/maybe"))
    assert any(
        hop.url.startswith(tessera.base + "/login") and query_params(hop.url).get("gateway") == "true"
        for hop in hops
    ), describe(hops)
    assert not any(hop.shows_login_form for hop in hops), describe(hops)
    assert hops[-1].status == 200 and hops[-1].whoami() is None, describe(hops)
    # With a session, the same page knows the user.
    log_in(browser, tessera, apps["3.0"])
    hops = browser.follow(apps["3.0"].url("/maybe"))
    assert hops[-1].whoami()["user"] == "alice", describe(hops)
    browser.close()


def test_phpcas_logout_link_reaches_tessera_with_the_service_to_return_to(stack, phpcas):
    tessera, apps = phpcas
    browser = Browser(stack.pki.ca_cert)
    log_in(browser, tessera, apps["saml"])
    hop = browser.get(apps["saml"].url("/logout"))
    assert hop.location == f"{tessera.base}/logout?service={quote(apps['saml'].url('/bye'), safe='')}", (
        hop.describe()
    )
    browser.close()
