"""openid-client 6.9.1 (Node.js), a certified OpenID Connect relying party library, against the
https tessera of ``conftest.https_tessera`` (the library refuses http issuers by default).

The relying party is ``node/rp.mjs``: it runs discovery, sends the browser to the authorization
endpoint with PKCE, state and nonce, and, given the URL the browser came back to, redeems the
code (``client_secret_basic``), checks the ID token as the library does, calls userinfo,
refreshes the tokens and builds the logout URL. This test drives the browser in between.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import ALICE, Browser, describe, query_params

NODE_DIR = Path(__file__).resolve().parent / "node"
CLIENT_ID = "openid-client-demo"
# Nothing listens at these: the browser's walk stops at the redirect to them.
REDIRECT_URI = "http://127.0.0.1:9/callback"
POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:9/signed-out"
RP_TIMEOUT = 30  # seconds for the relying party's steps


@pytest.fixture(scope="module")
def registered(https_tessera):
    """The client, registered with the running https tessera; its secret."""
    if not (NODE_DIR / "node_modules" / "openid-client").is_dir() or shutil.which("node") is None:
        pytest.fail(
            "node and interop/node/node_modules are needed (scripts/interop-setup installs them)",
            pytrace=False,
        )
    secret = secrets.token_urlsafe(32)
    https_tessera.cli(
        "client", "add", CLIENT_ID, "--secret-stdin",
        "--redirect-uri", REDIRECT_URI,
        "--post-logout-redirect-uri", POST_LOGOUT_REDIRECT_URI,
        stdin=secret + "\n",
    )
    return secret


class RelyingParty:
    """``node rp.mjs``, spoken to one JSON line at a time."""

    def __init__(self, issuer: str, secret: str, ca_file: Path):
        self.proc = subprocess.Popen(
            ["node", "rp.mjs", issuer, CLIENT_ID, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)},
        )
        self.send(secret)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=RP_TIMEOUT)
            raise AssertionError(f"the relying party ended: {self.proc.stderr.read()}")
        message = json.loads(line)
        assert "error" not in message, f"openid-client refused: {message}"
        return message

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=RP_TIMEOUT)


def test_openid_client_signs_in_refreshes_and_logs_out(stack, https_tessera, registered):
    issuer = https_tessera.issuer
    rp = RelyingParty(issuer, registered, stack.pki.ca_cert)
    browser = Browser(stack.pki.ca_cert)
    try:
        authorization_url = rp.receive()["authorization_url"]
        params = query_params(authorization_url)
        assert params["code_challenge_method"] == "S256" and params["nonce"], params
        assert authorization_url.startswith(issuer + "/authorize?"), authorization_url

        # The browser: tessera's login form, then back to the redirect URI with a code.
        back = lambda url: url.startswith(REDIRECT_URI)  # noqa: E731
        hops = browser.follow(authorization_url, stop=back)
        form = hops[-1]
        assert form.status == 200 and form.shows_login_form, describe(hops)
        hops = browser.submit_login(form, ALICE.name, ALICE.password, stop=back)
        callback = hops[-1].location
        assert callback and back(callback), describe(hops)
        assert query_params(callback)["state"] == params["state"], callback

        rp.send(callback)
        result = rp.receive()
    finally:
        rp.close()

    claims = result["claims"]
    assert claims["iss"] == issuer and claims["aud"] == CLIENT_ID, claims
    assert claims["sub"] and claims["nonce"] == params["nonce"], claims
    assert result["token_type"].lower() == "bearer", result
    userinfo = result["userinfo"]
    assert userinfo["sub"] == claims["sub"], userinfo
    assert userinfo["email"] == "alice@example.org", userinfo
    assert userinfo["name"] == "Alice Example", userinfo
    refreshed = result["refreshed"]
    assert refreshed["rotated"], refreshed
    assert refreshed["userinfo_sub"] == claims["sub"], refreshed
    if refreshed["id_token_claims"] is not None:
        again = refreshed["id_token_claims"]
        assert again["sub"] == claims["sub"] and again["auth_time"] == claims["auth_time"], again
    end_session = result["end_session_url"]
    assert urlsplit(end_session).path == urlsplit(issuer).path + "/logout", end_session

    # The logout URL the library built ends the browser's session and comes back with the state.
    try:
        hop = browser.get(end_session)
        assert hop.is_redirect, hop.describe()
        assert hop.location == f"{POST_LOGOUT_REDIRECT_URI}?state=signed-out", hop.describe()
        hops = browser.follow(authorization_url, stop=back)
        assert hops[-1].shows_login_form, f"the session should have ended:\n{describe(hops)}"
    finally:
        browser.close()
