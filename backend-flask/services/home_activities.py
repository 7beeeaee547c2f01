"""The home feed: one page of live top-level activities, replies nested."""

from __future__ import annotations

from lib.db import db, query_row
from lib.paging import Page, PageResult, page_result


def run(page: Page) -> PageResult:
    with db.read_connection() as conn:
        row = query_row(conn, "activities/home", page.params())
    return page_result(row)
