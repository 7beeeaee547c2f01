"""A signed-in user changes their display name and bio; the answer is their updated profile."""

from __future__ import annotations

from lib.auth import Caller
from lib.db import db
from lib.errors import ApiError
from lib.queries import query_json
from lib.validation import text_field

# the database holds the same limits (users_display_name_length, users_bio_length)
MAX_DISPLAY_NAME_CHARS = 50
MAX_BIO_CHARS = 160


def run(caller: Caller, body: dict) -> str:
    errors: list[str] = []
    display_name = text_field(body, "display_name", errors, MAX_DISPLAY_NAME_CHARS)
    bio = text_field(body, "bio", errors, MAX_BIO_CHARS, required=False)
    if errors:
        raise ApiError(422, *errors)
    with db.connection() as conn:
        profile = query_json(conn, "users/update_profile", {
            "cognito_user_id": caller.cognito_user_id, "display_name": display_name,
            "bio": bio or None})  # an empty bio clears it
    if profile is None:
        raise ApiError(401, "user_unknown")
    return profile
