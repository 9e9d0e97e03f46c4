"""OpenID Connect: real relying parties signing in through tessera's provider (``/oidc``).

- Flask-pyoidc 3.14.3 (``apps/flask_pyoidc_app.py``): code flow, ``client_secret_basic``,
  userinfo at login, forced refresh, RP-initiated logout.
- Authlib 1.9.9's Flask client (``apps/authlib_app.py``): code flow with PKCE (S256) and
  ``client_secret_basic``, ID token checks by Authlib, ``userinfo()``, ``logout_redirect``
  and ``validate_logout_response``.
- One SSO session across protocols: django-cas-ng (CAS) and the two OIDC apps share one
  tessera login; ``/cas/logout`` sends CAS single logout to Django and back-channel
  logout tokens to the OIDC clients' ``backchannel_logout_uri``. The receiver is this
  module's :class:`BackchannelReceiver`: it verifies each ``logout_token`` with joserfc
  (Authlib's JOSE) against tessera's JWKS.
- Refusals: a wrong client secret at the token endpoint, unregistered redirect URIs.

The clients are ``[[client]]`` tables in tessera's config (``conftest.oidc_clients``);
their ports are bound by the session ``stack`` fixture and the apps are mounted here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from apps import authlib_app, django_app, flask_pyoidc_app
from conftest import BACKCHANNEL_PATH
from harness import (
    ALICE,
    App,
    AppServer,
    Browser,
    Hop,
    User,
    describe,
    query_params,
    sign_in_via_app,
)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TIMEOUT = 10  # seconds for a back-channel logout to arrive / take effect
POLL_INTERVAL = 0.05

# Signs in only where a test logs the whole SSO session out through CAS.
OLIVIA = User(
    "olivia",
    "olivia-oidc-and-cas-5",
    (("mail", "olivia@example.org"), ("displayName", "Olivia Example")),
)
# Only ever reaches the app with the wrong client secret.
WENDY = User("wendy", "wendy-wrong-secret-6", (("mail", "wendy@example.org"),))


# --------------------------------------------------------------------------
# The back-channel logout receiver


@dataclass(frozen=True)
class LogoutTokenReceipt:
    """One POST the receiver got, and what it made of it."""

    client_id: str  # from the path: which client's backchannel_logout_uri was called
    content_type: str
    accepted: bool
    reason: str  # why it was refused ("" when accepted)
    header: dict | None
    claims: dict | None


class BackchannelReceiver:
    """A relying party's back-channel logout endpoint (Back-Channel Logout 1.0 §2.5-2.8),
    at ``BACKCHANNEL_PATH + client_id``.

    It validates the ``logout_token`` as §2.6 says: a JWT signed with a key from the
    provider's JWKS (fetched again for every token, so a new key is found), ``alg``
    among discovery's ID token algs, ``typ`` ``logout+jwt``, ``iss`` the issuer, ``aud``
    this client, ``iat``, ``jti``, ``sub`` and ``sid`` present, ``events`` an object
    holding the back-channel logout event (itself an object), and no ``nonce``. It
    answers 200 when the token is valid and 400 otherwise, and records every POST.
    """

    def __init__(self, issuer: str, jwks_uri: str, algorithms: list[str]):
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.algorithms = algorithms
        self._receipts: list[LogoutTokenReceipt] = []
        self._lock = threading.Lock()

    def receipts(self) -> list[LogoutTokenReceipt]:
        with self._lock:
            return list(self._receipts)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] != "POST" or not path.startswith(BACKCHANNEL_PATH):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        client_id = path[len(BACKCHANNEL_PATH):]
        content_type = environ.get("CONTENT_TYPE", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        header = claims = None
        try:
            if not content_type.lower().startswith("application/x-www-form-urlencoded"):
                raise ValueError(f"unexpected Content-Type {content_type!r}")
            fields = parse_qsl(body, keep_blank_values=True)
            tokens = [value for key, value in fields if key == "logout_token"]
            if len(tokens) != 1:
                raise ValueError(f"expected one logout_token, got {len(tokens)}")
            header, claims = self.verify(tokens[0], client_id)
            accepted, reason = True, ""
        except Exception as exc:  # every refusal is recorded and answered 400
            accepted, reason = False, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._receipts.append(
                LogoutTokenReceipt(client_id, content_type, accepted, reason, header, claims)
            )
        status = "200 OK" if accepted else "400 Bad Request"
        start_response(status, [("Content-Type", "text/plain"), ("Cache-Control", "no-cache, no-store")])
        return [b"" if accepted else reason.encode("utf-8")]

    def verify(self, token: str, client_id: str) -> tuple[dict, dict]:
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(self.jwks_uri, timeout=10)
        response.raise_for_status()
        keys = KeySet.import_key_set(response.json())
        decoded = jwt.decode(token, keys, algorithms=self.algorithms)
        header, claims = dict(decoded.header), dict(decoded.claims)
        if header.get("typ") != "logout+jwt":
            raise ValueError(f"typ is {header.get('typ')!r}, not 'logout+jwt'")
        if not header.get("kid"):
            raise ValueError("the JOSE header has no kid")
        JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": client_id},
            iat={"essential": True},
            jti={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
            events={"essential": True},
        ).validate(claims)
        if isinstance(claims["aud"], list) and claims["aud"] != [client_id]:
            raise ValueError(f"aud holds more than this client: {claims['aud']!r}")
        events = claims["events"]
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise ValueError(f"events must be an object holding {BACKCHANNEL_EVENT} as an object: {events!r}")
        if "nonce" in claims:
            raise ValueError("a logout token must not carry a nonce")
        return header, claims


# --------------------------------------------------------------------------
# fixtures


@dataclass
class Oidc:
    issuer: str
    discovery: dict
    pyoidc: App
    pyoidc_client: object  # harness.OidcClientConfig
    wrong_secret: App
    authlib: App
    authlib_client: object
    receiver: BackchannelReceiver
    django: App


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def oidc(stack, tmp_path_factory) -> Oidc:
    tessera = stack.tessera
    with plain_session() as session:
        response = session.get(tessera.issuer + "/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200, f"discovery answered {response.status_code}:\n{response.text[:1000]}"
    discovery = response.json()
    assert discovery.get("issuer") == tessera.issuer, discovery

    for user in (OLIVIA, WENDY):
        tessera.add_user(user)
    servers = stack.oidc_servers
    pyoidc_client = stack.oidc_clients["flask-pyoidc"]
    authlib_client = stack.oidc_clients["authlib"]

    receiver = BackchannelReceiver(
        tessera.issuer, discovery["jwks_uri"], discovery["id_token_signing_alg_values_supported"]
    )
    servers["backchannel"].mount(receiver)
    servers["flask-pyoidc"].mount(
        flask_pyoidc_app.create_app(
            tessera.issuer, servers["flask-pyoidc"].root, pyoidc_client.id, pyoidc_client.secret
        )
    )
    servers["flask-pyoidc-wrong-secret"].mount(
        flask_pyoidc_app.create_app(
            tessera.issuer,
            servers["flask-pyoidc-wrong-secret"].root,
            pyoidc_client.id,
            "not-the-secret-" + secrets.token_urlsafe(24),
        )
    )
    servers["authlib"].mount(
        authlib_app.create_app(
            tessera.issuer, servers["authlib"].root, authlib_client.id, authlib_client.secret
        )
    )

    # django-cas-ng, for single logout across protocols (Django is configured once per
    # process, for this same tessera: see test_django_slo.py).
    django_server = AppServer("django-oidc")
    try:
        tessera.add_service("app-django-oidc", rf"http://127\.0\.0\.1:{django_server.port}/.*")
        django_server.mount(
            django_app.create_app(tessera.root, django_server.root, tmp_path_factory.mktemp("django"))
        )
        yield Oidc(
            issuer=tessera.issuer,
            discovery=discovery,
            pyoidc=App(flask_pyoidc_app.CLIENT, flask_pyoidc_app, servers["flask-pyoidc"]),
            pyoidc_client=pyoidc_client,
            wrong_secret=App("flask-pyoidc-wrong-secret", flask_pyoidc_app, servers["flask-pyoidc-wrong-secret"]),
            authlib=App(authlib_app.CLIENT, authlib_app, servers["authlib"]),
            authlib_client=authlib_client,
            receiver=receiver,
            django=App(django_app.CLIENT, django_app, django_server),
        )
    finally:
        django_server.close()


# --------------------------------------------------------------------------
# helpers


PAGE_JSON_RE = re.compile(r'<pre id="whoami">(.*?)</pre>', re.S)


def page_json(hop: Hop) -> dict | None:
    """The JSON an app page shows, whatever its status."""
    match = PAGE_JSON_RE.search(hop.text)
    return json.loads(html.unescape(match.group(1))) if match else None


def provider_calls(app: App) -> list:
    return list(app.server.app.extensions[flask_pyoidc_app.PROVIDER_CALLS])


def new_calls(app: App, before: int) -> list:
    return provider_calls(app)[before:]


def calls_to(calls: list, url: str) -> list:
    return [c for c in calls if c.url.split("?")[0] == url]


def first_hop(hops: list[Hop], url_prefix: str) -> Hop:
    found = [h for h in hops if h.url.startswith(url_prefix)]
    assert found, f"no request to {url_prefix}:\n{describe(hops)}"
    return found[0]


def without_query(url: str) -> str:
    return url.split("?", 1)[0]


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Header and claims of a compact JWT, unverified (the RP verified it)."""
    def part(segment: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, claims, _signature = token.split(".")
    return part(header), part(claims)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def sign_in(browser: Browser, stack, app: App, user: User = ALICE) -> list[Hop]:
    """Sign in through the app and tessera's form, and check the authorization
    response on the way: code, state as sent, iss (RFC 9207)."""
    hops = sign_in_via_app(browser, stack.tessera, app, user)
    check_authorization_round_trip(hops, stack.tessera, app)
    return hops


def check_authorization_round_trip(hops: list[Hop], tessera, app: App) -> tuple[dict, dict]:
    request = query_params(first_hop(hops, tessera.issuer + "/authorize").url)
    redirect_uri = app.url(app.module.REDIRECT_PATH)
    assert request["redirect_uri"] == redirect_uri, request
    back = first_hop(hops, redirect_uri)
    response = query_params(back.url)
    assert response.get("code"), describe(hops)
    assert response.get("state") == request["state"], describe(hops)
    assert response.get("iss") == tessera.issuer, describe(hops)
    assert "error" not in response, describe(hops)
    return request, response


def assert_sso_ended(browser: Browser, stack) -> None:
    """Tessera no longer knows the browser: no TGC, and /cas/login shows the form."""
    assert browser.cookie("TGC") is None, "tessera's logout did not clear the TGC"
    hops = browser.follow(stack.tessera.url("login"))
    assert hops[-1].status == 200 and hops[-1].shows_login_form, describe(hops)


def wait_for_receipts(receiver: BackchannelReceiver, sid: str, client_ids: set[str]) -> list[LogoutTokenReceipt]:
    """The receipts carrying ``sid``, once every client in ``client_ids`` got one (bounded)."""
    deadline = time.monotonic() + LOGOUT_TIMEOUT
    while True:
        receipts = receiver.receipts()
        mine = [r for r in receipts if r.claims and r.claims.get("sid") == sid]
        refused = [r for r in receipts if not r.accepted]
        assert not refused, "the receiver refused logout tokens:\n" + "\n".join(
            f"  {r.client_id}: {r.reason} header={r.header} claims={r.claims}" for r in refused
        )
        if {r.client_id for r in mine} >= client_ids:
            return mine
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"no logout token with sid {sid} for {sorted(client_ids - {r.client_id for r in mine})} "
                f"within {LOGOUT_TIMEOUT}s; the receiver got:\n"
                + "\n".join(f"  {r.client_id}: {r.claims}" for r in receipts)
            )
        time.sleep(POLL_INTERVAL)


