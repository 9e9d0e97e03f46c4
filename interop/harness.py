"""Test harness: the tessera process, in-process web apps and a hop-by-hop browser.

Nothing in here knows about a particular CAS client; the apps in ``apps/`` and
the tests bring the clients.
"""

from __future__ import annotations

import json
import os
import pwd
import queue
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import DefaultCookiePolicy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from requests.cookies import get_cookie_header
from werkzeug.serving import make_server

HTTP_TIMEOUT = 10  # seconds, for every request the browser makes
CLI_TIMEOUT = 60  # seconds, for one `tessera user add` / `service add`
STARTUP_TIMEOUT = 30  # seconds until `tessera serve` prints its listening line
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL at teardown
MAX_HOPS = 15

LISTENING_RE = re.compile(r"^tessera listening on (https?://127\.0\.0\.1:(\d+))$")
TICKET_RE = re.compile(r"^ST-[A-Za-z0-9-]+$")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


# --------------------------------------------------------------------------
# Users


@dataclass(frozen=True)
class User:
    name: str
    password: str
    attrs: tuple[tuple[str, str], ...] = ()


ALICE = User(
    "alice",
    "alice-correct-horse-7",
    (
        ("mail", "alice@example.org"),
        ("eduPersonAffiliation", "staff"),
        ("eduPersonAffiliation", "member"),
        ("displayName", "Alice Example"),
    ),
)

# A password full of form-encoding traps, and attribute values full of XML ones.
ZOE = User(
    "zoe",
    "p@ss w0rd+&=%20é",
    (
        ("mail", "zoe@example.org"),
        ("o", "Smith & Sons <Ltd> \"quoted\" 'single'"),
    ),
)

# Users that only ever see a failed login, one per test that needs one, so a
# throttle counting failures per user can never lock out ALICE or a later test.
FUMBLERS = {
    key: User(name, f"{name}-right-password", (("mail", f"{name}@example.org"),))
    for key, name in (
        ("flask-cas", "bob"),
        ("python-cas", "carol"),
        ("pycas-sso", "dave"),
        ("pycas-direct", "erin"),
    )
}

ALL_USERS = (ALICE, ZOE, *FUMBLERS.values())


def normalise_attributes(attrs: dict | None) -> dict:
    """Attribute dict with Flask-CAS's literal ``cas:`` key prefix removed."""
    return {key.removeprefix("cas:"): value for key, value in (attrs or {}).items()}


def assert_alice_attributes(attrs: dict | None) -> None:
    got = normalise_attributes(attrs)
    assert got.get("mail") == "alice@example.org", got
    assert got.get("displayName") == "Alice Example", got
    affiliation = got.get("eduPersonAffiliation")
    assert isinstance(affiliation, list), f"multi-valued attribute is not a list: {got}"
    assert sorted(affiliation) == ["member", "staff"], got


# --------------------------------------------------------------------------
# The tessera binary


class TesseraError(RuntimeError):
    pass


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not ended within STOP_TIMEOUT."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


def _toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string.
    return json.dumps(value)


