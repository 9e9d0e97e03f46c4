"""Fixtures: one tessera server for the run, the three demo apps and a plain service.

Tessera trusts a CA made for the run (``[proxy] ca_file``) for proxy callbacks.

Its config also declares the OpenID Connect clients of ``test_oidc.py`` (``[[client]]``
tables, read at start), so their ports are bound here, before tessera starts; the
OIDC apps themselves are mounted by that module (they run discovery when created).

The tessera binary comes from TESSERA_BIN, or target/debug/tessera in the
repository; the suite never builds it.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps import authlib_app, flask_cas_app, flask_pyoidc_app, pycas_sso_app, python_cas_app
from harness import (
    ALICE,
    ALL_USERS,
    App,
    AppServer,
    Browser,
    OidcClientConfig,
    Pki,
    PkiError,
    Sink,
    Tessera,
    TesseraError,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

APP_MODULES = {
    "flask-cas": flask_cas_app,
    "python-cas": python_cas_app,
    "pycas-sso": pycas_sso_app,
}

# Clients that make their own HTTP calls (python-cas, pycas-sso, Flask-CAS's
# urlopen) must never send loopback traffic to a proxy from the environment.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))

_running_tessera: Tessera | None = None

# Ports bound before tessera starts, for the OpenID Connect clients in its config:
# the two relying parties, a second Flask-pyoidc instance that will hold a wrong
# client secret (its redirect URI is registered, so it gets as far as the token
# endpoint), and the test's back-channel logout receiver.
OIDC_SERVER_NAMES = ("flask-pyoidc", "flask-pyoidc-wrong-secret", "authlib", "backchannel")
BACKCHANNEL_PATH = "/backchannel/"  # + client id


def oidc_clients(servers: dict[str, AppServer]) -> dict[str, OidcClientConfig]:
    """The ``[[client]]`` tables: one client per relying party library, each with
    a random secret of unreserved characters and a back-channel logout URI on the
    receiver."""
    pyoidc, wrong, authlib_server, backchannel = (servers[name] for name in OIDC_SERVER_NAMES)
    return {
        "flask-pyoidc": OidcClientConfig(
            id="flask-pyoidc-demo",
            secret=secrets.token_urlsafe(32),
            redirect_uris=(
                pyoidc.url(flask_pyoidc_app.REDIRECT_PATH),
                wrong.url(flask_pyoidc_app.REDIRECT_PATH),
            ),
            post_logout_redirect_uris=(
                pyoidc.url(flask_pyoidc_app.LOGOUT_PATH),
                wrong.url(flask_pyoidc_app.LOGOUT_PATH),
            ),
            backchannel_logout_uri=backchannel.url(BACKCHANNEL_PATH + "flask-pyoidc-demo"),
        ),
        "authlib": OidcClientConfig(
            id="authlib-demo",
            secret=secrets.token_urlsafe(32),
            redirect_uris=(authlib_server.url(authlib_app.REDIRECT_PATH),),
            post_logout_redirect_uris=(authlib_server.url(authlib_app.AFTER_LOGOUT_PATH),),
            backchannel_logout_uri=backchannel.url(BACKCHANNEL_PATH + "authlib-demo"),
        ),
    }


def loopback_pattern(port: int, path_prefix: str = "/") -> str:
    """Anchored service pattern for http://127.0.0.1:PORT<path_prefix>..."""
    return rf"http://127\.0\.0\.1:{port}{path_prefix}.*"


@dataclass
class Stack:
    tessera: Tessera
    apps: dict[str, App]
    sink_server: AppServer
    sink: Sink
    pki: Pki  # the CA tessera trusts for proxy callbacks, and callback certificates
    # OpenID Connect: bound servers (mounted by test_oidc.py) and the clients tessera knows
    oidc_servers: dict[str, AppServer] = field(default_factory=dict)
    oidc_clients: dict[str, OidcClientConfig] = field(default_factory=dict)

    def direct_service(self, path: str) -> str:
        """A service URL registered with every attribute released."""
        return self.sink_server.url("/direct/" + path.lstrip("/"))

    def limited_service(self, path: str) -> str:
        """A service URL registered with only `mail` and `displayName` (renamed `cn`)."""
        return self.sink_server.url("/limited/" + path.lstrip("/"))

    def unregistered_service(self, path: str) -> str:
        """A loopback URL no registered pattern matches."""
        return self.sink_server.url("/unregistered/" + path.lstrip("/"))


