"""Named queries: db/sql/<resource>/<verb_noun>.sql, run with bound parameters, their first row
handed back as the text PostgreSQL wrote.

A query is prepared on its first use on a connection (never behind a transaction pooler) and its
generic plan kept (DB_PLAN_CACHE_MODE, docs/decisions/0003-generic-plans.md); one whose best plan
depends on its parameters (search) says `-- plan: every call` and is sent with its values bound
client-side, so it is planned for them. The list queries' result is one JSON text that the response
passes on untouched, so the runner speaks to libpq in text format both ways
(docs/decisions/0004-libpq-text-path.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg
from psycopg import pq

SQL_DIR = Path(__file__).resolve().parent.parent / "db" / "sql"
PLAN_EVERY_CALL = "\n-- plan: every call\n"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# `{{ part | condition }}`: db/sql/<part>.sql with the condition at its `{{ where }}`
PART = re.compile(r"\{\{\s*([\w/]+)\s*\|\s*(.+?)\s*\}\}", re.DOTALL)


class Connection(psycopg.Connection):
    """psycopg's Connection and the names of the queries prepared on it (None: none may be,
    behind a transaction pooler). The pools set `prepared` on each new connection."""

    prepared: set[str] | None = None


@dataclass(frozen=True)
class Query:
    """A db/sql file as the wire sees it: $n placeholders and the parameter names they stand for."""

    name: str
    text: str  # as written, with %(name)s placeholders (psycopg's)
    wire_text: bytes  # with $1, $2, ... placeholders
    param_names: tuple[str, ...]  # the name behind $1, $2, ...
    plan_every_call: bool


def sql_text(name: str) -> str:
    """The text of db/sql/<name>.sql, each `{{ part | condition }}` in it replaced by that part
    (a file of db/sql whose name starts with `_`, written once for the queries that share it), its
    comments left out, its lines indented as the reference is, the condition at its `{{ where }}`."""
    return PART.sub(_part, _read(name))


def _part(match: re.Match) -> str:
    text = match.string
    indent = text[text.rfind("\n", 0, match.start()) + 1:match.start()]
    condition = re.sub(r"\s*\n\s*", " ", match.group(2))
    lines = _read(match.group(1)).splitlines()
    part = f"\n{indent}".join(line for line in lines if not line.startswith("--"))
    if "{{ where }}" not in part:
        raise ValueError(f"db/sql/{match.group(1)}.sql has no {{{{ where }}}} for a condition")
    return part.replace("{{ where }}", f"({condition})")


def _read(name: str) -> str:
    path = (SQL_DIR / f"{name}.sql").resolve()
    if SQL_DIR not in path.parents:
        raise ValueError(f"query name outside {SQL_DIR}: {name}")
    return path.read_text()


@cache
def load_query(name: str) -> Query:
    """The named query, read and converted once per process."""
    text = sql_text(name)
    names: list[str] = []

    def positional(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    wire = PLACEHOLDER.sub(positional, text).replace("%%", "%")
    return Query(name, text, wire.encode(), tuple(names), PLAN_EVERY_CALL in text)


def query_row(conn: Connection, name: str, params: dict | None = None) -> tuple[str | None, ...] | None:
    """Run the named query and return its first row (None when it has none), each value as
    Postgres writes it: text, a boolean 't' or 'f', NULL as None. A query planned every call is
    sent with its values bound client-side (psycopg quotes them), so Postgres plans it for them."""
    query = load_query(name)
    params = params or {}
    if query.plan_every_call:
        with psycopg.ClientCursor(conn) as cursor:
            text = cursor.mogrify(query.text, params)
        result = _check(conn, conn.pgconn.exec_(text.encode()))
    else:
        result = _execute_prepared(conn, query, params)
    if result.ntuples == 0:
        return None
    return tuple(None if (value := result.get_value(0, column)) is None else value.decode()
                 for column in range(result.nfields))


def query_json(conn: Connection, name: str, params: dict | None = None) -> str | None:
    """Run the named query, whose first column is JSON text built by Postgres."""
    row = query_row(conn, name, params)
    return None if row is None else row[0]


def _execute_prepared(conn: Connection, query: Query, params: dict) -> pq.abc.PGresult:
    """The query through libpq (psycopg's pq layer), parameters and result in text format,
    prepared once per connection (docs/decisions/0004-libpq-text-path.md). The obvious
    alternative, psycopg's own prepared execution:
    `conn.execute(query.text, params, prepare=True)`, with the JSON cast to text in the SQL."""
    values = [_wire_value(params[key]) for key in query.param_names]
    pgconn = conn.pgconn
    if conn.prepared is None:  # behind a transaction pooler: an unnamed statement each time
        return _check(conn, pgconn.exec_params(query.wire_text, values))
    statement = query.name.encode()
    if query.name not in conn.prepared:
        _check(conn, pgconn.prepare(statement, query.wire_text))
        conn.prepared.add(query.name)
    return _check(conn, pgconn.exec_prepared(statement, values))


def _wire_value(value) -> bytes | None:
    """A parameter in Postgres' text format (the query's casts give it its type)."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: a bool is an int
        return b"true" if value else b"false"
    if isinstance(value, str | int | float):
        data = str(value).encode()
        if b"\x00" in data:  # libpq would cut the value short there
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return data
    raise TypeError(f"no text format for a query parameter of type {type(value).__name__}")


def _check(conn: Connection, result: pq.abc.PGresult) -> pq.abc.PGresult:
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return result
    if conn.pgconn.status != pq.ConnStatus.OK:  # the server went away: no SQLSTATE to go by
        raise psycopg.OperationalError("the connection to the database was lost")
    raise psycopg.errors.error_from_result(result)