class Tessera:
    """One tessera instance: its config, its database and (once started) its server.

    ``proxy_ca_file`` (a PEM file) becomes ``[proxy] ca_file``: the CA trusted for
    proxy callbacks (pgtUrl) besides the web roots. It must exist before the first
    CLI command, since every command reads and checks the config.

    ``clients`` become ``[[client]]`` tables (OpenID Connect clients declared in the
    file), and ``extra_config`` is TOML appended to the file as it is. Both are read
    when the server starts, so the URLs in them must be known before ``start()``.
    """

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        proxy_ca_file: Path | None = None,
        *,
        clients: Iterable["OidcClientConfig"] = (),
        extra_config: str = "",
    ):
        self.binary = binary
        self.workdir = workdir
        self.config = workdir / "tessera.toml"
        config = (
            "[database]\n"
            f"url = {_toml_string('sqlite://' + str(workdir / 'tessera.db'))}\n"
        )
        if proxy_ca_file is not None:
            config += f"\n[proxy]\nca_file = {_toml_string(str(proxy_ca_file))}\n"
        for client in clients:
            config += "\n" + client.toml()
        if extra_config:
            config += "\n" + extra_config.rstrip("\n") + "\n"
        self.config.write_text(config)
        self.proc: subprocess.Popen | None = None
        self.root: str | None = None  # http://127.0.0.1:PORT (https with [server] tls_cert)
        self.stdout: deque[str] = deque(maxlen=500)
        self.stderr: deque[str] = deque(maxlen=500)
        self._drainers: list[threading.Thread] = []

    # -- admin CLI ----------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), *args, "--config", str(self.config)]
        try:
            result = subprocess.run(
                cmd,
                input=(stdin or "").encode("utf-8"),
                capture_output=True,
                timeout=CLI_TIMEOUT,
                # No controlling terminal: a password prompt must read stdin, and
                # cannot hang the suite waiting on a tty.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise TesseraError(f"`tessera {_show(args)}` did not finish within {CLI_TIMEOUT}s") from exc
        if result.returncode != 0:
            raise TesseraError(
                f"`tessera {_show(args)}` exited with {result.returncode}\n"
                f"stdout:\n{result.stdout.decode('utf-8', 'replace')}\n"
                f"stderr:\n{result.stderr.decode('utf-8', 'replace')}"
            )
        return result

    def add_user(self, user: User) -> None:
        args = ["user", "add", user.name, "--password-stdin"]
        for key, value in user.attrs:
            args += ["--attr", f"{key}={value}"]
        # The password goes on stdin without a trailing newline.
        self.cli(*args, stdin=user.password)

    def add_service(
        self,
        name: str,
        pattern: str,
        release: Iterable[str] | None = None,
        *,
        proxy_callback: str | None = None,
        proxy_target: bool = False,
    ) -> None:
        """Register a service; ``release=None`` releases every attribute.

        ``proxy_callback`` is the regex of the pgtUrls the service may get PGTs at;
        ``proxy_target`` lets it accept proxy tickets.
        """
        args = ["service", "add", name, "--pattern", pattern]
        if release is None:
            args.append("--release-all")
        else:
            for item in release:
                args += ["--release", item]
        if proxy_callback is not None:
            args += ["--proxy-callback", proxy_callback]
        if proxy_target:
            args.append("--proxy-target")
        self.cli(*args)

    # -- server ---------------------------------------------------------------

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(self.config), "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        first_line: queue.Queue[str | None] = queue.Queue(maxsize=1)

        def drain(stream, sink: deque[str], announce: bool) -> None:
            announced = False
            for line in stream:
                if announce and not announced:
                    first_line.put(line.rstrip("\r\n"))
                    announced = True
                sink.append(line.rstrip("\n"))
            if announce and not announced:
                first_line.put(None)  # EOF before any line: the process died

        for stream, sink, announce in (
            (self.proc.stdout, self.stdout, True),
            (self.proc.stderr, self.stderr, False),
        ):
            thread = threading.Thread(
                target=drain, args=(stream, sink, announce), name="tessera-drain", daemon=True
            )
            thread.start()
            self._drainers.append(thread)

        try:
            line = first_line.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise TesseraError(
                f"`tessera serve` printed no line on stdout within {STARTUP_TIMEOUT}s\n{self.log_tail()}"
            ) from None
        if line is None:
            self.stop()
            raise TesseraError(
                f"`tessera serve` closed stdout without printing its listening line "
                f"(exit code {self.proc.returncode})\n{self.log_tail()}"
            )
        match = LISTENING_RE.match(line)
        if not match:
            self.stop()
            raise TesseraError(
                "the first stdout line of `tessera serve` must be exactly "
                f"'tessera listening on http(s)://127.0.0.1:PORT', got {line!r}\n{self.log_tail()}"
            )
        self.root = match.group(1)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        for thread in self._drainers:
            thread.join(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        out = list(self.stdout)[-lines:]
        err = list(self.stderr)[-lines:]
        return "--- tessera stdout (tail) ---\n{}\n--- tessera stderr (tail) ---\n{}".format(
            "\n".join(out), "\n".join(err)
        )

    # -- URLs -----------------------------------------------------------------

    @property
    def base(self) -> str:
        """The CAS base URL, e.g. http://127.0.0.1:PORT/cas (no trailing slash)."""
        assert self.root, "tessera is not running"
        return f"{self.root}/cas"

    def url(self, endpoint: str) -> str:
        return f"{self.base}/{endpoint.lstrip('/')}"

    @property
    def issuer(self) -> str:
        """The OpenID Connect issuer, e.g. http://127.0.0.1:PORT/oidc (the default
        ``[oidc] issuer_path``); discovery is at ``issuer + /.well-known/openid-configuration``."""
        assert self.root, "tessera is not running"
        return f"{self.root}/oidc"


@dataclass(frozen=True)
class OidcClientConfig:
    """One ``[[client]]`` table: an OpenID Connect client declared in tessera's config."""

    id: str
    secret: str | None  # None: a public client
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    scopes: tuple[str, ...] | None = None  # None: tessera's default (openid profile email)
    signing_alg: str | None = None

    def toml(self) -> str:
        def array(values: Iterable[str]) -> str:
            return "[" + ", ".join(_toml_string(v) for v in values) + "]"

        lines = ["[[client]]", f"id = {_toml_string(self.id)}"]
        if self.secret is None:
            lines.append("public = true")
        else:
            lines.append(f"secret = {_toml_string(self.secret)}")
        lines.append(f"redirect_uris = {array(self.redirect_uris)}")
        if self.post_logout_redirect_uris:
            lines.append(f"post_logout_redirect_uris = {array(self.post_logout_redirect_uris)}")
        if self.backchannel_logout_uri is not None:
            lines.append(f"backchannel_logout_uri = {_toml_string(self.backchannel_logout_uri)}")
        if self.scopes is not None:
            lines.append(f"scopes = {array(self.scopes)}")
        if self.signing_alg is not None:
            lines.append(f"signing_alg = {_toml_string(self.signing_alg)}")
        return "\n".join(lines) + "\n"


def _show(args: Iterable[str]) -> str:
    return shlex.join(args)


# --------------------------------------------------------------------------
# In-process web apps


class LateBoundApp:
    """WSGI app whose real target is mounted after the socket is bound.

    The apps' ports must be known before tessera starts (services are
    registered per port), while the apps need tessera's port in their config.
    """

    def __init__(self) -> None:
        self.target = None

    def __call__(self, environ, start_response):
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"app not mounted yet\n"]
        return self.target(environ, start_response)


class AppServer:
    """A WSGI app served by werkzeug on 127.0.0.1, on a free port, in a thread."""

    def __init__(self, name: str):
        self.name = name
        self.wsgi = LateBoundApp()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.port = self.server.server_port
        self.root = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"app-{name}",
            daemon=True,
        )
        self.thread.start()

    def mount(self, app) -> None:
        self.wsgi.target = app

    @property
    def app(self):
        return self.wsgi.target

    def url(self, path: str = "/") -> str:
        return self.root + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=STOP_TIMEOUT)


