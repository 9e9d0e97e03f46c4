"""Relying party built on Authlib 1.9.9's Flask client (``authlib.integrations.flask_client``).

The provider is registered from its discovery document (``server_metadata_url``),
with scopes ``openid profile email``, PKCE (``code_challenge_method='S256'``) and
``client_secret_basic``. Authlib validates the ID token itself in
``authorize_access_token``: signature against the JWKS, ``alg`` among discovery's
``id_token_signing_alg_values_supported``, ``iss`` equal to discovery's ``issuer``,
``nonce`` equal to the one it sent, ``at_hash``; the claims land in ``token['userinfo']``.

- ``/login``: ``authorize_redirect`` to tessera, back to ``/auth``;
- ``/auth``: ``authorize_access_token``; the token is kept in the Flask session;
- ``/``: protected, shows the ID token claims;
- ``/me``: ``oauth.tessera.userinfo()``;
- ``/logout``: ``logout_redirect`` (RP-Initiated Logout with ``id_token_hint``,
  ``post_logout_redirect_uri`` and a generated ``state``), back to ``/logged-out``,
  which checks the returned ``state`` with ``validate_logout_response``.

Every page carries a JSON ``<pre id="whoami">`` for the tests. Every token and
userinfo request the app makes is recorded (``provider_calls``; discovery and JWKS
fetches go through a plain session and are not).
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl

from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, redirect, session

from ._common import page

CLIENT = "authlib"
PROVIDER = "tessera"
PROTECTED_PATH = "/"
LOGIN_PATH = "/login"
REDIRECT_PATH = "/auth"
USERINFO_PATH = "/me"
LOGOUT_PATH = "/logout"
AFTER_LOGOUT_PATH = "/logged-out"
SCOPE = "openid profile email"

PROVIDER_CALLS = "interop.provider_calls"
TOKEN_KEY = "tessera_token"


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


def recording_fix(calls: list[ProviderCall]):
    """A ``compliance_fix``: Authlib calls it with every OAuth2Session it makes for
    token and resource requests; it adds a hook that records each exchange."""
    lock = threading.Lock()

    def remember(response, *args, **kwargs) -> None:
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
        with lock:
            calls.append(
                ProviderCall(
                    sent.method, sent.url, response.status_code, scheme, credentials,
                    dict(parse_qsl(body, keep_blank_values=True)), answer,
                )
            )

    def fix(oauth_session):
        oauth_session.trust_env = False  # loopback traffic never goes through a proxy
        oauth_session.hooks["response"].append(remember)
        return oauth_session

    return fix


def json_page(title: str, payload: dict, status: int = 200):
    body = (
        f"<h1>{html.escape(title)}</h1>\n"
        f'<pre id="whoami">{html.escape(json.dumps(payload, indent=2, sort_keys=True))}</pre>\n'
    )
    return page(title, body, status)


def jwt_header(token: str) -> dict:
    """The JOSE header of a compact JWT (for display only: Authlib checked the token)."""
    encoded = token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def create_app(issuer: str, app_root: str, client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_NAME="authlib_app_session",  # all apps share the host 127.0.0.1
    )
    calls: list[ProviderCall] = []
    app.extensions[PROVIDER_CALLS] = calls

    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
        },
        compliance_fix=recording_fix(calls),
    )
    tessera = oauth.create_client(PROVIDER)

    def failure(title: str, error: OAuthError | Exception, status: int):
        return json_page(
            title,
            {
                "client": CLIENT,
                "page": "error",
                "error": getattr(error, "error", type(error).__name__),
                "error_description": getattr(error, "description", None) or str(error),
            },
            status,
        )

    @app.route(LOGIN_PATH)
    def login():
        return tessera.authorize_redirect(app_root + REDIRECT_PATH)

    @app.route(REDIRECT_PATH)
    def auth():
        try:
            token = tessera.authorize_access_token()
        except OAuthError as exc:
            return failure("Sign-in failed", exc, 403)
        session[TOKEN_KEY] = token
        return redirect(PROTECTED_PATH)

    @app.route(PROTECTED_PATH)
    def index():
        token = session.get(TOKEN_KEY)
        if not token:
            return redirect(LOGIN_PATH)
        claims = token["userinfo"]
        return json_page(
            "Signed in",
            {
                "client": CLIENT,
                "page": "protected",
                "user": claims.get("preferred_username") or claims["sub"],
                "id_token": claims,
                "id_token_header": jwt_header(token["id_token"]),
                "scope": token.get("scope"),
            },
        )

    @app.route(USERINFO_PATH)
    def me():
        token = session.get(TOKEN_KEY)
        if not token:
            return redirect(LOGIN_PATH)
        try:
            userinfo = tessera.userinfo(token=token)
        except Exception as exc:  # requests' HTTPError from raise_for_status, mostly
            return failure("Userinfo failed", exc, 502)
        return json_page(
            "Userinfo",
            {
                "client": CLIENT,
                "page": "userinfo",
                "user": userinfo.get("preferred_username") or userinfo.get("sub"),
                "userinfo": dict(userinfo),
            },
        )

    @app.route(LOGOUT_PATH)
    def logout():
        token = session.pop(TOKEN_KEY, None)
        return tessera.logout_redirect(
            post_logout_redirect_uri=app_root + AFTER_LOGOUT_PATH,
            id_token_hint=token["id_token"] if token else None,
        )

    @app.route(AFTER_LOGOUT_PATH)
    def logged_out():
        try:
            state_data = tessera.validate_logout_response()
        except OAuthError as exc:
            return failure("Logout not confirmed", exc, 400)
        return json_page(
            "Logged out",
            {
                "client": CLIENT,
                "page": "logged-out",
                "message": "logged out",
                "post_logout_redirect_uri": state_data.get("post_logout_redirect_uri"),
            },
        )

    return app
