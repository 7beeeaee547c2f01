"""Responses whose body is JSON text that Postgres already built."""

from __future__ import annotations

from flask import Response


def json_text(body: str, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body, status=status, headers=headers, mimetype="application/json")
