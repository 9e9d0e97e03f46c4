"""Relying party built on Flask-CAS 1.0.2.

The Flask-CAS blueprint is mounted at ``/cas`` of the app, as its README
shows, so the app has ``/cas/login/`` (where tickets arrive) and
``/cas/logout/``. Flask-CAS's own defaults are kept for the server side:
login route ``/cas`` (tessera redirects it to ``/cas/login``), validation
``/cas/serviceValidate`` and logout ``/cas/logout``.
"""

from __future__ import annotations

import secrets
import warnings

from flask import Flask

# Flask-CAS 1.0.2 still touches flask._app_ctx_stack (deprecated in Flask 2.3).
warnings.filterwarnings(
    "ignore", message="'_app_ctx_stack' is deprecated", category=DeprecationWarning
)

from flask_cas import CAS, login_required  # noqa: E402

from ._common import page, record_tickets, whoami_page  # noqa: E402

CLIENT = "flask-cas"
PROTECTED_PATH = "/profile"
LOGOUT_PATH = "/cas/logout/"
AFTER_LOGOUT_PATH = "/goodbye"
CALLBACK_PATH = "/cas/login/"


def create_app(cas_root: str, app_root: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        # All apps share the host 127.0.0.1, and cookies ignore ports.
        SESSION_COOKIE_NAME="flask_cas_app_session",
        CAS_SERVER=cas_root,
        CAS_AFTER_LOGIN="profile",
        CAS_AFTER_LOGOUT=app_root + AFTER_LOGOUT_PATH,
    )
    cas = CAS(app, "/cas")
    record_tickets(app)

    @app.route("/")
    def index():
        return page("Flask-CAS demo", f'<p><a href="{PROTECTED_PATH}">Profile</a></p>')

    @app.route(PROTECTED_PATH)
    @login_required
    def profile():
        return whoami_page(CLIENT, cas.username, cas.attributes, LOGOUT_PATH)

    @app.route(AFTER_LOGOUT_PATH)
    def goodbye():
        return page("Signed out", "<p>You are signed out.</p>")

    return app