# --------------------------------------------------------------------------
# discovery, as the two libraries read it


def test_discovery_names_every_endpoint_the_relying_parties_use(oidc, stack):
    meta = oidc.discovery
    issuer = stack.tessera.issuer
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"):
        assert meta.get(key, "").startswith(issuer + "/"), (key, meta.get(key))
    assert "RS256" in meta["id_token_signing_alg_values_supported"], meta
    assert "openid" in meta["scopes_supported"], meta
    assert meta.get("backchannel_logout_supported") is True, meta
    assert meta.get("backchannel_logout_session_supported") is True, meta
    assert "client_secret_basic" in meta.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    assert "S256" in meta.get("code_challenge_methods_supported", []), meta


# --------------------------------------------------------------------------
# Flask-pyoidc


def test_flask_pyoidc_signs_in_through_the_tessera_form(oidc, stack, browser):
    app, client = oidc.pyoidc, oidc.pyoidc_client
    before = len(provider_calls(app))

    hops = sign_in(browser, stack, app)

    request, _response = check_authorization_round_trip(hops, stack.tessera, app)
    assert request["client_id"] == client.id
    assert request["response_type"] == "code"
    assert request["scope"].split() == ["openid", "profile", "email"], request
    assert request.get("nonce"), request
    shown = page_json(hops[-1])
    assert shown["page"] == "protected" and shown["user"] == "alice", shown
    claims = shown["id_token"]
    assert claims["iss"] == stack.tessera.issuer
    assert claims["aud"] in (client.id, [client.id]), claims
    assert claims["nonce"] == request["nonce"], claims
    assert claims.get("sid"), f"the ID token has no sid: {claims}"
    assert isinstance(claims.get("auth_time"), int), claims
    header, _ = jwt_parts(shown["id_token_jwt"])
    assert header["alg"] in oidc.discovery["id_token_signing_alg_values_supported"] and header.get("kid"), header

    # Flask-pyoidc exchanged the code with client_secret_basic, then called userinfo.
    calls = new_calls(app, before)
    token = calls_to(calls, oidc.discovery["token_endpoint"])
    assert len(token) == 1, calls
    assert token[0].method == "POST" and token[0].status == 200, token[0]
    assert token[0].auth_scheme == "Basic" and token[0].basic_credentials == (client.id, client.secret)
    assert token[0].form["grant_type"] == "authorization_code"
    assert "client_secret" not in token[0].form
    userinfo = calls_to(calls, oidc.discovery["userinfo_endpoint"])
    assert [(c.method, c.status, c.auth_scheme) for c in userinfo] == [("GET", 200, "Bearer")], userinfo