class Sink:
    """A plain service landing page: answers 200 to anything and records requests.

    Used as the service URL for the tests that drive CAS clients directly, so
    that every URL tessera may contact or redirect to exists and is local.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], target))
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<!doctype html><title>service</title><p>service landing page</p>\n"]


# --------------------------------------------------------------------------
# TLS for proxy callbacks (pgtUrl)


class PkiError(RuntimeError):
    pass


@dataclass(frozen=True)
class TlsIdentity:
    """A server certificate (PEM) and its private key (PEM)."""

    cert: Path
    key: Path


class Pki:
    """Certificates for https proxy callbacks, made with the openssl CLI in ``workdir``.

    - ``ca_cert``: a CA made for this run; tessera trusts it through ``[proxy] ca_file``.
    - ``trusted``: a server certificate issued by that CA for 127.0.0.1 (SAN IP) and localhost.
    - ``untrusted``: a self-signed server certificate with the same names, from no CA tessera knows.
    """

    DAYS = "2"
    EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    SERVER_NAMES = "subjectAltName=IP:127.0.0.1,DNS:localhost"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.openssl = shutil.which("openssl")
        if self.openssl is None:
            raise PkiError("the openssl CLI is needed for the proxy tests (Debian package `openssl`)")
        self.ca_cert = workdir / "ca.pem"
        ca_key = workdir / "ca.key"
        self._run(
            "req", "-x509", *self.EC_KEY, "-keyout", ca_key, "-out", self.ca_cert, "-days", self.DAYS,
            "-subj", "/CN=Tessera interop test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )

        self.trusted = TlsIdentity(workdir / "trusted.pem", workdir / "trusted.key")
        csr = workdir / "trusted.csr"
        extensions = workdir / "trusted.ext"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            f"{self.SERVER_NAMES}\n"
        )
        self._run("req", "-new", *self.EC_KEY, "-keyout", self.trusted.key, "-out", csr, "-subj", "/CN=127.0.0.1")
        self._run(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", ca_key,
            "-CAserial", workdir / "ca.srl", "-CAcreateserial",
            "-out", self.trusted.cert, "-days", self.DAYS, "-extfile", extensions,
        )

        self.untrusted = TlsIdentity(workdir / "untrusted.pem", workdir / "untrusted.key")
        self._run(
            "req", "-x509", *self.EC_KEY, "-keyout", self.untrusted.key, "-out", self.untrusted.cert,
            "-days", self.DAYS, "-subj", "/CN=127.0.0.1",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth",
            "-addext", self.SERVER_NAMES,
        )

    def _run(self, *args) -> None:
        cmd = [self.openssl, *map(str, args)]
        try:
            result = subprocess.run(cmd, capture_output=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise PkiError(f"`{_show(cmd)}` did not finish within {CLI_TIMEOUT}s") from exc
        if result.returncode != 0:
            raise PkiError(
                f"`{_show(cmd)}` exited with {result.returncode}\n"
                f"stderr:\n{result.stderr.decode('utf-8', 'replace')}"
            )


@dataclass(frozen=True)
class CallbackRequest:
    target: str  # path and query, as sent
    headers: dict[str, str]


class PgtCallbackServer:
    """An https proxy callback (pgtUrl) on 127.0.0.1, on a free port, in a thread.

    It does what django-cas-ng's ``CallbackView`` does: a GET with both ``pgtIou``
    and ``pgtId`` stores the pair (``pgts``: PGTIOU -> PGT), and every GET is
    answered 200 ``ok``. It records every request that got past the TLS handshake
    (``requests``) and every handshake that failed (``handshake_failures``).
    """

    def __init__(self, name: str, identity: TlsIdentity):
        self.name = name
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(identity.cert, identity.key)
        self.pgts: dict[str, str] = {}
        self.requests: list[CallbackRequest] = []
        self.handshake_failures: list[str] = []
        self._lock = threading.Lock()
        self.server = _TlsHttpServer(self, context)
        self.port = self.server.server_address[1]
        self.root = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"callback-{name}",
            daemon=True,
        )
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return self.root + path

    def snapshot(self) -> tuple[dict[str, str], list[CallbackRequest], list[str]]:
        with self._lock:
            return dict(self.pgts), list(self.requests), list(self.handshake_failures)

    def _record(self, target: str, headers: dict[str, str]) -> None:
        params = query_params(target)
        with self._lock:
            self.requests.append(CallbackRequest(target, headers))
            if params.get("pgtIou") and params.get("pgtId"):
                self.pgts[params["pgtIou"]] = params["pgtId"]

    def _handshake_failed(self, error: Exception) -> None:
        with self._lock:
            self.handshake_failures.append(f"{type(error).__name__}: {error}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=STOP_TIMEOUT)


class _TlsHttpServer(ThreadingHTTPServer):
    """Accepts plain TCP and does the TLS handshake in the request's own thread,
    so that a failed handshake can be recorded."""

    daemon_threads = True

    def __init__(self, owner: PgtCallbackServer, context: ssl.SSLContext):
        self.owner = owner
        self.context = context
        super().__init__(("127.0.0.1", 0), _PgtCallbackHandler)

    def finish_request(self, request, client_address) -> None:
        request.settimeout(HTTP_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except OSError as exc:  # ssl.SSLError included
            self.owner._handshake_failed(exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class _PgtCallbackHandler(BaseHTTPRequestHandler):
    server_version = "pgt-callback"

    def do_GET(self) -> None:
        self.server.owner._record(self.path, dict(self.headers.items()))
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


# --------------------------------------------------------------------------
# HTML forms


@dataclass
class Form:
    method: str
    action: str | None
    fields: list[tuple[str, str]] = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)  # every named control, in order
    input_types: dict[str, str] = field(default_factory=dict)
    submitter: tuple[str, str] | None = None  # first named submit button

    def value(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    def has_password_input(self) -> bool:
        return "password" in self.input_types.values()


class _FormParser(HTMLParser):
    """Collects every <form> and the data a browser would submit from it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self._select: dict | None = None
        self._option: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key.lower(): (value if value is not None else "") for key, value in attrs}
        if tag == "form":
            self._form = Form(method=(a.get("method") or "get").lower(), action=a.get("action"))
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = a.get("name")
        disabled = "disabled" in a
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if name:
                form.input_names.append(name)
                form.input_types[name] = kind
            if not name or disabled:
                return
            if kind in ("submit", "image"):
                if form.submitter is None:
                    form.submitter = (name, a.get("value", ""))
            elif kind in ("button", "reset", "file"):
                pass
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields.append((name, a.get("value") or "on"))
            else:
                form.fields.append((name, a.get("value", "")))
        elif tag == "button":
            kind = (a.get("type") or "submit").lower()
            if name and kind == "submit" and not disabled and form.submitter is None:
                form.submitter = (name, a.get("value", ""))
        elif tag == "textarea" and name:
            form.input_names.append(name)
            form.input_types[name] = "textarea"
            if not disabled:
                self._textarea = (name, [])
        elif tag == "select" and name:
            form.input_names.append(name)
            form.input_types[name] = "select"
            if not disabled:
                self._select = {"name": name, "options": []}
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": []}
            self._select["options"].append(self._option)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea" and self._textarea is not None:
            name, parts = self._textarea
            if self._form is not None:
                self._form.fields.append((name, "".join(parts)))
            self._textarea = None
        elif tag == "option":
            self._option = None
        elif tag == "select" and self._select is not None:
            options = self._select["options"]
            chosen = next((o for o in options if o["selected"]), options[0] if options else None)
            if chosen is not None and self._form is not None:
                value = chosen["value"] if chosen["value"] is not None else "".join(chosen["text"]).strip()
                self._form.fields.append((self._select["name"], value))
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)
        elif self._option is not None:
            self._option["text"].append(data)


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


