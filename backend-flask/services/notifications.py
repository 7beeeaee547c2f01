"""The replies others made to the caller's activities, newest first."""

from __future__ import annotations

from lib.auth import Caller
from lib.db import db, query_row
from lib.paging import Page, PageResult, page_result


def run(caller: Caller, page: Page) -> PageResult:
    with db.read_connection() as conn:
        row = query_row(conn, "activities/notifications",
                        {"user_uuid": caller.uuid, "handle": caller.handle, **page.params()})
    return page_result(row)
