"""The connection pool and the query helpers.

One psycopg 3 ConnectionPool per process, made by init_app() inside the server
worker (after gunicorn forks), connections checked on checkout, a short wait
timeout so an unreachable database is a fast 503 rather than a hang.

Queries live one per file in db/sql/<resource>/<verb_noun>.sql and are run by
name with bound parameters; Postgres builds the JSON, the helpers hand back its
text untouched.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from lib.errors import ApiError

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "db" / "sql"
RETRY_AFTER_SECONDS = "1"


@cache
def load_sql(name: str) -> str:
    """The text of db/sql/<name>.sql, read once per process."""
    path = (SQL_DIR / f"{name}.sql").resolve()
    if SQL_DIR not in path.parents:
        raise ValueError(f"query name outside {SQL_DIR}: {name}")
    return path.read_text()


def safe_conninfo(url: str) -> str:
    """The connection string with its password removed, for messages."""
    params = conninfo.conninfo_to_dict(url)
    params.pop("password", None)
    return conninfo.make_conninfo(**params)


class Database:
    """The pool of one process; `db` below is the instance the app uses."""

    def __init__(self) -> None:
        self.pool: ConnectionPool | None = None

    def init_app(self, app) -> None:
        url = app.config["CONNECTION_URL"]
        if not url:
            raise RuntimeError("CONNECTION_URL is not set")
        try:
            conninfo.conninfo_to_dict(url)  # a malformed URL fails here, loudly
        except psycopg.ProgrammingError as err:
            raise RuntimeError(f"CONNECTION_URL is not a valid connection string: {err}") from None
        timeout_ms = int(app.config["DB_STATEMENT_TIMEOUT_MS"])
        self.pool = ConnectionPool(
            url,
            name="cruddur",
            open=False,
            min_size=int(app.config["DB_POOL_MIN_SIZE"]),
            max_size=int(app.config["DB_POOL_SIZE"]),
            timeout=float(app.config["DB_POOL_TIMEOUT"]),
            check=ConnectionPool.check_connection,
            reconnect_timeout=float(app.config["DB_RECONNECT_TIMEOUT"]),
            kwargs={
                "connect_timeout": int(app.config["DB_CONNECT_TIMEOUT"]),
                "application_name": "cruddur-api",
                "options": f"-c statement_timeout={timeout_ms} -c TimeZone=UTC",
            },
        )
        self.pool.open(wait=False)
        # Say loudly at start when the database does not answer, but keep serving (503s)
        # so the API recovers by itself; pool.wait() would close the pool instead.
        try:
            with self.pool.connection() as conn:
                conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.OperationalError):
            log.error("database not reachable at start (%s); serving 503 until it is",
                      safe_conninfo(url))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    @contextmanager
    def connection(self):
        """One pooled connection and its transaction; database failures become 503."""
        if self.pool is None:
            raise RuntimeError("Database.init_app() was not called")
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise ApiError(503, "database_unavailable",
                           headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
        except psycopg.errors.QueryCanceled:
            raise ApiError(503, "database_timeout",
                           headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
        except psycopg.OperationalError as err:
            log.warning("database error: %s", type(err).__name__)
            raise ApiError(503, "database_unavailable",
                           headers={"Retry-After": RETRY_AFTER_SECONDS}) from None


def query_row(conn: psycopg.Connection, name: str, params: dict | None = None) -> tuple | None:
    """Run the named query and return its first row (None when it has none)."""
    return conn.execute(load_sql(name), params or {}).fetchone()


def query_json(conn: psycopg.Connection, name: str, params: dict | None = None) -> str | None:
    """Run the named query, whose first column is JSON text built by Postgres."""
    row = query_row(conn, name, params)
    return None if row is None else row[0]


db = Database()
