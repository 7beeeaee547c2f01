"""A signed-in user replies to a live activity; the parent's replies_count follows."""

from __future__ import annotations

from lib.auth import Caller
from lib.db import db, query_json
from lib.errors import ApiError
from lib.validation import message


def run(caller: Caller, parent_uuid: str, body: dict) -> str:
    errors: list[str] = []
    text = message(body, errors)
    if errors:
        raise ApiError(422, *errors)
    with db.connection() as conn:
        reply = query_json(conn, "activities/reply",
                           {"parent_uuid": parent_uuid, "user_uuid": caller.uuid, "message": text})
    if reply is None:
        raise ApiError(404, "activity_not_found")
    return reply