def test_flask_pyoidc_profile_shows_the_userinfo_claims(oidc, stack, browser):
    app = oidc.pyoidc
    signed_in = page_json(sign_in(browser, stack, app)[-1])

    hop = browser.get(app.url(flask_pyoidc_app.PROFILE_PATH))

    assert hop.status == 200, hop.describe()
    userinfo = page_json(hop)["userinfo"]
    assert userinfo["sub"] == signed_in["id_token"]["sub"], userinfo
    assert userinfo["preferred_username"] == "alice", userinfo
    assert userinfo["name"] == "Alice Example", userinfo
    assert userinfo["email"] == "alice@example.org", userinfo
    assert userinfo.get("email_verified") is True, userinfo


def test_flask_pyoidc_forced_refresh_rotates_the_tokens(oidc, stack, browser):
    app, client = oidc.pyoidc, oidc.pyoidc_client
    signed_in = page_json(sign_in(browser, stack, app)[-1])
    before = len(provider_calls(app))

    first = browser.get(app.url(flask_pyoidc_app.REFRESH_PATH))
    second = browser.get(app.url(flask_pyoidc_app.REFRESH_PATH))

    for hop in (first, second):
        shown = page_json(hop)
        assert hop.status == 200 and shown["refreshed"] is True, hop.text[:2000]
        assert shown["access_token_changed"] is True, shown
    calls = calls_to(new_calls(app, before), oidc.discovery["token_endpoint"])
    assert len(calls) == 2, calls
    for call in calls:
        assert call.status == 200, call
        assert call.form["grant_type"] == "refresh_token"
        # Flask-pyoidc adds redirect_uri to refresh requests; tessera must ignore it.
        assert call.form.get("redirect_uri") == app.url(flask_pyoidc_app.REDIRECT_PATH)
        assert call.basic_credentials == (client.id, client.secret)
    # Rotation: the second refresh used the refresh token the first one returned.
    assert calls[1].form["refresh_token"] == calls[0].response_json["refresh_token"]
    assert calls[0].response_json["refresh_token"] != calls[0].form["refresh_token"]
    # The refreshed ID token (Core §12.2): same subject, audience and login time, no nonce.
    _, refreshed = jwt_parts(calls[1].response_json["id_token"])
    _, original = jwt_parts(signed_in["id_token_jwt"])
    for claim in ("iss", "sub", "aud", "auth_time", "sid"):
        assert refreshed.get(claim) == original.get(claim), (claim, refreshed, original)
    assert "nonce" not in refreshed, refreshed
    # The session still works with the new access token.
    assert browser.get(app.url(flask_pyoidc_app.PROFILE_PATH)).status == 200


