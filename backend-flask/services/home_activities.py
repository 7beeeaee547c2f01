"""The home feed: one page of live top-level activities, replies nested."""

from __future__ import annotations

from lib.db import db
from lib.paging import Page, PageResult, page_result
from lib.queries import query_row


def run(page: Page) -> PageResult:
    with db.read_connection() as conn:
        row = query_row(conn, "activities/home", page.params())
    return page_result(row)
