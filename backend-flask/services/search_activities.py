"""Live activities whose message contains a term, newest first."""

from __future__ import annotations

from lib.db import db
from lib.errors import ApiError
from lib.paging import Page, PageResult, page_result
from lib.queries import query_row
from lib.validation import is_storable_text

MIN_TERM_CHARS = 3  # the trigram index needs three characters to narrow the search
MAX_TERM_CHARS = 100


def like_pattern(term: str) -> str:
    """An ILIKE pattern matching `term` anywhere, its %, _ and \\ taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def run(term: str | None, page: Page) -> PageResult:
    term = (term or "").strip()
    if not term:
        raise ApiError(422, "search_term_blank")
    if len(term) < MIN_TERM_CHARS:
        raise ApiError(422, "search_term_too_short")
    if len(term) > MAX_TERM_CHARS:
        raise ApiError(422, "search_term_too_long")
    if not is_storable_text(term):
        raise ApiError(422, "search_term_invalid_characters")
    with db.read_connection() as conn:
        row = query_row(conn, "activities/search", {"pattern": like_pattern(term), **page.params()})
    return page_result(row)