def test_flask_pyoidc_logout_ends_the_tessera_session_and_returns_with_the_state(oidc, stack, browser):
    app = oidc.pyoidc
    signed_in = page_json(sign_in(browser, stack, app)[-1])
    sid = signed_in["id_token"]["sid"]
    logout_url = app.url(flask_pyoidc_app.LOGOUT_PATH)

    hops = browser.follow(logout_url)

    end_session = first_hop(hops, oidc.discovery["end_session_endpoint"])
    sent = query_params(end_session.url)
    assert sent["id_token_hint"] == signed_in["id_token_jwt"], sent
    assert sent["post_logout_redirect_uri"] == logout_url, sent
    assert sent.get("state"), sent
    assert end_session.is_redirect, f"tessera did not send the browser back:\n{describe(hops)}"
    assert end_session.location == logout_url + "?" + urlencode({"state": sent["state"]}), describe(hops)
    shown = page_json(hops[-1])
    assert hops[-1].status == 200 and shown["page"] == "logged-out", describe(hops)
    assert shown["state_returned"] == sent["state"] and shown["state_matched"] is True, shown

    assert_sso_ended(browser, stack)
    again = browser.follow(app.protected_url)
    assert again[-1].shows_login_form, f"the app still shows the user:\n{describe(again)}"
    # The session's OIDC clients are told by back channel too, the initiating one included.
    [receipt] = wait_for_receipts(oidc.receiver, sid, {oidc.pyoidc_client.id})
    assert receipt.claims["sub"] == signed_in["id_token"]["sub"], receipt


