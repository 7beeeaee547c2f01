"""One activity of a user and its replies, oldest first."""

from __future__ import annotations

from lib.db import db
from lib.errors import ApiError
from lib.paging import Page, PageResult, page_result
from lib.queries import query_row


def run(handle: str, activity_uuid: str, page: Page) -> PageResult:
    with db.read_connection() as conn:
        row = query_row(conn, "activities/show",
                        {"handle": handle, "uuid": activity_uuid, **page.params()})
    if row is None:
        raise ApiError(404, "activity_not_found")
    return page_result(row)
