"""mod_auth_cas 1.2 (Debian's libapache2-mod-auth-cas) protecting pages of a local Apache.

Apache runs from a configuration of its own (``apache2 -f``), with three virtual hosts on free
ports: they validate at ``/cas/validate`` (``CASVersion 1``), ``/cas/serviceValidate`` (CAS 2.0)
and ``/cas/samlValidate`` (``CASValidateSAML On``), all against the https tessera of
``conftest.https_tessera``, whose certificate mod_auth_cas checks against the run's CA
(``CASCertificatePath``). The protected
page is a server-side include that shows ``REMOTE_USER`` and the attribute headers
(``CASAuthNHeader``, ``CASAttributePrefix``) as JSON; ``CASSSOEnabled`` takes single-logout
requests.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import ALICE, ApacheServer, Browser, Tessera, describe, sign_in_at

VHOSTS = {"v1": "validate", "v2": "serviceValidate", "saml": "samlValidate"}
ATTRIBUTES = ("v2", "saml")  # CAS 1.0 has no attributes
SLO_WAIT = 10  # seconds for a back-channel logout to reach Apache

# Attributes arrive as request headers (CAS-<name>, values joined by the delimiter), which
# server-side includes see as HTTP_CAS_<NAME>.
WHOAMI = """<!DOCTYPE html><html lang="en"><head><title>Apache</title></head><body><pre id="whoami">\
{"user": "<!--#echo var="REMOTE_USER" -->", \
"mail": "<!--#echo var="HTTP_CAS_MAIL" -->", \
"displayName": "<!--#echo var="HTTP_CAS_DISPLAYNAME" -->", \
"eduPersonAffiliation": "<!--#echo var="HTTP_CAS_EDUPERSONAFFILIATION" -->"}</pre></body></html>
"""


def start_apache(tessera: Tessera, ca_file: Path) -> ApacheServer:
    server = ApacheServer(VHOSTS, WHOAMI)
    try:
        ca = server.copy_in(ca_file)
        vhosts = "".join(
            f"""
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1:{port}
    CASValidateURL {tessera.url(endpoint)}
    CASVersion {1 if name == "v1" else 2}
    CASValidateSAML {"On" if name == "saml" else "Off"}
    <Location />
        CASCookie MOD_AUTH_CAS_{name.upper()}
        CASGatewayCookie MOD_AUTH_CAS_G_{name.upper()}
    </Location>
</VirtualHost>
"""
            for name, endpoint in VHOSTS.items()
            for port in [server.ports[name]]
        )
        server.start(
            ["auth_cas"],
            f"""LogLevel warn auth_cas:debug
CASCookiePath "{server.state}/"
CASCertificatePath "{ca}"
CASLoginURL {tessera.url("/login")}
CASSSOEnabled On
CASDebug On
<Directory "{server.docroot}">
    Options +Includes
    SetOutputFilter INCLUDES
    DirectoryIndex whoami.html
    AuthType CAS
    CASAuthNHeader CAS-User
    Require valid-user
</Directory>
<Directory "{server.docroot}/maybe">
    CASGateway /maybe/
</Directory>
{vhosts}""",
        )
    except RuntimeError as exc:
        server.close()
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="module")
def apache(stack, https_tessera):
    server = start_apache(https_tessera, stack.pki.ca_cert)
    try:
        for name in VHOSTS:
            https_tessera.add_service(
                f"apache-{name}", rf"http://127\.0\.0\.1:{server.ports[name]}/.*"
            )
        yield server
    finally:
        server.close()


def alice_attributes(who: dict) -> None:
    assert who["mail"] == "alice@example.org", who
    assert who["displayName"] == "Alice Example", who
    assert sorted(who["eduPersonAffiliation"].split(",")) == ["member", "staff"], who


@pytest.mark.parametrize("vhost", ATTRIBUTES)
def test_mod_auth_cas_logs_in_and_passes_the_attributes_on(stack, https_tessera, apache, vhost):
    browser = Browser(stack.pki.ca_cert)
    url = apache.url(vhost, "/protected/")
    try:
        who = sign_in_at(browser, https_tessera, url, ALICE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{apache.error_log()}") from None
    assert who["user"] == "alice", who
    alice_attributes(who)
    browser.close()


def test_mod_auth_cas_logs_in_over_cas_1(stack, https_tessera, apache):
    """CAS 1.0: mod_auth_cas reads `yes` and the user from /validate, line by line."""
    browser = Browser(stack.pki.ca_cert)
    who = sign_in_at(browser, https_tessera, apache.url("v1", "/protected/"), ALICE)
    assert who["user"] == "alice" and who["mail"] == "(none)", who
    browser.close()


def test_mod_auth_cas_single_sign_on_then_single_logout(stack, https_tessera, apache):
    browser = Browser(stack.pki.ca_cert)
    sign_in_at(browser, https_tessera, apache.url("v2", "/protected/"), ALICE)
    for vhost in ("saml", "v1"):
        hops = browser.follow(apache.url(vhost, "/protected/"))
        assert not any(hop.shows_login_form for hop in hops), describe(hops)
        assert hops[-1].whoami()["user"] == "alice", describe(hops)

    # Logging out of tessera tells all three; mod_auth_cas forgets each session.
    hops = browser.follow(https_tessera.url("/logout"))
    assert hops[-1].status == 200, describe(hops)
    deadline = time.monotonic() + SLO_WAIT
    for vhost in VHOSTS:
        while True:
            hop = browser.get(apache.url(vhost, "/protected/"))
            if hop.is_redirect and hop.location.startswith(https_tessera.url("/login")):
                break
            assert time.monotonic() < deadline, (
                f"{vhost}: still logged in after tessera's single logout: {hop.describe()}\n"
                + apache.error_log()
            )
            time.sleep(0.2)
    browser.close()


def test_mod_auth_cas_gateway_comes_back_without_a_ticket(stack, https_tessera, apache):
    """CASGateway: mod_auth_cas asks with ``gateway=true`` (after its lowercase-hex service);
    without a session tessera sends the browser back to the service exactly, with no ticket
    and no form. (What Apache then does with an anonymous visitor is its own configuration.)"""
    browser = Browser(stack.pki.ca_cert)
    url = apache.url("v2", "/maybe/")
    hops = browser.follow(url, stop=lambda target: target == url)
    asked = hops[-1]
    assert asked.url.startswith(https_tessera.url("/login?service=http%3a%2f%2f")), describe(hops)
    assert asked.url.endswith("&gateway=true"), describe(hops)
    assert asked.status == 302 and asked.location == url, describe(hops)
    browser.close()
