"""pycas-sso 0.1.0.post1 (requests back-end) used directly.

Its `login()` posts credentials straight to /login?service=..., with no prior
GET, no cookie and no login ticket, and counts only 200/201/302 as success.
"""

from __future__ import annotations

import pytest
from pycas_sso.cas import CASClient
from pycas_sso.errors import CASServiceAuthenticationFailure

from harness import ALICE, FUMBLERS, assert_alice_attributes, expected_ticket_redirect


@pytest.fixture
def pycas(stack):
    def make(path: str):
        service = stack.direct_service(path)
        return CASClient.create(stack.tessera.base, service, service, http_lib="requests")

    return make


def test_direct_login_without_a_login_ticket_gets_a_service_ticket(pycas):
    with pycas("pycas/direct") as client:
        result = client.login(ALICE.name, ALICE.password)

        assert result.success, result
        assert result.http_status == 302
        assert result.ticket.startswith("ST-")
        assert result.redirect_url == expected_ticket_redirect(client.service_url, result.ticket)

        validated = client.service_validate(result.ticket, version=3)
        assert validated.username == "alice"
        assert_alice_attributes(validated.attrs)


def test_direct_login_with_a_wrong_password_is_not_a_success(pycas):
    user = FUMBLERS["pycas-direct"]
    with pycas("pycas/wrong-password") as client:
        result = client.login(user.name, user.password + "-wrong")

        assert not result.success
        assert result.http_status == 401
        assert result.ticket == ""


def test_cas1_validate_returns_the_user(pycas):
    with pycas("pycas/cas1") as client:
        ticket = client.login(ALICE.name, ALICE.password).ticket

        assert client.validate(ticket).username == "alice"


@pytest.mark.parametrize("version", [2, 3], ids=["serviceValidate", "p3-serviceValidate"])
def test_a_replayed_ticket_raises_an_authentication_failure(pycas, version):
    with pycas(f"pycas/replay-v{version}") as client:
        ticket = client.login(ALICE.name, ALICE.password).ticket
        assert client.service_validate(ticket, version=version).username == "alice"

        with pytest.raises(CASServiceAuthenticationFailure):
            client.service_validate(ticket, version=version)
