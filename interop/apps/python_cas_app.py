"""Relying party in the style of the python-cas README (python-cas 1.7.2, CAS 3).

``/login?next=/profile`` sends the browser to CAS; when it comes back with a
ticket the app verifies it with ``CASClient(version=3)`` and keeps the user in
its session. ``/logout`` hands over to CAS logout with ``/logout_callback`` as
the place to come back to.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from cas import CASClient
from flask import Flask, redirect, request, session

from ._common import local_path, page, record_tickets, whoami_page

CLIENT = "python-cas"
PROTECTED_PATH = "/profile"
LOGOUT_PATH = "/logout"
AFTER_LOGOUT_PATH = "/logout_callback"
CALLBACK_PATH = "/login"



def create_app(cas_root: str, app_root: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_NAME="python_cas_app_session",
    )
    record_tickets(app)

    def login_path(next_path: str) -> str:
        return "/login?" + urlencode({"next": next_path})

    def cas_client(next_path: str) -> CASClient:
        # The service URL carries ?next=, percent-encoded, as django-cas-ng does;
        # it is rebuilt from the same `next` when the ticket comes back.
        return CASClient(
            version=3,
            service_url=app_root + login_path(next_path),
            server_url=cas_root + "/cas/",  # python-cas needs the trailing slash
        )

    @app.route("/")
    def index():
        return page("python-cas demo", f'<p><a href="{login_path(PROTECTED_PATH)}">Sign in</a></p>')

    @app.route("/login")
    def login():
        next_path = local_path(request.args.get("next"), PROTECTED_PATH)
        if "username" in session:
            return redirect(next_path)
        client = cas_client(next_path)
        ticket = request.args.get("ticket")
        if not ticket:
            return redirect(client.get_login_url())
        user, attributes, _pgtiou = client.verify_ticket(ticket)
        if not user:
            return page(
                "Sign-in failed",
                f'<p>Failed to verify the ticket. <a href="{login_path(next_path)}">Try again</a></p>',
                403,
            )
        session["username"] = user
        session["attributes"] = attributes or {}
        return redirect(next_path)

    @app.route(PROTECTED_PATH)
    def profile():
        if "username" not in session:
            return redirect(login_path(PROTECTED_PATH))
        return whoami_page(CLIENT, session["username"], session.get("attributes"), LOGOUT_PATH)

    @app.route(LOGOUT_PATH)
    def logout():
        session.clear()
        client = cas_client(PROTECTED_PATH)
        return redirect(client.get_logout_url(app_root + AFTER_LOGOUT_PATH))

    @app.route(AFTER_LOGOUT_PATH)
    def logout_callback():
        session.pop("username", None)
        session.pop("attributes", None)
        return page("Signed out", f'<p>Signed out of CAS. <a href="{login_path(PROTECTED_PATH)}">Sign in</a></p>')

    return app
