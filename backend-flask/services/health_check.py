"""Health: the API is up and its database answers."""

from __future__ import annotations

from lib.db import db
from lib.queries import query_json


def run() -> str:
    with db.connection() as conn:
        return query_json(conn, "health/check")
