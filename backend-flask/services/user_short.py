"""The short form of a user: uuid, handle, display name."""

from __future__ import annotations

from lib.db import db
from lib.errors import ApiError
from lib.queries import query_json


def run(handle: str) -> str:
    with db.read_connection() as conn:
        user = query_json(conn, "users/short", {"handle": handle})
    if user is None:
        raise ApiError(404, "user_not_found")
    return user