@pytest.fixture(scope="session")
def tessera_binary() -> Path:
    configured = os.environ.get("TESSERA_BIN")
    path = Path(configured) if configured else REPO_ROOT / "target" / "debug" / "tessera"
    if not path.is_file() or not os.access(path, os.X_OK):
        source = "TESSERA_BIN" if configured else "the default location target/debug/tessera"
        pytest.fail(
            f"tessera binary not found or not executable at {path} ({source}). "
            "Build it first (cargo build), or point TESSERA_BIN at it.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def stack(tessera_binary: Path, tmp_path_factory: pytest.TempPathFactory):
    global _running_tessera
    with ExitStack() as cleanup:
        # Bind every app first: services are registered per app port.
        servers: dict[str, AppServer] = {}
        for name in APP_MODULES:
            servers[name] = AppServer(name)
            cleanup.callback(servers[name].close)
        sink_server = AppServer("sink")
        cleanup.callback(sink_server.close)
        oidc_servers: dict[str, AppServer] = {}
        for name in OIDC_SERVER_NAMES:
            oidc_servers[name] = AppServer(name)
            cleanup.callback(oidc_servers[name].close)
        clients = oidc_clients(oidc_servers)
        sink = Sink()
        sink_server.mount(sink)

        # The proxy-callback CA must exist before tessera reads its config.
        pki_error = None
        try:
            pki = Pki(tmp_path_factory.mktemp("pki"))
        except PkiError as exc:
            pki_error = str(exc)
        if pki_error is not None:
            pytest.fail(pki_error, pytrace=False)

        tessera = Tessera(
            tessera_binary,
            tmp_path_factory.mktemp("tessera"),
            proxy_ca_file=pki.ca_cert,
            clients=clients.values(),
        )
        cleanup.callback(tessera.stop)
        setup_error = None
        try:
            for user in ALL_USERS:
                tessera.add_user(user)
            for name, server in servers.items():
                tessera.add_service(f"app-{name}", loopback_pattern(server.port))
            tessera.add_service("direct-clients", loopback_pattern(sink_server.port, "/direct/"))
            tessera.add_service(
                "limited-release",
                loopback_pattern(sink_server.port, "/limited/"),
                release=["mail", "displayName=cn"],
            )
            tessera.start()
        except TesseraError as exc:
            setup_error = str(exc)
        if setup_error is not None:
            pytest.fail(setup_error, pytrace=False)
        _running_tessera = tessera

        apps = {}
        for name, module in APP_MODULES.items():
            servers[name].mount(module.create_app(tessera.root, servers[name].root))
            apps[name] = App(name, module, servers[name])

        yield Stack(tessera, apps, sink_server, sink, pki, oidc_servers, clients)
        _running_tessera = None


@pytest.fixture(scope="session")
def https_tessera(tessera_binary: Path, stack, tmp_path_factory: pytest.TempPathFactory):
    """A second tessera, serving https (``[server] tls_cert``) with the run's CA-issued
    certificate, for the clients that only speak https to their CAS server (phpCAS,
    mod_auth_cas), with ``alice``. The modules register their own services.

    Their applications run on http (PHP's built-in server, a local Apache): it releases SAML
    attributes to http targets, so that the clients' reading of them is checked
    (``test_saml.py`` checks that the default withholds them)."""
    identity = stack.pki.trusted
    tessera = Tessera(
        tessera_binary,
        tmp_path_factory.mktemp("tessera-https"),
        extra_config=(
            "[server]\n"
            f"tls_cert = {json.dumps(str(identity.cert))}\n"
            f"tls_key = {json.dumps(str(identity.key))}\n"
            "[saml]\n"
            "attributes_require_https = false\n"
        ),
    )
    try:
        tessera.add_user(ALICE)
        tessera.start()
    except TesseraError as exc:
        tessera.stop()
        pytest.fail(str(exc), pytrace=False)
    assert tessera.root.startswith("https://"), tessera.root
    yield tessera
    tessera.stop()


@pytest.fixture
def new_browser():
    """Factory for independent browsers (each with its own cookie jar)."""
    made: list[Browser] = []

    def make() -> Browser:
        browser = Browser()
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.close()


@pytest.fixture
def browser(new_browser) -> Browser:
    return new_browser()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and _running_tessera is not None:
        report.sections.append(("tessera output", _running_tessera.log_tail()))
    return report
