"""The REST ticket API (/cas/v1/tickets) driven by the real `curl` binary, as
shell scripts use it: create a TGT, get a service ticket, validate it, delete
the TGT.

curl is a system package, not a pip one: if it is missing, this module
installs it with apt-get (it does not skip).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from harness import ALICE, HTTP_TIMEOUT

CURL_TIMEOUT = HTTP_TIMEOUT + 5  # seconds for the whole curl process
APT_TIMEOUT = 600  # seconds for apt-get update / install


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    command = ["apt-get", *args]
    if os.geteuid() != 0 and shutil.which("sudo"):
        command = ["sudo", "-n", *command]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(command, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env)


@pytest.fixture(scope="module")
def curl_binary() -> str:
    found = shutil.which("curl")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.fail("curl is not installed and apt-get is not available to install it", pytrace=False)
    result = _apt_get("install", "-y", "--no-install-recommends", "curl")
    if result.returncode != 0:
        # A fresh image may have no package lists yet.
        _apt_get("update")
        result = _apt_get("install", "-y", "--no-install-recommends", "curl")
    found = shutil.which("curl")
    if result.returncode != 0 or not found:
        pytest.fail(
            f"curl is missing and `apt-get install -y curl` failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return found


@dataclass
class Reply:
    status: int
    headers: dict[str, list[str]]
    body: str

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


_STATUS_LINE = re.compile(r"^HTTP/[\d.]+ (\d{3})")


@pytest.fixture
def curl(curl_binary):
    """Runs `curl -sS -i ARGS...` and parses its status, headers and body."""

    def run(*args: str) -> Reply:
        # --noproxy: loopback traffic must never go to a proxy from the environment.
        command = [curl_binary, "-sS", "-i", "--noproxy", "*", "--max-time", str(HTTP_TIMEOUT), *args]
        done = subprocess.run(command, capture_output=True, timeout=CURL_TIMEOUT)
        assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stderr!r}"
        raw = done.stdout.decode("utf-8")
        head, _, body = raw.partition("\r\n\r\n")
        lines = head.split("\r\n")
        match = _STATUS_LINE.match(lines[0])
        assert match, f"not an HTTP response: {raw!r}"
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return Reply(int(match.group(1)), headers, body)

    return run


def create_tgt(curl, stack, username: str, password: str, *extra: str) -> Reply:
    return curl("-d", f"username={username}", "-d", f"password={password}", *extra, stack.tessera.url("v1/tickets"))


def service_ticket(curl, tgt_url: str, service: str) -> Reply:
    return curl("--data-urlencode", f"service={service}", tgt_url)


def service_validate(curl, stack, ticket: str, service: str) -> Reply:
    query = urlencode({"ticket": ticket, "service": service})
    return curl(stack.tessera.url("serviceValidate") + "?" + query)


def test_curl_gets_a_tgt_and_a_service_ticket_that_validates_then_deletes_the_tgt(stack, curl):
    service = stack.direct_service("rest/curl?x=1&y=two words")

    created = create_tgt(curl, stack, ALICE.name, ALICE.password)

    assert created.status == 201, created.body
    tgt_url = created.header("location")
    assert tgt_url and tgt_url.startswith(stack.tessera.url("v1/tickets/TGT-")), created.headers
    assert created.header("set-cookie") is None, "REST creates no cookie"
    assert created.header("cache-control") == "no-store"
    assert created.header("content-type").startswith("text/html")
    assert f'<form action="{tgt_url}" method="POST">' in created.body, "clients scrape the form action"
    tgt = tgt_url.rsplit("/", 1)[1]

    issued = service_ticket(curl, tgt_url, service)
    assert issued.status == 200, issued.body
    assert issued.header("content-type").startswith("text/plain")
    ticket = issued.body
    assert re.fullmatch(r"ST-[A-Za-z0-9-]+", ticket) and len(ticket) <= 32, repr(ticket)

    validated = service_validate(curl, stack, ticket, service)
    assert validated.status == 200
    assert "<cas:authenticationSuccess>" in validated.body, validated.body
    assert "<cas:user>alice</cas:user>" in validated.body, validated.body

    assert curl(tgt_url).status == 200, "the TGT is live"
    unused = service_ticket(curl, tgt_url, service).body

    deleted = curl("-X", "DELETE", tgt_url)
    assert deleted.status == 200
    assert deleted.body == tgt

    assert curl(tgt_url).status == 404
    assert curl("-X", "DELETE", tgt_url).status == 404
    assert service_ticket(curl, tgt_url, service).status == 404
    after = service_validate(curl, stack, unused, service)
    assert "INVALID_TICKET" in after.body, "a ticket of the deleted session no longer validates"


def test_curl_asking_for_json_gets_the_bare_tgt(stack, curl):
    created = create_tgt(curl, stack, ALICE.name, ALICE.password, "-H", "Accept: application/json")

    assert created.status == 201
    assert created.body.startswith("TGT-")
    assert created.header("location") == stack.tessera.url(f"v1/tickets/{created.body}")
    assert curl("-X", "DELETE", created.header("location")).status == 200


def test_curl_refusals_have_their_status(stack, curl):
    # An unknown user, so no real user's failure count grows.
    assert create_tgt(curl, stack, "rest-nobody", "wrong").status == 401
    assert curl("-d", f"username={ALICE.name}", stack.tessera.url("v1/tickets")).status == 400
    as_json = curl(
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"username": "alice", "password": "x"}',
        stack.tessera.url("v1/tickets"),
    )
    assert as_json.status == 415

    tgt_url = create_tgt(curl, stack, ALICE.name, ALICE.password).header("location")
    assert curl("-X", "POST", tgt_url).status == 400, "no service"
    refused = service_ticket(curl, tgt_url, stack.unregistered_service("rest"))
    assert refused.status == 403
    assert refused.header("content-type").startswith("text/plain")
    assert curl("-X", "DELETE", tgt_url).status == 200
