"""Relying party built on django-cas-ng 5.1.1 (on python-cas 1.7.2), CAS 3.

A minimal Django project: ``django_cas_ng`` in INSTALLED_APPS with its
middleware and authentication backend, ``CAS_VERSION = '3'`` (the default '2'
ignores single logout), database sessions in a SQLite file of its own, and the
README's URLs: ``/accounts/login`` (django-cas-ng's LoginView: where the
browser is sent to CAS from, where tickets arrive, and where tessera posts the
back-channel logout request, since that is the service URL),
``/accounts/logout`` and ``/accounts/callback``. ``/profile/`` is a
``@login_required`` page showing the user, like the Flask apps' pages.

Django settings are process-wide, so ``create_app`` configures Django once per
process; the Flask apps are not affected (they never read Django settings, and
Django is kept away from the logging configuration: ``LOGGING_CONFIG = None``).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

CLIENT = "django-cas-ng"
PROTECTED_PATH = "/profile/"
LOGIN_PATH = "/accounts/login"
LOGOUT_PATH = "/accounts/logout?next=/goodbye/"
AFTER_LOGOUT_PATH = "/goodbye/"
CALLBACK_PATH = LOGIN_PATH  # tickets arrive at the login view (the service URL)
SESSION_COOKIE_NAME = "django_app_sessionid"  # all apps share the host 127.0.0.1


@dataclass(frozen=True)
class Received:
    """One request the Django app answered."""

    method: str
    target: str  # path and query, as received
    ticket: str | None  # the `ticket` query parameter
    logout_request: str | None  # the `logoutRequest` form field of a POST
    status: int


@dataclass(frozen=True)
class Validation:
    """One request python-cas made to the CAS server (through CAS_SESSION_FACTORY)."""

    method: str
    url: str
    status: int


_lock = threading.Lock()
_received: list[Received] = []
_validations: list[Validation] = []
_configured: dict[str, object] = {}


def received() -> list[Received]:
    with _lock:
        return list(_received)


def validations() -> list[Validation]:
    with _lock:
        return list(_validations)


def record_received(item: Received) -> None:
    with _lock:
        _received.append(item)


def cas_http_session():
    """CAS_SESSION_FACTORY: the requests session python-cas validates tickets with."""
    import requests

    session = requests.Session()
    session.trust_env = False  # loopback traffic never goes through a proxy

    def remember(response, *args, **kwargs):
        with _lock:
            _validations.append(Validation(response.request.method, response.url, response.status_code))

    session.hooks["response"].append(remember)
    return session


def django_settings(cas_root: str, db_path: Path) -> dict:
    return dict(
        DEBUG=False,
        SECRET_KEY=secrets.token_hex(32),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF="apps.django_app.urls",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django_cas_ng",
        ],
        MIDDLEWARE=[
            "apps.django_app.middleware.record_requests",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django_cas_ng.middleware.CASMiddleware",
        ],
        AUTHENTICATION_BACKENDS=[
            "django.contrib.auth.backends.ModelBackend",
            "django_cas_ng.backends.CASBackend",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(db_path),
                "OPTIONS": {"timeout": 10},
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        CSRF_COOKIE_NAME="django_app_csrftoken",
        LOGIN_URL="cas_ng_login",
        USE_TZ=True,
        LOGGING_CONFIG=None,  # leave logging alone; errors reach pytest's log capture
        TEMPLATES=[],
        # django-cas-ng
        CAS_SERVER_URL=cas_root + "/cas/",  # python-cas needs the trailing slash
        CAS_VERSION="3",
        CAS_REDIRECT_URL=PROTECTED_PATH,
        CAS_LOGIN_MSG=None,  # no django.contrib.messages in this project
        CAS_LOGGED_MSG=None,
        CAS_SESSION_FACTORY=cas_http_session,
    )


def create_app(cas_root: str, app_root: str, workdir: Path):
    """Configure Django (once per process), migrate its database and return the
    WSGI application. ``app_root`` is unused: django-cas-ng builds service URLs
    from each request's Host header."""
    del app_root
    import django
    from django.conf import settings

    if not _configured:
        db_path = Path(workdir) / "django.sqlite3"
        settings.configure(**django_settings(cas_root, db_path))
        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        _configured.update(cas_root=cas_root, db_path=db_path)
    elif _configured["cas_root"] != cas_root:
        raise RuntimeError(
            f"Django is already configured for the CAS server {_configured['cas_root']}, "
            f"not {cas_root}: settings are process-wide"
        )
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def _query(sql: str, *params) -> list[tuple]:
    connection = sqlite3.connect(str(_configured["db_path"]), timeout=10)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def session_row_exists(session_key: str) -> bool:
    """Whether ``django_session`` still holds this session."""
    return bool(_query("SELECT 1 FROM django_session WHERE session_key = ?", session_key))


def session_ticket(session_key: str) -> str | None:
    """The service ticket django-cas-ng stored for this session (its SessionTicket row)."""
    rows = _query(
        "SELECT ticket FROM django_cas_ng_sessionticket WHERE session_key = ?", session_key
    )
    return rows[0][0] if rows else None
