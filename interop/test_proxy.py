"""Proxy authentication with python-cas 1.7.2 (``CASClientV2``, ``CASClientV3``).

Services registered for this module on the plain local service page:

- ``proxy-portal`` (``/proxy-portal/...``) may obtain proxy-granting tickets
  through callbacks (``--proxy-callback``) on either of the module's two https
  callback servers;
- ``proxy-backend`` (``/proxy-backend/...``) accepts proxy tickets (``--proxy-target``).

The callback servers answer like django-cas-ng's ``CallbackView``: they store
``pgtIou -> pgtId`` and answer 200. One has a certificate issued by the CA the
session's tessera trusts (``[proxy] ca_file``); the other a self-signed one.

What python-cas offers, and what these tests do with ``requests`` instead:

- ``verify_ticket`` with ``proxy_callback`` sends ``pgtUrl`` and returns the
  PGTIOU; looking the PGT up by PGTIOU is the application's job (django-cas-ng
  reads its callback table), so the tests read the callback server's store.
- ``get_proxy_ticket(pgt)`` always asks ``/proxy`` for a PT for the client's
  *own* ``service_url``. A PT for the back end therefore comes from a client
  configured with the back end's service URL.
- python-cas has no ``/proxyValidate`` client (V2 and V3 ``verify_ticket`` call
  ``serviceValidate`` / ``p3/serviceValidate``), and its response parser ignores
  ``<cas:proxies>`` and failure codes. PTs are validated with ``requests``; the
  answer is then also handed to python-cas's own parser (``verify_response``).
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from cas import CASClientV2, CASClientV3, CASError
from lxml import etree

from harness import (
    ALICE,
    HTTP_TIMEOUT,
    PgtCallbackServer,
    assert_alice_attributes,
    login_for_ticket,
)

CLIENTS = {2: CASClientV2, 3: CASClientV3}
VERSIONS = pytest.mark.parametrize("version", [2, 3], ids=lambda v: f"CASClientV{v}")

# The endpoints python-cas's clients use, and their proxy-ticket counterparts.
SERVICE_VALIDATE = {2: "serviceValidate", 3: "p3/serviceValidate"}
PROXY_VALIDATE = {2: "proxyValidate", 3: "p3/proxyValidate"}

# Each version gets its own pgtUrl shape: V3's has a query of its own, which the
# callback parameters must be appended to with '&' (and which the proxy chain
# must list verbatim).
CALLBACK_PATH = {2: "/pgt-callback", 3: "/pgt-callback/v3?client=python-cas&x=%2F"}

PGTIOU_RE = re.compile(r"^PGTIOU-[A-Za-z0-9-]+$")
PGT_RE = re.compile(r"^PGT-[A-Za-z0-9-]+$")
PT_RE = re.compile(r"^PT-[A-Za-z0-9-]+$")
CAS = {"cas": "http://www.yale.edu/tp/cas"}

HANDSHAKE_WAIT = 5  # seconds for the refused callback's server side to see the failed handshake


class ProxySetup:
    def __init__(self, stack, trusted: PgtCallbackServer, untrusted: PgtCallbackServer):
        self.stack = stack
        self.trusted = trusted
        self.untrusted = untrusted

    def portal(self, path: str) -> str:
        return self.stack.sink_server.url("/proxy-portal/" + path.lstrip("/"))

    def backend(self, path: str) -> str:
        return self.stack.sink_server.url("/proxy-backend/" + path.lstrip("/"))

    def client(self, version: int, service: str, proxy_callback: str | None = None):
        return CLIENTS[version](
            service_url=service,
            server_url=self.stack.tessera.base + "/",
            proxy_callback=proxy_callback,
        )


@pytest.fixture(scope="module")
def proxy(stack):
    trusted = PgtCallbackServer("trusted", stack.pki.trusted)
    untrusted = PgtCallbackServer("untrusted", stack.pki.untrusted)
    try:
        sink_port = stack.sink_server.port
        # Both callback servers are allowed: a refused untrusted callback must be
        # down to its certificate, not to the registry.
        callbacks = rf"https://127\.0\.0\.1:(?:{trusted.port}|{untrusted.port})/pgt-callback.*"
        stack.tessera.add_service(
            "proxy-portal", rf"http://127\.0\.0\.1:{sink_port}/proxy-portal/.*", proxy_callback=callbacks
        )
        stack.tessera.add_service(
            "proxy-backend", rf"http://127\.0\.0\.1:{sink_port}/proxy-backend/.*", proxy_target=True
        )
        yield ProxySetup(stack, trusted, untrusted)
    finally:
        trusted.close()
        untrusted.close()


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy from the environment
    yield session
    session.close()


# --------------------------------------------------------------------------
# helpers


def cas_get(http: requests.Session, stack, endpoint: str, **params) -> etree._Element:
    """GET a tessera CAS endpoint and parse its XML answer (which must come with HTTP 200)."""
    response = http.get(stack.tessera.url(endpoint), params=params, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, f"GET {response.url} -> {response.status_code}\n{response.text}"
    return etree.fromstring(response.content)


def portal_pgt(proxy: ProxySetup, browser, version: int, path: str) -> tuple[str, str]:
    """Sign in to the portal, validate its ticket with the trusted pgtUrl; (pgtUrl, PGT)."""
    pgt_url = proxy.trusted.url(CALLBACK_PATH[version])
    portal = proxy.client(version, proxy.portal(path), proxy_callback=pgt_url)
    ticket = login_for_ticket(browser, portal.get_login_url(), portal.service_url, ALICE)
    user, _, pgtiou = portal.verify_ticket(ticket)
    assert user == "alice"
    assert pgtiou is not None, "no PGTIOU: the trusted callback was not accepted"
    pgt = proxy.trusted.snapshot()[0].get(pgtiou)
    assert pgt is not None, f"the callback has no PGT for {pgtiou}"
    return pgt_url, pgt


def failure_code(root: etree._Element, element: str) -> str | None:
    found = root.findall(f"cas:{element}", CAS)
    return found[0].get("code") if len(found) == 1 else None


# --------------------------------------------------------------------------
# the certificates the tests rely on


def test_the_callback_certificates_are_trusted_only_as_intended(stack, proxy, http):
    """Only the trusted callback's certificate chains to the CA tessera is given."""
    ca = str(stack.pki.ca_cert)

    assert http.get(proxy.trusted.url("/pgt-callback"), verify=ca, timeout=HTTP_TIMEOUT).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        http.get(proxy.untrusted.url("/pgt-callback"), verify=ca, timeout=HTTP_TIMEOUT)
    # The untrusted server does serve, for a client that trusts its certificate.
    untrusted_cert = str(stack.pki.untrusted.cert)
    assert http.get(proxy.untrusted.url("/pgt-callback"), verify=untrusted_cert, timeout=HTTP_TIMEOUT).status_code == 200


