"""A signed-in user replies to a live activity; the parent's replies_count follows."""

from __future__ import annotations

from lib.auth import Caller
from lib.db import db
from lib.errors import ApiError
from lib.queries import query_row
from lib.validation import message


def run(caller: Caller, parent_uuid: str, body: dict) -> str:
    errors: list[str] = []
    text = message(body, errors)
    if errors:
        raise ApiError(422, *errors)
    with db.connection() as conn:
        known_user, reply = query_row(conn, "activities/post", {
            "cognito_user_id": caller.cognito_user_id, "message": text, "ttl": None,
            "parent_uuid": parent_uuid})
    if known_user != "t":
        raise ApiError(401, "user_unknown")
    if reply is None:
        raise ApiError(404, "activity_not_found")
    return reply
