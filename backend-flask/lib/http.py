"""Responses whose body is JSON text that Postgres already built."""

from __future__ import annotations

from flask import Response


def json_text(body: str | bytes, status: int = 200, headers: dict | None = None) -> Response:
    """The body as it is. Given as a one-item list and passed through, it reaches the server as
    that list, which granian sends in one piece instead of iterating over it."""
    data = body.encode() if isinstance(body, str) else body
    return Response([data], status=status, headers=headers, mimetype="application/json",
                    direct_passthrough=True)