# --------------------------------------------------------------------------
# Authlib


def test_authlib_signs_in_with_pkce_and_client_secret_basic(oidc, stack, browser):
    app, client = oidc.authlib, oidc.authlib_client
    before = len(provider_calls(app))

    hops = sign_in(browser, stack, app)

    request, _response = check_authorization_round_trip(hops, stack.tessera, app)
    assert request["client_id"] == client.id and request["response_type"] == "code", request
    assert request["code_challenge_method"] == "S256", request
    assert request.get("nonce") and request.get("code_challenge"), request
    token = calls_to(new_calls(app, before), oidc.discovery["token_endpoint"])
    assert len(token) == 1, token
    call = token[0]
    assert call.status == 200, call
    assert call.auth_scheme == "Basic" and call.basic_credentials == (client.id, client.secret), call
    assert "client_secret" not in call.form
    assert s256(call.form["code_verifier"]) == request["code_challenge"], call.form

    # Authlib accepted the ID token: signature, alg from discovery, iss, nonce, at_hash.
    shown = page_json(hops[-1])
    claims, header = shown["id_token"], shown["id_token_header"]
    assert shown["user"] == "alice", shown
    assert claims["nonce"] == request["nonce"], claims
    assert claims["iss"] == oidc.discovery["issuer"] == stack.tessera.issuer, claims
    assert claims["aud"] in (client.id, [client.id]), claims
    assert header["alg"] in oidc.discovery["id_token_signing_alg_values_supported"], header
    assert header.get("kid") and header.get("typ", "JWT") == "JWT", header

    hop = browser.get(app.url(authlib_app.USERINFO_PATH))

    assert hop.status == 200, hop.text[:2000]
    userinfo = page_json(hop)["userinfo"]
    assert userinfo["sub"] == claims["sub"], userinfo
    assert (userinfo["preferred_username"], userinfo["name"], userinfo["email"]) == (
        "alice", "Alice Example", "alice@example.org"
    ), userinfo
    [call] = calls_to(new_calls(app, before), oidc.discovery["userinfo_endpoint"])
    assert (call.method, call.auth_scheme, call.status) == ("GET", "Bearer", 200), call


