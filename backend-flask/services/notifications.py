"""The replies others made to the caller's activities, newest first."""

from __future__ import annotations

from lib.auth import Caller
from lib.db import db
from lib.errors import ApiError
from lib.paging import Page, PageResult, page_result
from lib.queries import query_row


def run(caller: Caller, page: Page) -> PageResult:
    params = {"cognito_user_id": caller.cognito_user_id, **page.params()}
    with db.read_connection() as conn:
        row = query_row(conn, "activities/notifications", params)
    if row is None:  # no such user, or one who signed up a moment ago, not on the replica yet
        with db.connection() as conn:
            row = query_row(conn, "activities/notifications", params)
    if row is None:
        raise ApiError(401, "user_unknown")
    return page_result(row)
