"""A signed-in user posts a crud that expires after its ttl."""

from __future__ import annotations

from lib.auth import Caller
from lib.db import db
from lib.errors import ApiError
from lib.queries import query_row
from lib.validation import message

TTLS = {
    "30-days": "30 days",
    "7-days": "7 days",
    "3-days": "3 days",
    "1-day": "1 day",
    "12-hours": "12 hours",
    "3-hours": "3 hours",
    "1-hour": "1 hour",
}


def run(caller: Caller, body: dict) -> str:
    errors: list[str] = []
    text = message(body, errors)
    ttl = body.get("ttl")
    if ttl is None or (isinstance(ttl, str) and not ttl.strip()):
        errors.append("ttl_blank")
    elif not isinstance(ttl, str) or ttl not in TTLS:
        errors.append("ttl_invalid")
    if errors:
        raise ApiError(422, *errors)
    with db.connection() as conn:
        known_user, activity = query_row(conn, "activities/post", {
            "cognito_user_id": caller.cognito_user_id, "message": text, "ttl": TTLS[ttl],
            "parent_uuid": None})
    if known_user != "t":
        raise ApiError(401, "user_unknown")
    return activity