def test_authlib_logout_redirect_comes_back_with_the_state(oidc, stack, browser):
    app = oidc.authlib
    sign_in(browser, stack, app)
    after_logout = app.url(authlib_app.AFTER_LOGOUT_PATH)

    hops = browser.follow(app.url(authlib_app.LOGOUT_PATH))

    end_session = first_hop(hops, oidc.discovery["end_session_endpoint"])
    sent = query_params(end_session.url)
    assert sent.get("id_token_hint") and sent["post_logout_redirect_uri"] == after_logout, sent
    assert end_session.is_redirect and without_query(end_session.location) == after_logout, describe(hops)
    assert query_params(end_session.location) == {"state": sent["state"]}, describe(hops)
    shown = page_json(hops[-1])
    assert hops[-1].status == 200 and shown["page"] == "logged-out", f"{describe(hops)}\n{shown}"
    assert_sso_ended(browser, stack)

    # validate_logout_response really checks the state: a forged return is refused.
    forged = browser.get(after_logout + "?state=" + secrets.token_urlsafe(16))
    assert forged.status == 400 and page_json(forged)["page"] == "error", forged.text[:1000]


# --------------------------------------------------------------------------
# One SSO session across CAS and OpenID Connect


def wait_until_django_signs_out(browser: Browser, app: App) -> None:
    deadline = time.monotonic() + LOGOUT_TIMEOUT
    while True:
        hop = browser.get(app.protected_url)
        if hop.is_redirect:
            return
        assert hop.status == 200, hop.describe()
        if time.monotonic() >= deadline:
            raise AssertionError(f"the Django session still opens {app.protected_url} {LOGOUT_TIMEOUT}s after logout")
        time.sleep(POLL_INTERVAL)


def test_one_sso_session_spans_cas_and_oidc_and_cas_logout_ends_it_everywhere(oidc, stack, browser):
    # CAS: sign in once, through django-cas-ng.
    sign_in_via_app(browser, stack.tessera, oidc.django, OLIVIA)
    django_key = browser.cookie(django_app.SESSION_COOKIE_NAME).value

    # OIDC: both apps get the user without a password.
    shown = {}
    for app in (oidc.pyoidc, oidc.authlib):
        hops = browser.follow(app.protected_url)
        assert not any(h.shows_login_form for h in hops), f"{app.name} asked for a password:\n{describe(hops)}"
        check_authorization_round_trip(hops, stack.tessera, app)
        shown[app.name] = page_json(hops[-1])
        assert shown[app.name]["user"] == "olivia", describe(hops)
    pyoidc_claims = shown[oidc.pyoidc.name]["id_token"]
    authlib_claims = shown[oidc.authlib.name]["id_token"]
    assert pyoidc_claims["sid"] == authlib_claims["sid"], "two SSO sessions where there should be one"
    sid = pyoidc_claims["sid"]

    # One logout, at tessera's CAS endpoint.
    hops = browser.follow(stack.tessera.url("logout"))
    assert hops[-1].status == 200, describe(hops)
    assert_sso_ended(browser, stack)

    # OIDC back-channel logout reached both clients, each verified by the receiver.
    receipts = wait_for_receipts(oidc.receiver, sid, {oidc.pyoidc_client.id, oidc.authlib_client.id})
    for receipt in receipts:
        assert receipt.accepted, receipt
        assert receipt.claims["aud"] in (receipt.client_id, [receipt.client_id]), receipt
        assert receipt.claims["sub"] == pyoidc_claims["sub"], receipt
        assert receipt.header["alg"] in oidc.discovery["id_token_signing_alg_values_supported"], receipt
    jtis = [r.claims["jti"] for r in oidc.receiver.receipts()]
    assert len(jtis) == len(set(jtis)), f"a jti was used twice: {jtis}"

    # CAS single logout reached django-cas-ng.
    wait_until_django_signs_out(browser, oidc.django)
    assert not django_app.session_row_exists(django_key), "the django_session row is still there"

    # The OIDC grant ended with the session: the refresh token no longer works.
    before = len(provider_calls(oidc.pyoidc))
    hop = browser.get(oidc.pyoidc.url(flask_pyoidc_app.REFRESH_PATH))
    assert hop.status == 200 and page_json(hop)["refreshed"] is False, hop.text[:2000]
    [call] = calls_to(new_calls(oidc.pyoidc, before), oidc.discovery["token_endpoint"])
    assert call.status == 400 and call.response_json.get("error") == "invalid_grant", call