class _WhoamiParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.text: list[str] = []
        self.found = False

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
        elif tag == "pre" and ("id", "whoami") in attrs:
            self.depth = 1
            self.found = True

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


# --------------------------------------------------------------------------
# The browser


class BrowserCookiePolicy(DefaultCookiePolicy):
    """Cookie policy of a current browser on loopback.

    Browsers treat http://127.0.0.1 and http://localhost as secure contexts and
    send ``Secure`` cookies there; Python's cookiejar does not. Without this a
    ``Secure`` TGC would silently never be sent back over plain-http loopback.
    """

    def return_ok_secure(self, cookie, request) -> bool:
        if cookie.secure and urlsplit(request.get_full_url()).hostname in LOOPBACK_HOSTS:
            return True
        return super().return_ok_secure(cookie, request)


@dataclass
class Hop:
    method: str
    url: str
    response: requests.Response
    _forms: list[Form] | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def location(self) -> str | None:
        """The Location header, made absolute against this hop's URL."""
        value = self.response.headers.get("Location")
        return urljoin(self.url, value) if value else None

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308) and self.location is not None

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def forms(self) -> list[Form]:
        if self._forms is None:
            ctype = self.response.headers.get("Content-Type", "")
            self._forms = parse_forms(self.text) if "html" in ctype.lower() else []
        return self._forms

    @property
    def shows_login_form(self) -> bool:
        return any(form.has_password_input() for form in self.forms)

    @property
    def login_form(self) -> Form:
        forms = self.forms
        assert len(forms) == 1, f"expected exactly one <form> on {self.url}, found {len(forms)}"
        return forms[0]

    def whoami(self) -> dict | None:
        """The JSON an app's protected page shows (user and attributes), if any."""
        if self.status != 200:
            return None
        parser = _WhoamiParser()
        parser.feed(self.text)
        parser.close()
        return json.loads("".join(parser.text)) if parser.found else None

    def describe(self) -> str:
        line = f"{self.method} {self.url} -> {self.status}"
        if self.location:
            line += f" Location: {self.location}"
        if self.shows_login_form:
            line += " [login form]"
        return line


