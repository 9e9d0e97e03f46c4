"""python-cas 1.7.2 clients used directly: CASClientV1 (/validate),
CASClientV2 (/serviceValidate) and CASClientV3 (/p3/serviceValidate).

Tickets come from a real browser login on tessera's form, for service URLs on
a plain local service page registered with tessera.
"""

from __future__ import annotations

import secrets

import pytest
from cas import CASClientV1, CASClientV2, CASClientV3

from harness import ALICE, TICKET_RE, ZOE, assert_alice_attributes, login_for_ticket

CLIENTS = {1: CASClientV1, 2: CASClientV2, 3: CASClientV3}
VERSIONS = pytest.mark.parametrize("version", [1, 2, 3], ids=lambda v: f"CASClientV{v}")


def make_client(stack, version: int, service: str):
    return CLIENTS[version](service_url=service, server_url=stack.tessera.base + "/")


def fresh_ticket(browser, client, user=ALICE, *, sso=False) -> str:
    return login_for_ticket(browser, client.get_login_url(), client.service_url, user, sso=sso)


@VERSIONS
def test_a_ticket_from_a_browser_login_verifies_to_the_user(stack, browser, version):
    # django-cas-ng style service URL: it already has a percent-encoded query.
    client = make_client(stack, version, stack.direct_service(f"v{version}/login?next=%2Fadmin%2F&a=1"))
    ticket = fresh_ticket(browser, client)

    user, attributes, pgtiou = client.verify_ticket(ticket)

    assert user == "alice"
    assert pgtiou is None
    if version == 1:
        assert attributes is None
    else:
        assert_alice_attributes(attributes)


@VERSIONS
def test_a_ticket_verifies_only_once(stack, browser, version):
    client = make_client(stack, version, stack.direct_service(f"v{version}/once"))
    ticket = fresh_ticket(browser, client)

    assert client.verify_ticket(ticket)[0] == "alice"
    assert client.verify_ticket(ticket)[0] is None


@VERSIONS
def test_a_forged_ticket_is_refused(stack, browser, version):
    client = make_client(stack, version, stack.direct_service(f"v{version}/forged"))
    fresh_ticket(browser, client)  # a real SSO session exists; the forged ticket is still unknown

    forged = "ST-" + secrets.token_hex(14)

    assert client.verify_ticket(forged)[0] is None


@VERSIONS
def test_a_ticket_is_refused_for_a_different_service(stack, browser, version):
    issued_for = make_client(stack, version, stack.direct_service(f"v{version}/app-a"))
    other = make_client(stack, version, stack.direct_service(f"v{version}/app-b"))
    ticket = fresh_ticket(browser, issued_for)

    assert other.verify_ticket(ticket)[0] is None


@VERSIONS
def test_a_ticket_presented_for_the_wrong_service_is_used_up(stack, browser, version):
    issued_for = make_client(stack, version, stack.direct_service(f"v{version}/burn-a"))
    other = make_client(stack, version, stack.direct_service(f"v{version}/burn-b"))
    ticket = fresh_ticket(browser, issued_for)

    assert other.verify_ticket(ticket)[0] is None
    assert issued_for.verify_ticket(ticket)[0] is None


@VERSIONS
def test_a_newer_ticket_does_not_revoke_an_older_unvalidated_one(stack, browser, version):
    client = make_client(stack, version, stack.direct_service(f"v{version}/two-tabs"))
    older = fresh_ticket(browser, client)  # password login
    newer = fresh_ticket(browser, client, sso=True)  # same service URL

    assert older != newer
    assert client.verify_ticket(newer)[0] == "alice"
    assert client.verify_ticket(older)[0] == "alice"


def test_service_tickets_are_short_and_url_safe(stack, browser):
    client = make_client(stack, 3, stack.direct_service("ticket-shape"))
    tickets = [fresh_ticket(browser, client) for _ in range(3)]

    for ticket in tickets:
        assert TICKET_RE.match(ticket), ticket
        assert len(ticket) <= 32, ticket
    assert len(set(tickets)) == len(tickets)


@pytest.mark.parametrize("version", [2, 3], ids=lambda v: f"CASClientV{v}")
def test_attribute_values_with_xml_special_characters_come_back_intact(stack, browser, version):
    client = make_client(stack, version, stack.direct_service(f"v{version}/escaping"))
    ticket = fresh_ticket(browser, client, ZOE)

    user, attributes, _ = client.verify_ticket(ticket)

    assert user == "zoe"
    assert attributes["o"] == dict(ZOE.attrs)["o"]
    assert attributes["mail"] == "zoe@example.org"


def test_a_service_release_policy_limits_and_renames_attributes(stack, browser):
    client = make_client(stack, 3, stack.limited_service("callback"))
    ticket = fresh_ticket(browser, client)

    user, attributes, _ = client.verify_ticket(ticket)

    assert user == "alice"
    assert attributes.get("mail") == "alice@example.org"
    assert attributes.get("cn") == "Alice Example"
    assert "displayName" not in attributes
    assert "eduPersonAffiliation" not in attributes


@pytest.mark.parametrize(
    "shape",
    [
        "plain",
        "query?z=1&a=%2f&b=x+y&c=%C3%A9",  # unsorted, lowercase hex (mod_auth_cas), '+' (phpCAS)
        "flask-cas/?origin=/profile?",  # Flask-CAS leaves '/' and '?' unencoded
        "fragment?x=1#section",
    ],
    ids=["no-query", "odd-query", "flask-cas-origin", "fragment"],
)
def test_the_ticket_is_appended_to_the_service_url_exactly_as_sent(stack, browser, shape):
    service = stack.direct_service("verbatim/" + shape)
    client = make_client(stack, 3, service)

    ticket = fresh_ticket(browser, client)  # asserts the redirect is service + ticket, verbatim

    assert client.verify_ticket(ticket)[0] == "alice"
