"""mod_auth_openidc 2.4 (Debian's libapache2-mod-auth-openidc), a certified OpenID Connect
relying party, protecting pages of a local Apache against the https tessera of
``conftest.https_tessera`` (it checks the provider's certificate with ``OIDCCABundlePath``).

It signs in with the authorization code flow (PKCE S256, ``client_secret_basic``, from the
discovery document), passes the claims on to the page (a server-side include), logs out
through tessera's end-session endpoint, and takes back-channel logout tokens at its redirect
URI.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

import pytest

from harness import ALICE, ApacheServer, Browser, describe, query_params

CLIENT_ID = "apache-openidc"
SLO_WAIT = 10  # seconds for a back-channel logout to reach Apache

WHOAMI = """<!DOCTYPE html><html lang="en"><head><title>Apache</title></head><body><pre id="whoami">\
{"user": "<!--#echo var="REMOTE_USER" -->", \
"email": "<!--#echo var="OIDC_CLAIM_email" -->", \
"name": "<!--#echo var="OIDC_CLAIM_name" -->"}</pre></body></html>
"""


@pytest.fixture(scope="module")
def apache(stack, https_tessera):
    server = ApacheServer(["app"], WHOAMI)
    try:
        redirect_uri = server.url("app", "/protected/redirect_uri")
        secret = secrets.token_urlsafe(32)
        https_tessera.cli(
            "client", "add", CLIENT_ID, "--secret-stdin",
            "--redirect-uri", redirect_uri,
            "--post-logout-redirect-uri", server.url("app", "/maybe/"),
            "--backchannel-logout-uri", redirect_uri + "?logout=backchannel",
            stdin=secret + "\n",
        )
        ca = server.copy_in(stack.pki.ca_cert)
        server.start(
            ["auth_openidc"],
            f"""LogLevel warn auth_openidc:debug
OIDCProviderMetadataURL {https_tessera.issuer}/.well-known/openid-configuration
OIDCCABundlePath "{ca}"
OIDCClientID {CLIENT_ID}
OIDCClientSecret {secret}
OIDCRedirectURI {redirect_uri}
OIDCCryptoPassphrase {secrets.token_hex(16)}
OIDCScope "openid profile email"
OIDCPKCEMethod S256
<Directory "{server.docroot}">
    Options +Includes
    SetOutputFilter INCLUDES
    DirectoryIndex whoami.html
</Directory>
<Location /protected/>
    AuthType openid-connect
    Require valid-user
</Location>
""",
        )
    except RuntimeError as exc:
        server.close()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()


def sign_in(browser: Browser, https_tessera, apache) -> dict:
    url = apache.url("app", "/protected/")
    hops = browser.follow(url)
    form = hops[-1]
    assert form.shows_login_form, f"{describe(hops)}\n{apache.error_log()}"
    authorize = [hop for hop in hops if hop.url.startswith(https_tessera.issuer + "/authorize?")]
    assert authorize, describe(hops)
    params = query_params(authorize[0].url)
    assert params["client_id"] == CLIENT_ID and params["code_challenge_method"] == "S256", params
    hops = browser.submit_login(form, ALICE.name, ALICE.password)
    who = hops[-1].whoami()
    assert who is not None and hops[-1].url == url, (
        f"{describe(hops)}\n{hops[-1].text[:2000]}\n{apache.error_log()}"
    )
    return who


def test_mod_auth_openidc_signs_in_and_passes_the_claims_on(stack, https_tessera, apache):
    browser = Browser(stack.pki.ca_cert)
    who = sign_in(browser, https_tessera, apache)
    assert who["user"], who
    assert who["email"] == "alice@example.org", who
    assert who["name"] == "Alice Example", who
    browser.close()


def test_mod_auth_openidc_logout_ends_the_tessera_session(stack, https_tessera, apache):
    browser = Browser(stack.pki.ca_cert)
    sign_in(browser, https_tessera, apache)
    back = apache.url("app", "/maybe/")
    logout = apache.url("app", "/protected/redirect_uri?logout=" + quote(back, safe=""))
    hops = browser.follow(logout)
    assert any(hop.url.startswith(https_tessera.issuer + "/logout") for hop in hops), (
        f"{describe(hops)}\n{apache.error_log()}"
    )
    assert hops[-1].url == back, describe(hops)
    # Both sessions are over: the page asks tessera, which shows its form.
    hops = browser.follow(apache.url("app", "/protected/"))
    assert hops[-1].shows_login_form, describe(hops)
    browser.close()


def test_a_cas_logout_reaches_mod_auth_openidc_by_back_channel(stack, https_tessera, apache):
    browser = Browser(stack.pki.ca_cert)
    sign_in(browser, https_tessera, apache)
    # The module's own session lets the browser in without asking tessera...
    hop = browser.get(apache.url("app", "/protected/"))
    assert hop.status == 200 and hop.whoami()["email"] == "alice@example.org", hop.describe()
    # ...until the SSO session ends at tessera's CAS logout, which sends it a logout token.
    hops = browser.follow(https_tessera.url("/logout"))
    assert hops[-1].status == 200, describe(hops)
    deadline = time.monotonic() + SLO_WAIT
    while True:
        hop = browser.get(apache.url("app", "/protected/"))
        if hop.is_redirect and hop.location.startswith(https_tessera.issuer + "/authorize"):
            break
        assert time.monotonic() < deadline, (
            f"still logged in at Apache after the back-channel logout: {hop.describe()}\n"
            + https_tessera.log_tail()
            + apache.error_log()
        )
        time.sleep(0.2)
    browser.close()