# --------------------------------------------------------------------------
# the proxy flow


@VERSIONS
def test_a_proxy_ticket_from_the_portal_pgt_validates_at_the_backend(stack, proxy, browser, http, version):
    pgt_url = proxy.trusted.url(CALLBACK_PATH[version])
    portal = proxy.client(version, proxy.portal(f"v{version}/login?next=%2Fdash"), proxy_callback=pgt_url)
    ticket = login_for_ticket(browser, portal.get_login_url(), portal.service_url, ALICE)
    seen_before = len(proxy.trusted.snapshot()[1])

    # python-cas sends pgtUrl and returns the PGTIOU.
    user, attributes, pgtiou = portal.verify_ticket(ticket)

    assert user == "alice"
    assert_alice_attributes(attributes)
    assert pgtiou is not None and PGTIOU_RE.match(pgtiou), pgtiou

    # Tessera called back before answering: the PGT is there as soon as verify_ticket returns.
    pgts, seen, _ = proxy.trusted.snapshot()
    assert pgtiou in pgts, f"the callback has no PGT for {pgtiou}: {pgts}"
    pgt = pgts[pgtiou]
    assert PGT_RE.match(pgt), pgt
    callbacks = seen[seen_before:]
    assert len(callbacks) == 1, callbacks
    joiner = "&" if "?" in CALLBACK_PATH[version] else "?"
    assert callbacks[0].target == f"{CALLBACK_PATH[version]}{joiner}pgtIou={pgtiou}&pgtId={pgt}"
    assert "Cookie" not in callbacks[0].headers, callbacks[0].headers

    # python-cas's get_proxy_ticket asks for a PT for the client's own service_url,
    # so the back end's PT comes from a client made for the back end's URL.
    backend = proxy.client(version, proxy.backend(f"v{version}/api?q=1"))
    pt = backend.get_proxy_ticket(pgt)

    assert pt is not None and PT_RE.match(pt), pt

    # No python-cas client for /proxyValidate: requests, then python-cas's parser on the same answer.
    response = http.get(
        stack.tessera.url(PROXY_VALIDATE[version]),
        params={"service": backend.service_url, "ticket": pt},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    success = root.find("cas:authenticationSuccess", CAS)
    assert success is not None, response.text
    assert success.findtext("cas:user", namespaces=CAS) == "alice"
    assert [p.text for p in success.findall("cas:proxies/cas:proxy", CAS)] == [pgt_url], response.text
    assert success.find("cas:proxyGrantingTicket", CAS) is None, response.text

    user, attributes, pgtiou = type(backend).verify_response(response.content)
    assert user == "alice"
    assert_alice_attributes(attributes)
    assert pgtiou is None

    # A proxy ticket is single-use like a service ticket.
    again = cas_get(http, stack, PROXY_VALIDATE[version], service=backend.service_url, ticket=pt)
    assert failure_code(again, "authenticationFailure") == "INVALID_TICKET"


@VERSIONS
def test_a_proxy_ticket_is_refused_at_service_validate(stack, proxy, browser, http, version):
    _, pgt = portal_pgt(proxy, browser, version, f"v{version}/spec")
    backend = proxy.client(version, proxy.backend(f"v{version}/spec"))

    # The PGT is reusable: one PT per attempt below.
    pt = backend.get_proxy_ticket(pgt)
    root = cas_get(http, stack, SERVICE_VALIDATE[version], service=backend.service_url, ticket=pt)
    assert failure_code(root, "authenticationFailure") == "INVALID_TICKET_SPEC", etree.tostring(root)

    # python-cas's own verify_ticket (which uses that endpoint) sees a failure; it reads no code.
    user, _, _ = backend.verify_ticket(backend.get_proxy_ticket(pgt))
    assert user is None


@VERSIONS
def test_a_callback_with_an_untrusted_certificate_gets_no_pgt(stack, proxy, browser, version):
    pgt_url = proxy.untrusted.url(CALLBACK_PATH[version])
    portal = proxy.client(version, proxy.portal(f"v{version}/untrusted"), proxy_callback=pgt_url)
    ticket = login_for_ticket(browser, portal.get_login_url(), portal.service_url, ALICE)
    _, seen_before, failures_before = proxy.untrusted.snapshot()
    trusted_seen_before = len(proxy.trusted.snapshot()[1])

    user, attributes, pgtiou = portal.verify_ticket(ticket)

    # The ticket validates; only the PGT is withheld.
    assert user == "alice"
    assert_alice_attributes(attributes)
    assert pgtiou is None

    # Tessera did try the callback: its TLS handshake failed, so no request reached the server.
    deadline = time.monotonic() + HANDSHAKE_WAIT
    while True:
        pgts, seen, failures = proxy.untrusted.snapshot()
        if len(failures) > len(failures_before) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(failures) == len(failures_before) + 1, (
        f"expected tessera's handshake with the untrusted callback to fail once: {failures}"
    )
    # The alert tessera's TLS client sent: it does not know the certificate's issuer.
    assert "unknown ca" in failures[-1].lower(), failures[-1]
    assert seen == seen_before, seen[len(seen_before):]
    assert pgts == {}
    assert len(proxy.trusted.snapshot()[1]) == trusted_seen_before


def test_python_cas_cannot_get_a_proxy_ticket_for_a_service_that_takes_none(stack, proxy, browser, http):
    """The portal is no proxy target: tessera answers proxyFailure, which python-cas
    does not read (it looks for authenticationFailure) and reports as a bad HTTP code."""
    _, pgt = portal_pgt(proxy, browser, 3, "v3/self")
    portal = proxy.client(3, proxy.portal("v3/self"))

    with pytest.raises(CASError, match="Bad http code 200"):
        portal.get_proxy_ticket(pgt)

    root = cas_get(http, stack, "proxy", pgt=pgt, targetService=portal.service_url)
    assert failure_code(root, "proxyFailure") == "UNAUTHORIZED_SERVICE", etree.tostring(root)
