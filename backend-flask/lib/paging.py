"""Keyset paging: ?limit= and an opaque cursor, the next page in a Link header.

The cursor encodes the (created_at, uuid) of the last item shown; the next page
is every row strictly past it in the list's order ((created_at, uuid) descending
for feeds, ascending for a thread's replies), which an index serves at the same
cost however deep the page is (docs/decisions/0006-keyset-paging.md).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from flask import Request
from werkzeug.datastructures import MultiDict

from lib.errors import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 200
# Where the first page starts: past every row, in either order.
NEWEST_FIRST_START = ("infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff")
OLDEST_FIRST_START = ("-infinity", "00000000-0000-0000-0000-000000000000")


@dataclass(frozen=True)
class Page:
    limit: int
    cursor_created_at: str
    cursor_uuid: str

    def params(self) -> dict:
        return {
            "limit": self.limit,
            "cursor_created_at": self.cursor_created_at,
            "cursor_uuid": self.cursor_uuid,
        }


def encode_cursor(created_at: str, row_uuid: str) -> str:
    """The cursor of a row, from its created_at and uuid as Postgres writes them."""
    raw = f"{created_at}|{row_uuid}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, row_uuid = raw.split("|")
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError
        return parsed.isoformat(), str(uuid.UUID(row_uuid))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError(400, "cursor_invalid") from None


def query_args(request: Request) -> MultiDict | dict:
    """request.args, or {} when the query string is empty (most feed requests): an empty one is
    not worth werkzeug's parse and its lookups that miss, each raising a KeyError inside
    (docs/decisions/0013-fewer-layers-per-read.md)."""
    return request.args if request.environ.get("QUERY_STRING") else {}


def parse_page(request: Request, oldest_first: bool = False) -> Page:
    """The page a request asks for; 400 for a bad limit or cursor."""
    args = query_args(request)
    raw_limit = args.get("limit")
    if raw_limit is None:
        limit = DEFAULT_LIMIT
    elif (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3
          and 1 <= int(raw_limit) <= MAX_LIMIT):
        limit = int(raw_limit)
    else:
        raise ApiError(400, "limit_invalid")
    cursor = args.get("cursor")
    if cursor is not None:
        return Page(limit, *decode_cursor(cursor))
    return Page(limit, *(OLDEST_FIRST_START if oldest_first else NEWEST_FIRST_START))


def next_link(request: Request, next_cursor: str | None) -> dict:
    """The Link header pointing at the next page, or no header on the last page."""
    if next_cursor is None:
        return {}
    # the request's own parameters but its cursor; a cursor is URL-safe base64 as it is
    args = query_args(request)
    kept = [(key, value) for key, value in args.items(multi=True) if key != "cursor"] if args else []
    query = f"{urlencode(kept)}&" if kept else ""
    return {"Link": f'<{request.path}?{query}cursor={next_cursor}>; rel="next"'}


@dataclass(frozen=True)
class PageResult:
    body: str  # the page's JSON array, as Postgres built it
    next_cursor: str | None


def page_result(row: tuple) -> PageResult:
    """A list query's row (body, next_created_at, next_uuid) as a PageResult."""
    body, next_created_at, next_uuid = row
    cursor = None if next_uuid is None else encode_cursor(next_created_at, next_uuid)
    return PageResult(body, cursor)