# --------------------------------------------------------------------------
# refusals


def test_a_wrong_client_secret_fails_the_token_exchange_cleanly(oidc, stack, browser):
    app = oidc.wrong_secret
    before = len(provider_calls(app))
    form_page = browser.follow(app.protected_url)[-1]
    assert form_page.shows_login_form, form_page.describe()

    hops = browser.submit_login(form_page, WENDY.name, WENDY.password)

    check_authorization_round_trip(hops, stack.tessera, app)
    shown = page_json(hops[-1])
    assert hops[-1].status == 403 and shown and shown["page"] == "error", f"{describe(hops)}\n{hops[-1].text[:1000]}"
    assert shown["error"] == "invalid_client", shown
    [call] = calls_to(new_calls(app, before), oidc.discovery["token_endpoint"])
    assert call.auth_scheme == "Basic" and call.basic_credentials[0] == oidc.pyoidc_client.id
    assert call.status == 401, call
    assert call.response_json.get("error") == "invalid_client", call
    assert (call.www_authenticate or "").startswith("Basic"), call
    # Not signed in: the protected page sends the browser back to tessera.
    again = browser.get(app.protected_url)
    assert again.is_redirect and again.location.startswith(stack.tessera.issuer + "/authorize"), again.describe()


@pytest.fixture
def unregistered_pyoidc(oidc):
    """Flask-pyoidc with the right client id and secret, on a port no redirect URI names."""
    server = AppServer("flask-pyoidc-unregistered")
    try:
        client = oidc.pyoidc_client
        server.mount(flask_pyoidc_app.create_app(oidc.issuer, server.root, client.id, client.secret))
        yield App("flask-pyoidc-unregistered", flask_pyoidc_app, server)
    finally:
        server.close()


def assert_tessera_error_page(hops: list[Hop], stack) -> None:
    last = hops[-1]
    assert without_query(last.url) == stack.tessera.issuer + "/authorize", describe(hops)
    assert last.status == 400 and not last.is_redirect, describe(hops)
    assert "Location" not in last.response.headers, last.response.headers
    assert "html" in last.response.headers.get("Content-Type", ""), last.response.headers
    assert not last.shows_login_form, last.text[:1000]


def test_an_unregistered_redirect_uri_gets_the_tessera_error_page(oidc, stack, browser, unregistered_pyoidc):
    # Signed in already: tessera would issue a code at once if it did not check.
    sign_in(browser, stack, oidc.pyoidc)
    app = unregistered_pyoidc

    hops = browser.follow(app.protected_url)

    assert_tessera_error_page(hops, stack)
    assert query_params(hops[-1].url)["redirect_uri"] == app.url(flask_pyoidc_app.REDIRECT_PATH)
    assert not any(h.url.startswith(app.url(flask_pyoidc_app.REDIRECT_PATH)) for h in hops), describe(hops)


@pytest.mark.parametrize("change", ["trailing-slash", "extra-query", "other-path"])
def test_a_redirect_uri_that_is_not_exactly_registered_gets_the_error_page(oidc, stack, browser, change):
    # Flask-pyoidc's own authorization request, replayed by a signed-in browser with
    # its redirect_uri changed.
    hops = sign_in(browser, stack, oidc.pyoidc)
    authorize = first_hop(hops, stack.tessera.issuer + "/authorize").url
    params = dict(parse_qsl(urlsplit(authorize).query))
    registered = params["redirect_uri"]
    params["redirect_uri"] = {
        "trailing-slash": registered + "/",
        "extra-query": registered + "?x=1",
        "other-path": registered.replace(flask_pyoidc_app.REDIRECT_PATH, "/elsewhere"),
    }[change]

    hops = browser.follow(without_query(authorize) + "?" + urlencode(params))

    assert_tessera_error_page(hops, stack)
