"""SAML 1.1 validation (POST /samlValidate) with real clients: python-cas 1.7.2
``CASClientWithSAMLV1`` (``version='CAS_2_SAML_1_0'``, as django-cas-ng uses it)
and pycas-sso 0.1.0.post1 ``saml_validate``.

The interop tessera keeps the default ``[saml] attributes_require_https = true``.
User attributes are therefore checked on an https service URL registered for
this module; the browser never has to reach it, because the ticket is read from
tessera's 302 ``Location``. The plain-http loopback services must get the user
and the protocol attributes, but no user attributes.
"""

from __future__ import annotations

import pytest
from cas import CASClient
from pycas_sso.cas import CASClient as PycasClient
from pycas_sso.errors import CASServiceAuthenticationFailure

from harness import ALICE, ZOE, assert_alice_attributes, login_for_ticket

HTTPS_ROOT = "https://saml.interop.invalid/"
HTTPS_PATTERN = r"https://saml\.interop\.invalid/.*"
PROTOCOL_ATTRIBUTES = ("authenticationDate", "isFromNewLogin", "longTermAuthenticationRequestTokenUsed")
USER_ATTRIBUTES = ("mail", "displayName", "eduPersonAffiliation")


@pytest.fixture(scope="module")
def https_service(stack):
    """Factory for https service URLs, registered once for this module (all attributes)."""
    stack.tessera.add_service("saml-https", HTTPS_PATTERN)
    return lambda path: HTTPS_ROOT + path.lstrip("/")


def saml_client(stack, service: str):
    return CASClient(version="CAS_2_SAML_1_0", service_url=service, server_url=stack.tessera.base + "/")


def fresh_ticket(browser, client, user=ALICE) -> str:
    return login_for_ticket(browser, client.get_login_url(), client.service_url, user)


def test_python_cas_saml_client_reads_the_user_and_attributes(stack, browser, https_service):
    client = saml_client(stack, https_service("python-cas/login?next=%2Fadmin%2F"))
    assert type(client).__name__ == "CASClientWithSAMLV1"
    ticket = fresh_ticket(browser, client)

    user, attributes, pgtiou = client.verify_ticket(ticket)

    assert user == "alice"
    assert pgtiou is None
    assert_alice_attributes(attributes)  # eduPersonAffiliation comes back as a list
    assert attributes["isFromNewLogin"] == "true", attributes
    assert attributes["longTermAuthenticationRequestTokenUsed"] == "false", attributes


def test_python_cas_saml_client_refuses_a_replayed_ticket(stack, browser, https_service):
    client = saml_client(stack, https_service("python-cas/replay"))
    ticket = fresh_ticket(browser, client)

    assert client.verify_ticket(ticket)[0] == "alice"
    user, attributes, _ = client.verify_ticket(ticket)

    assert user is None
    assert attributes == {}


def test_python_cas_saml_client_refuses_a_ticket_for_another_service(stack, browser, https_service):
    issued_for = saml_client(stack, https_service("python-cas/app-a"))
    other = saml_client(stack, https_service("python-cas/app-b"))
    ticket = fresh_ticket(browser, issued_for)

    assert other.verify_ticket(ticket)[0] is None
    assert issued_for.verify_ticket(ticket)[0] is None  # the failed attempt used it up


def test_attribute_values_with_xml_special_characters_come_back_intact(stack, browser, https_service):
    client = saml_client(stack, https_service("python-cas/escaping"))
    ticket = fresh_ticket(browser, client, ZOE)

    user, attributes, _ = client.verify_ticket(ticket)

    assert user == "zoe"
    assert attributes["o"] == dict(ZOE.attrs)["o"]


def test_a_plain_http_service_gets_the_user_but_no_user_attributes(stack, browser):
    client = saml_client(stack, stack.direct_service("saml/plain-http"))
    ticket = fresh_ticket(browser, client)

    user, attributes, _ = client.verify_ticket(ticket)

    assert user == "alice"
    for name in PROTOCOL_ATTRIBUTES:
        assert name in attributes, attributes
    for name in USER_ATTRIBUTES:
        assert name not in attributes, attributes


def test_pycas_sso_saml_validate_succeeds_once_then_raises(stack, https_service):
    service = https_service("pycas/saml")
    with PycasClient.create(stack.tessera.base, service, service, http_lib="requests") as client:
        ticket = client.login(ALICE.name, ALICE.password).ticket
        assert ticket.startswith("ST-")

        validated = client.saml_validate(ticket)
        assert validated.username == "alice"
        assert_alice_attributes(validated.attrs)

        # pycas-sso takes the code after "samlp:" ("Requester") and raises. It looks for
        # StatusMessage *inside* StatusCode, where SAML 1.1 does not put it, so its message is empty.
        with pytest.raises(CASServiceAuthenticationFailure):
            client.saml_validate(ticket)
