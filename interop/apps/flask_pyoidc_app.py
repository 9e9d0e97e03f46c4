"""Relying party built on Flask-pyoidc 3.14.3 (on pyoidc ``oic`` 1.6.1), as its README shows.

One provider, ``tessera``, found by discovery (``ProviderConfiguration(issuer=...)``)
and a client registered statically (``ClientMetadata``), scopes ``openid profile
email``. Flask-pyoidc owns the redirect URI (``OIDC_REDIRECT_URI``, route
``/redirect_uri``): it checks ``state``, exchanges the code (``client_secret_basic``),
verifies the ID token and calls userinfo, all before the protected page is shown.

- ``/``: protected (``@auth.oidc_auth``), shows the ID token claims;
- ``/profile``: protected, shows the userinfo claims Flask-pyoidc fetched at login;
- ``/refresh``: protected, ``auth.valid_access_token(force_refresh=True)``;
- ``/logout``: ``@auth.oidc_logout``: sends the browser to tessera's end-session
  endpoint with ``id_token_hint``, ``post_logout_redirect_uri`` (this view's own URL)
  and ``state``, and shows "logged out" when it comes back.

Every page carries a JSON ``<pre id="whoami">`` for the tests. Every request the app
makes to tessera is recorded (``provider_calls``).

``create_app`` runs discovery, so tessera must be running.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl

import flask
import requests
from flask import Flask, request
from flask_pyoidc import OIDCAuthentication
from flask_pyoidc.provider_configuration import ClientMetadata, ProviderConfiguration
from flask_pyoidc.user_session import UserSession

from ._common import page

CLIENT = "flask-pyoidc"
PROVIDER = "tessera"
PROTECTED_PATH = "/"
PROFILE_PATH = "/profile"
REFRESH_PATH = "/refresh"
LOGOUT_PATH = "/logout"
REDIRECT_PATH = "/redirect_uri"
SCOPES = ["openid", "profile", "email"]

PROVIDER_CALLS = "interop.provider_calls"


@dataclass(frozen=True)
class ProviderCall:
    """One HTTP request the app made to tessera, and the answer."""

    method: str
    url: str
    status: int
    auth_scheme: str | None  # "Basic", "Bearer" or None
    basic_credentials: tuple[str, str] | None  # (user, password) of a Basic header, as sent
    form: dict[str, str]  # the urlencoded body
    response_json: object  # the answer's JSON, or None
    www_authenticate: str | None


def recording_session(calls: list[ProviderCall]) -> requests.Session:
    """A requests session for the app's calls to tessera that records each one."""
    session = requests.Session()
    session.trust_env = False  # loopback traffic never goes through a proxy
    lock = threading.Lock()

    def remember(response: requests.Response, *args, **kwargs) -> None:
        sent = response.request
        scheme, credentials = None, None
        authorization = sent.headers.get("Authorization")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "basic":
                user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
                credentials = (user, password)
        body = sent.body or ""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        call = ProviderCall(
            method=sent.method,
            url=sent.url,
            status=response.status_code,
            auth_scheme=scheme,
            basic_credentials=credentials,
            form=dict(parse_qsl(body, keep_blank_values=True)),
            response_json=answer,
            www_authenticate=response.headers.get("WWW-Authenticate"),
        )
        with lock:
            calls.append(call)

    session.hooks["response"].append(remember)
    return session


def json_page(title: str, payload: dict, status: int = 200):
    body = (
        f"<h1>{html.escape(title)}</h1>\n"
        f'<pre id="whoami">{html.escape(json.dumps(payload, indent=2, sort_keys=True))}</pre>\n'
    )
    return page(title, body, status)


def create_app(issuer: str, app_root: str, client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    port = app_root.rsplit(":", 1)[-1]
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        # All apps share the host 127.0.0.1, and cookies ignore ports: one name per instance.
        SESSION_COOKIE_NAME=f"flask_pyoidc_app_{port}",
        OIDC_REDIRECT_URI=app_root + REDIRECT_PATH,
    )
    calls: list[ProviderCall] = []
    app.extensions[PROVIDER_CALLS] = calls
    config = ProviderConfiguration(
        issuer=issuer,
        client_metadata=ClientMetadata(
            client_id=client_id,
            client_secret=client_secret,
            post_logout_redirect_uris=[app_root + LOGOUT_PATH],
        ),
        auth_request_params={"scope": SCOPES},
        requests_session=recording_session(calls),
    )
    auth = OIDCAuthentication({PROVIDER: config}, app)

    def signed_in_user(session: UserSession) -> str | None:
        claims = session.id_token or {}
        return claims.get("preferred_username") or claims.get("sub")

    @app.route(PROTECTED_PATH)
    @auth.oidc_auth(PROVIDER)
    def index():
        session = UserSession(flask.session)
        return json_page(
            "Signed in",
            {
                "client": CLIENT,
                "page": "protected",
                "user": signed_in_user(session),
                "id_token": session.id_token,
                "id_token_jwt": session.id_token_jwt,
            },
        )

    @app.route(PROFILE_PATH)
    @auth.oidc_auth(PROVIDER)
    def profile():
        session = UserSession(flask.session)
        return json_page(
            "Profile",
            {
                "client": CLIENT,
                "page": "profile",
                "user": signed_in_user(session),
                "userinfo": session.userinfo,
            },
        )

    @app.route(REFRESH_PATH)
    @auth.oidc_auth(PROVIDER)
    def refresh():
        before = UserSession(flask.session).access_token
        token = auth.valid_access_token(force_refresh=True)
        session = UserSession(flask.session)
        return json_page(
            "Token refresh",
            {
                "client": CLIENT,
                "page": "refresh",
                "refreshed": token is not None,
                "access_token_changed": token is not None and token != before,
                "id_token": session.id_token,
            },
        )

    @app.before_request
    def remember_end_session_state() -> None:
        # @auth.oidc_logout pops the state it sent before the view runs; keep it to show
        # whether tessera returned it unchanged.
        if request.path == LOGOUT_PATH:
            flask.g.end_session_state = flask.session.get("end_session_state")

    @app.route(LOGOUT_PATH)
    @auth.oidc_logout
    def logout():
        returned = request.args.get("state")
        expected = flask.g.get("end_session_state")
        return json_page(
            "Logged out",
            {
                "client": CLIENT,
                "page": "logged-out",
                "message": "logged out",
                "state_returned": returned,
                "state_matched": returned is not None and returned == expected,
            },
        )

    @auth.error_view
    def error(error=None, error_description=None):
        return json_page(
            "Sign-in failed",
            {
                "client": CLIENT,
                "page": "error",
                "error": error,
                "error_description": error_description,
            },
            status=403,
        )

    return app
