"""A user's profile and their live activities, newest first."""

from __future__ import annotations

from lib.db import db
from lib.errors import ApiError
from lib.paging import Page, PageResult, page_result
from lib.queries import query_row


def run(handle: str, page: Page) -> PageResult:
    with db.read_connection() as conn:
        row = query_row(conn, "activities/user", {"handle": handle, **page.params()})
    if row is None:
        raise ApiError(404, "user_not_found")
    return page_result(row)