def describe(hops: Iterable[Hop]) -> str:
    return "\n".join("  " + hop.describe() for hop in hops)


class Browser:
    """A cookie-keeping user agent that follows redirects one hop at a time."""

    def __init__(self, ca_file: Path | None = None) -> None:
        """``ca_file``: the CAs trusted for https (default: the system's)."""
        self.session = requests.Session()
        self.session.trust_env = False  # never route loopback traffic through a proxy
        if ca_file is not None:
            self.session.verify = str(ca_file)
        self.session.cookies.set_policy(BrowserCookiePolicy())
        self.session.headers["User-Agent"] = "tessera-interop-browser"
        self.history: list[Hop] = []

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, url: str, data=None, headers: dict | None = None) -> Hop:
        prepared = self.session.prepare_request(
            requests.Request(method, url, data=data, headers=headers)
        )
        # requests builds the Cookie header from a copy of the jar that has the
        # default policy; rebuild it with this browser's policy.
        prepared.headers.pop("Cookie", None)
        cookie_header = get_cookie_header(self.session.cookies, prepared)
        if cookie_header:
            prepared.headers["Cookie"] = cookie_header
        response = self.session.send(prepared, allow_redirects=False, timeout=HTTP_TIMEOUT)
        hop = Hop(method, url, response)
        self.history.append(hop)
        return hop

    def get(self, url: str) -> Hop:
        return self.request("GET", url)

    def follow(
        self,
        url: str,
        *,
        method: str = "GET",
        data=None,
        headers: dict | None = None,
        stop: Callable[[str], bool] | None = None,
    ) -> list[Hop]:
        """Request ``url`` and follow redirects; ``stop(next_url)`` ends the walk early
        (the redirect hop that points at ``next_url`` is then the last hop).
        ``headers`` go with the first request only."""
        hops = [self.request(method, url, data, headers)]
        while hops[-1].is_redirect:
            previous = hops[-1]
            target = previous.location
            if stop is not None and stop(target):
                break
            if len(hops) >= MAX_HOPS:
                raise AssertionError(f"more than {MAX_HOPS} redirects:\n{describe(hops)}")
            if previous.status in (307, 308):
                hops.append(self.request(previous.method, target, data))
            else:
                hops.append(self.request("GET", target))
        return hops

    def submit_login(
        self,
        page: Hop,
        username: str,
        password: str,
        *,
        stop: Callable[[str], bool] | None = None,
    ) -> list[Hop]:
        """Fill in the page's only form as a person would and submit every field of it."""
        form = page.login_form
        assert "username" in form.input_names, f"login form has no 'username' input: {form}"
        assert "password" in form.input_names, f"login form has no 'password' input: {form}"
        data = [(key, value) for key, value in form.fields if key not in ("username", "password")]
        data += [("username", username), ("password", password)]
        if form.submitter is not None:
            data.append(form.submitter)
        action = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            # What a current browser adds to a form POST.
            headers = {"Origin": _origin(page.url), "Sec-Fetch-Site": _fetch_site(page.url, action)}
            return self.follow(action, method="POST", data=data, headers=headers, stop=stop)
        raise AssertionError(f"login form must use method=post, has {form.method!r}")

    def cookie(self, name: str):
        """The Cookie object called ``name`` (or None)."""
        for cookie in self.session.cookies:
            if cookie.name == name:
                return cookie
        return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _fetch_site(from_url: str, to_url: str) -> str:
    if _origin(from_url) == _origin(to_url):
        return "same-origin"
    a, b = urlsplit(from_url), urlsplit(to_url)
    return "same-site" if (a.scheme, a.hostname) == (b.scheme, b.hostname) else "cross-site"


