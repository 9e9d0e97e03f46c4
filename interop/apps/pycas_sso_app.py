"""Relying party built on pycas-sso 0.1.0.post1 with its ``requests`` back-end.

The browser is sent to the client's ``login_form_url()``; the ticket comes back
to ``/callback`` and is checked with ``service_validate`` (CAS 2.0 XML,
``/serviceValidate``).
"""

from __future__ import annotations

import html
import secrets

from flask import Flask, redirect, request, session

# The package's top-level __init__ is empty: the factory lives in pycas_sso.cas
# (the README's `from pycas_sso import CASClient` raises ImportError).
from pycas_sso.cas import CASClient
from pycas_sso.errors import CASServiceAuthenticationFailure

from ._common import local_path, page, record_tickets, whoami_page

CLIENT = "pycas-sso"
PROTECTED_PATH = "/profile"
LOGOUT_PATH = "/logout"
AFTER_LOGOUT_PATH = "/logged_out"
CALLBACK_PATH = "/callback"



def create_app(cas_root: str, app_root: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_NAME="pycas_sso_app_session",
    )
    record_tickets(app)
    callback_url = app_root + CALLBACK_PATH

    def cas_client():
        # pycas-sso validates against service_url but sends callback_url to the
        # login form, so both must be the same string.
        return CASClient.create(cas_root + "/cas", callback_url, callback_url, http_lib="requests")

    @app.route("/")
    def index():
        return page("pycas-sso demo", f'<p><a href="{PROTECTED_PATH}">Profile</a></p>')

    @app.route("/login")
    def login():
        session["next"] = local_path(request.args.get("next"), PROTECTED_PATH)
        with cas_client() as client:
            return redirect(client.login_form_url())

    @app.route(CALLBACK_PATH)
    def callback():
        ticket = request.args.get("ticket")
        if not ticket:
            return redirect("/login")
        try:
            with cas_client() as client:
                result = client.service_validate(ticket)
        except CASServiceAuthenticationFailure as exc:
            return page("Sign-in failed", f"<p>Ticket refused: {html.escape(str(exc))}</p>", 403)
        session["user"] = result.username
        session["attributes"] = result.attrs or {}
        return redirect(session.pop("next", PROTECTED_PATH))

    @app.route(PROTECTED_PATH)
    def profile():
        if "user" not in session:
            return redirect("/login?next=" + PROTECTED_PATH)
        return whoami_page(CLIENT, session["user"], session.get("attributes"), LOGOUT_PATH)

    @app.route(LOGOUT_PATH)
    def logout():
        session.clear()
        with cas_client() as client:
            return redirect(client.logout_url(service=app_root + AFTER_LOGOUT_PATH))

    @app.route(AFTER_LOGOUT_PATH)
    def logged_out():
        return page("Signed out", f'<p>You are signed out. <a href="{PROTECTED_PATH}">Sign in</a></p>')

    return app
