"""Pieces shared by the demo apps: page rendering and a record of received tickets."""

from __future__ import annotations

import html
import json

from flask import Flask, request

TICKETS_SEEN = "interop.tickets_seen"


def record_tickets(app: Flask) -> list[str]:
    """Remember every ``ticket`` query parameter the app receives (for the tests)."""
    seen: list[str] = []
    app.extensions[TICKETS_SEEN] = seen

    @app.before_request
    def _remember_ticket() -> None:
        ticket = request.args.get("ticket")
        if ticket is not None:
            seen.append(ticket)

    return seen


def local_path(candidate: str | None, default: str) -> str:
    """Only ever redirect to a path on this app."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//"):
        return candidate
    return default


def page(title: str, body: str, status: int = 200):
    document = (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return document, status, {"Content-Type": "text/html; charset=utf-8"}


def whoami_page(client: str, user: str, attributes: dict | None, logout_path: str):
    """The protected page: who is signed in, with every attribute the client returned."""
    payload = json.dumps(
        {"client": client, "user": user, "attributes": attributes or {}},
        indent=2,
        sort_keys=True,
        ensure_ascii=False,
    )
    body = (
        f"<h1>Signed in as {html.escape(user)}</h1>\n"
        f"<pre id=\"whoami\">{html.escape(payload)}</pre>\n"
        f"<p><a href=\"{html.escape(logout_path)}\">Sign out</a></p>"
    )
    return page(f"{client}: {user}", body)