# --------------------------------------------------------------------------
# A PHP application


class PhpServer:
    """PHP's built-in web server on 127.0.0.1 (a port of its choosing), every request going to
    the router script ``script``, with ``env`` added to its environment and its sessions kept
    in ``workdir``, under a session cookie named after ``name``: cookies do not tell ports
    apart, and two applications sharing one cookie would each forget the other's session."""

    STARTED_RE = re.compile(r"Development Server \((http://127\.0\.0\.1:\d+)\) started")

    def __init__(self, name: str, script: Path, workdir: Path, env: dict[str, str]):
        self.name = name
        self.cookie = "session" + "".join(c for c in name if c.isalnum())
        php = shutil.which("php")
        if php is None:
            raise RuntimeError("the php CLI is needed for the phpCAS tests (scripts/interop-setup installs it)")
        sessions = workdir / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        self.sessions = sessions
        self.log: deque[str] = deque(maxlen=200)
        self.proc = subprocess.Popen(
            [php, "-d", f"session.save_path={sessions}", "-d", f"session.name={self.cookie}",
             "-d", "display_errors=stderr",
             "-S", "127.0.0.1:0", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env={**os.environ, **env},
        )
        started: queue.Queue[str | None] = queue.Queue(maxsize=1)

        def drain() -> None:
            announced = False
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                match = self.STARTED_RE.search(line)
                if match and not announced:
                    started.put(match.group(1))
                    announced = True
            if not announced:
                started.put(None)

        self._drainer = threading.Thread(target=drain, name=f"php-{name}", daemon=True)
        self._drainer.start()
        try:
            root = started.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            root = None
        if root is None:
            self.close()
            raise RuntimeError(f"php -S did not start for {name}:\n" + "\n".join(self.log))
        self.root = root

    def url(self, path: str = "/") -> str:
        return self.root + path

    def close(self) -> None:
        stop_process(self.proc)
        self._drainer.join(timeout=STOP_TIMEOUT)


# --------------------------------------------------------------------------
# Apache


def free_port() -> int:
    """A port nothing listens on now (another process may take it before it is bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApacheServer:
    """Apache 2.4 (Debian's ``apache2``) from a configuration of its own, in a world-readable
    directory of its own (as root, Apache's children run as www-data): one name-based virtual
    host per name in ``vhosts``, each on a free port of 127.0.0.1, and ``page`` served as the
    index of ``/protected/`` and ``/maybe/`` with server-side includes. The caller writes the
    rest (``start``). ``close`` stops it and removes the directory."""

    BINARY = "/usr/sbin/apache2"
    MODULES = Path("/usr/lib/apache2/modules")
    BASE_MODULES = ("mpm_event", "authn_core", "authz_core", "authz_user", "include", "dir")
    START_WAIT = 20  # seconds for it to listen

    def __init__(self, vhosts: Iterable[str], page: str):
        if not os.access(self.BINARY, os.X_OK):
            raise RuntimeError("apache2 is needed (scripts/interop-setup installs it)")
        self.proc: subprocess.Popen | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="tessera-apache-"))
        self.dir.chmod(0o755)
        self.ports = {name: free_port() for name in vhosts}
        self.docroot = self.dir / "htdocs"
        for path in ("protected", "maybe"):
            (self.docroot / path).mkdir(parents=True)
            (self.docroot / path / "whoami.html").write_text(page)
        for path in (self.docroot, *self.docroot.iterdir()):
            path.chmod(0o755)
        # Where its modules may write (their caches).
        self.state = self.dir / "state"
        self.state.mkdir()
        self.user = ""
        if os.geteuid() == 0:
            www = pwd.getpwnam("www-data")
            os.chown(self.state, www.pw_uid, www.pw_gid)
            self.user = "User www-data\nGroup www-data\n"

    def copy_in(self, path: Path) -> Path:
        """A readable copy of ``path`` in the server's directory."""
        copy = self.dir / path.name
        shutil.copyfile(path, copy)
        copy.chmod(0o644)
        return copy

    def start(self, modules: Iterable[str], body: str) -> None:
        """Starts it with ``modules`` loaded besides the basic ones and ``body`` after the
        common directives (``DocumentRoot`` is the page's directory)."""
        load = "".join(
            f"LoadModule {name}_module {self.MODULES}/mod_{name}.so\n"
            for name in (*self.BASE_MODULES, *modules)
        )
        listen = "".join(f"Listen 127.0.0.1:{port}\n" for port in self.ports.values())
        config = self.dir / "httpd.conf"
        config.write_text(
            f'ServerRoot "{self.dir}"\nDefaultRuntimeDir "{self.dir}"\n'
            f'PidFile "{self.dir}/httpd.pid"\nErrorLog "{self.dir}/error.log"\n'
            f"ServerName 127.0.0.1\n{self.user}{load}{listen}"
            f'DocumentRoot "{self.docroot}"\n{body}'
        )
        self.proc = subprocess.Popen(
            [self.BINARY, "-f", str(config), "-DFOREGROUND"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + self.START_WAIT
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"apache2 exited: {self.proc.stderr.read()}\n{self.error_log()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"apache2 is not listening:\n{self.error_log()}") from None
                    time.sleep(0.1)

    def url(self, vhost: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[vhost]}{path}"

    def error_log(self) -> str:
        log = self.dir / "error.log"
        return log.read_text(errors="replace")[-5000:] if log.is_file() else ""

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Small helpers shared by the tests


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def ticket_in(url: str) -> str | None:
    return query_params(url).get("ticket")


def expected_ticket_redirect(service: str, ticket: str) -> str:
    """Where tessera must send the browser: ``ticket`` appended last, before any fragment."""
    base, hashmark, fragment = service.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}ticket={ticket}{hashmark}{fragment}"


def login_for_ticket(
    browser: Browser, login_url: str, service: str, user: User, *, sso: bool = False
) -> str:
    """Walk the browser through tessera's login form and return the service ticket
    it hands to ``service`` (without ever letting anything validate it).

    With ``sso=True`` the browser must get the ticket from its SSO session alone.
    """
    def at_service(url: str) -> bool:
        return url.startswith(service.partition("#")[0])

    hops = browser.follow(login_url, stop=at_service)
    page = hops[-1]
    if sso:
        assert page.is_redirect, f"expected single sign-on, got:\n{describe(hops)}"
    elif not page.is_redirect:  # no SSO session yet: a form to fill in
        assert page.status == 200 and page.shows_login_form, (
            f"expected tessera's login form:\n{describe(hops)}"
        )
        hops = browser.submit_login(page, user.name, user.password, stop=at_service)
        page = hops[-1]
    assert page.status == 302 and page.location, f"login did not redirect:\n{describe(hops)}"
    ticket = ticket_in(page.location)
    assert ticket, f"no ticket in the redirect:\n{describe(hops)}"
    assert page.location == expected_ticket_redirect(service, ticket), (
        f"the ticket must be appended to the service URL exactly as sent:\n"
        f"  service:  {service}\n  location: {page.location}"
    )
    return ticket


# --------------------------------------------------------------------------
# The demo apps as the tests see them


@dataclass
class App:
    """One running demo app (a module of ``apps/``) and the URLs the tests need."""

    name: str
    module: object
    server: AppServer

    @property
    def root(self) -> str:
        return self.server.root

    def url(self, path: str) -> str:
        return self.server.url(path)

    @property
    def protected_url(self) -> str:
        return self.url(self.module.PROTECTED_PATH)

    @property
    def logout_url(self) -> str:
        return self.url(self.module.LOGOUT_PATH)

    @property
    def after_logout_url(self) -> str:
        return self.url(self.module.AFTER_LOGOUT_PATH)

    @property
    def callback_url(self) -> str:
        """Where tickets arrive (the service URL, up to its query)."""
        return self.url(self.module.CALLBACK_PATH)

    @property
    def tickets_seen(self) -> list[str]:
        from apps._common import TICKETS_SEEN

        return self.server.app.extensions[TICKETS_SEEN]

    def ticket_hops(self, hops: Iterable[Hop]) -> list[Hop]:
        return [h for h in hops if h.url.startswith(self.callback_url) and ticket_in(h.url)]


def sign_in_at(browser: Browser, tessera: Tessera, url: str, user: User) -> dict:
    """Open ``url`` of an application that sends the browser to tessera's login form (with
    ``url`` as the service), sign in, and return what the application then shows (its
    ``whoami``), which must be at ``url`` again: the client validated the ticket, then sent
    the browser to the address without it."""
    hops = browser.follow(url)
    form = hops[-1]
    assert form.url.startswith(tessera.base + "/login?service=") and form.shows_login_form, (
        f"expected the application to send the browser to tessera's login form:\n{describe(hops)}"
    )
    assert query_params(form.url)["service"] == url, describe(hops)
    hops += browser.submit_login(form, user.name, user.password)
    who = hops[-1].whoami()
    assert who is not None, f"no page for the user:\n{describe(hops)}\n{hops[-1].text[:3000]}"
    assert any(ticket_in(hop.url) for hop in hops), describe(hops)
    assert hops[-1].url == url, describe(hops)
    return who


def sign_in_via_app(browser: Browser, tessera: Tessera, app: App, user: User) -> list[Hop]:
    """Open the app's protected page, sign in on tessera's form, land back on the page."""
    hops = browser.follow(app.protected_url)
    form_page = hops[-1]
    assert (
        form_page.url.startswith(tessera.base) and form_page.status == 200 and form_page.shows_login_form
    ), f"expected the app to send the browser to tessera's login form:\n{describe(hops)}"
    hops += browser.submit_login(form_page, user.name, user.password)
    who = hops[-1].whoami()
    assert who is not None and who.get("user") == user.name, (
        f"expected {app.name}'s protected page for {user.name}:\n{describe(hops)}\n"
        f"last body:\n{hops[-1].text[:2000]}"
    )
    return hops
