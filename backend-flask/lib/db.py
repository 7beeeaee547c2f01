"""The connection pools and the query helpers.

One psycopg 3 ConnectionPool per process on the primary, made by init_app()
inside each server worker process, connections checked on
checkout, a short wait timeout so an unreachable database is a fast 503 rather
than a hang. With READ_CONNECTION_URL, a second pool on a read replica serves
the read-only routes (db.read_connection()); when the replica does not answer,
they read from the primary.

Behind a transaction pooler (PgBouncer in transaction mode, RDS Proxy:
DB_POOLER=transaction) a server connection is ours for one transaction only,
so nothing may live in the session: no prepared statements, and no startup
options (statement_timeout and TimeZone come from the role or the pooler).

Queries live one per file in db/sql/<resource>/<verb_noun>.sql and are run by
name with bound parameters; Postgres builds the JSON, the helpers hand back its
text untouched.

What a request costs is mostly round trips, planning and Python, so:
- connections are in autocommit: every service runs one statement, which is its
  own transaction; that saves a BEGIN and a COMMIT round trip per request. A
  service that needs several statements in one transaction wraps them in
  `with conn.transaction():`;
- the check on checkout costs a round trip only when the idle connection's
  socket has something to read (the server ended the session: its last message
  or EOF), not on every request;
- a query is prepared on its first use on a connection (never behind a
  transaction pooler, DB_POOLER=transaction) and its generic plan is kept
  (DB_PLAN_CACHE_MODE): with a LIMIT that is a parameter, Postgres would
  otherwise judge the generic plan too dear and plan every call again. A query
  whose best plan depends on its parameters (search) says `-- plan: every call`
  and is sent with its values bound client-side, so it is planned for them
  (docs/decisions/0003-generic-plans.md);
- query_row() speaks to libpq directly, in text format both ways: the result is
  one JSON text, so psycopg's adaptation of each value would only cost time
  (docs/decisions/0004-libpq-text-path.md).
"""

from __future__ import annotations

import atexit
import logging
import re
import select
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import psycopg
from psycopg import conninfo, pq
from psycopg_pool import ConnectionPool, PoolTimeout

from lib.errors import ApiError

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "db" / "sql"
RETRY_AFTER_SECONDS = "1"
PLAN_EVERY_CALL = "\n-- plan: every call\n"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# After a replica failed to give a connection, reads go to the primary this long before the
# replica is tried again: a replica that is down costs one short wait, not one per request.
REPLICA_RETRY_SECONDS = 5.0
REPLICA_CHECKOUT_TIMEOUT = 0.5
# For this long after an attempt to connect to the primary failed, a request that finds no idle
# connection answers 503 at once instead of waiting DB_POOL_TIMEOUT: during an outage requests
# do not queue behind each other for the server's threads. Past it, the next request waits in
# the pool again, which makes the pool try to connect: that is how the API sees the database
# come back.
FAST_FAIL_SECONDS = 1.0
CHECKOUT_SLICE = 0.25  # a request waiting for a connection looks this often whether that changed


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


class Connection(psycopg.Connection):
    """psycopg's Connection and the names of the queries prepared on it (None: none may be,
    behind a transaction pooler). The pools set `prepared` on each new connection."""

    prepared: set[str] | None = None


class Database:
    """The pools of one process; `db` below is the instance the app uses."""

    def __init__(self) -> None:
        self.pool: ConnectionPool | None = None
        self.read_pool: ConnectionPool | None = None
        self._replica_retry_at = 0.0
        self._connect_failed_at: float | None = None  # the primary's last failed connect
        atexit.register(self.close)  # a server worker that exits leaves no session behind

    def init_app(self, app) -> None:
        if not app.config["CONNECTION_URL"]:
            raise RuntimeError("CONNECTION_URL is not set")
        if app.config["DB_POOLER"] not in ("", "transaction"):
            raise RuntimeError("DB_POOLER must be empty (direct) or 'transaction'")
        self.close()
        self.pool = self._open_pool(app, "CONNECTION_URL", "cruddur", int(app.config["DB_POOL_SIZE"]))
        if app.config["READ_CONNECTION_URL"]:
            size = int(app.config["DB_READ_POOL_SIZE"] or app.config["DB_POOL_SIZE"])
            self.read_pool = self._open_pool(app, "READ_CONNECTION_URL", "cruddur-read", size)

    def _open_pool(self, app, url_setting: str, name: str, size: int) -> ConnectionPool:
        url = app.config[url_setting]
        try:
            conninfo.conninfo_to_dict(url)  # a malformed URL fails here, loudly
        except psycopg.ProgrammingError:  # not its message: libpq quotes the URL, password and all
            raise RuntimeError(f"{url_setting} is not a valid connection string (percent-encode"
                               " special characters such as % @ : / [ in the password)") from None
        # client_encoding: query_row() decodes what libpq hands it as UTF-8
        kwargs = {"connect_timeout": int(app.config["DB_CONNECT_TIMEOUT"]), "client_encoding": "UTF8",
                  "application_name": f"{name}-api", "autocommit": True, "prepare_threshold": None}
        pooled = app.config["DB_POOLER"] == "transaction"
        if not pooled:
            options = (f"-c statement_timeout={int(app.config['DB_STATEMENT_TIMEOUT_MS'])}"
                       " -c TimeZone=UTC")
            if app.config["DB_PLAN_CACHE_MODE"]:
                options += f" -c plan_cache_mode={app.config['DB_PLAN_CACHE_MODE']}"
            kwargs["options"] = options

        def configure(conn: Connection) -> None:
            conn.prepared = None if pooled else set()

        pool = ConnectionPool(
            url,
            name=name,
            open=False,
            min_size=min(int(app.config["DB_POOL_MIN_SIZE"]), size),
            max_size=size,
            timeout=float(app.config["DB_POOL_TIMEOUT"]),
            check=partial(self._check_connection, name),
            reconnect_timeout=float(app.config["DB_RECONNECT_TIMEOUT"]),
            kwargs=kwargs,
            configure=configure,
            connection_class=self._tracked_connection_class() if name == "cruddur" else Connection,
        )
        pool.open(wait=False)
        # Say loudly at start when the database does not answer, but keep serving (503s)
        # so the API recovers by itself; pool.wait() would close the pool instead.
        try:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.OperationalError):
            log.error("database not reachable at start (%s); serving 503 until it is",
                      safe_conninfo(url))
        return pool

    def _tracked_connection_class(self) -> type[Connection]:
        """Connection, noting whether the pool's last attempt to connect failed."""
        database = self

        class TrackedConnection(Connection):
            @classmethod
            def connect(cls, *args, **kwargs):
                try:
                    conn = super().connect(*args, **kwargs)
                except psycopg.OperationalError:
                    database._connect_failed_at = time.monotonic()
                    raise
                database._connect_failed_at = None
                return conn

        return TrackedConnection

    def _primary_known_down(self) -> bool:
        failed_at = self._connect_failed_at
        return (failed_at is not None and time.monotonic() - failed_at < FAST_FAIL_SECONDS
                and self.pool.get_stats()["pool_available"] == 0)

    def _check_connection(self, name: str, conn: Connection) -> None:
        """The pools' check on checkout. One broken connection means the database ended its
        sessions (a restart, a failover, pg_terminate_backend): check every idle one now, so the
        broken are replaced at once, instead of psycopg_pool trying them one at a time, 1 s,
        2 s, ... apart, until the request times out.

        An idle connection has nothing to read unless the server ended the session (its last
        message, or EOF): only then is it worth the round trip of a full check."""
        try:
            if not select.select([conn.fileno()], [], [], 0)[0]:
                return
        except (OSError, ValueError, psycopg.Error):
            pass  # closed: the full check says so
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            pool = self.read_pool if name == "cruddur-read" else self.pool
            if pool is not None:
                pool.check()
            raise

    def close(self) -> None:
        for pool in (self.pool, self.read_pool):
            if pool is not None:
                pool.close()
        self.pool = self.read_pool = None

    @contextmanager
    def connection(self):
        """A connection to the primary (autocommit: each statement commits on its own, see the
        top of this module); database failures become 503."""
        if self.pool is None:
            raise RuntimeError("Database.init_app() was not called")
        with DATABASE_ERRORS:
            conn = self._checkout()
            try:
                yield conn
            finally:
                self.pool.putconn(conn)

    def _checkout(self) -> Connection:
        """A primary connection within DB_POOL_TIMEOUT; PoolTimeout at once when the database is
        known to be down, even for a request that was already waiting."""
        deadline = time.monotonic() + self.pool.timeout
        while True:
            if self._primary_known_down():
                raise PoolTimeout("the database does not accept connections")
            try:
                return self.pool.getconn(timeout=min(CHECKOUT_SLICE, deadline - time.monotonic()))
            except PoolTimeout:
                if time.monotonic() >= deadline:
                    raise

    def read_connection(self):
        """A connection for a read-only route: the replica's when there is one that answers,
        else the primary's. Never for a read that must see the caller's own write."""
        if self.read_pool is None or time.monotonic() < self._replica_retry_at:
            return self.connection()  # as it is, not inside another generator
        return self._replica_connection()

    @contextmanager
    def _replica_connection(self):
        try:
            conn = self.read_pool.getconn(timeout=REPLICA_CHECKOUT_TIMEOUT)
        except PoolTimeout:
            self._replica_retry_at = time.monotonic() + REPLICA_RETRY_SECONDS
            log.warning("the read replica does not answer: reading from the primary for %.0f s",
                        REPLICA_RETRY_SECONDS)
            with self.connection() as conn:
                yield conn
            return
        try:
            with DATABASE_ERRORS:
                yield conn
        finally:
            self.read_pool.putconn(conn)


class DatabaseErrors:
    """`with DATABASE_ERRORS:` turns database failures into 503 ApiErrors with Retry-After. A
    class, not a @contextmanager generator: it is entered on every request
    (docs/decisions/0013-fewer-layers-per-read.md)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            return
        if issubclass(exc_type, PoolTimeout):
            code = "database_unavailable"
        elif issubclass(exc_type, psycopg.errors.QueryCanceled):
            code = "database_timeout"
        elif issubclass(exc_type, psycopg.OperationalError):
            log.warning("database error: %s", exc_type.__name__)
            code = "database_unavailable"
        else:
            return
        raise ApiError(503, code, headers={"Retry-After": RETRY_AFTER_SECONDS}) from None


DATABASE_ERRORS = DatabaseErrors()


# -- running a named query ---------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A db/sql file as the wire sees it: $n placeholders and the parameter names they stand for."""

    name: str
    statement: bytes  # the prepared statement's name: the query's name
    text: str  # with %(name)s placeholders, for psycopg (a query planned every call)
    wire_text: bytes  # with $1, $2, ... placeholders
    param_names: tuple[str, ...]  # the name behind $1, $2, ...
    plan_every_call: bool


@cache
def load_query(name: str) -> Query:
    """The named query, read and converted once per process."""
    text = load_sql(name)
    names: list[str] = []

    def positional(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    wire = PLACEHOLDER.sub(positional, text).replace("%%", "%")
    return Query(name, name.encode(), text, wire.encode(), tuple(names), PLAN_EVERY_CALL in text)


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


def query_row(conn: Connection, name: str, params: dict | None = None) -> tuple[str | None, ...] | None:
    """Run the named query and return its first row (None when it has none), each value as
    Postgres writes it: text, a boolean 't' or 'f', NULL as None.

    The query goes straight to libpq (psycopg's pq layer), parameters and result in text format,
    the statement prepared once per connection: a list query's result is one JSON text that the
    response passes on, so psycopg's adaptation of each value would only cost time
    (docs/decisions/0004-libpq-text-path.md). A query planned every call is sent with its values
    bound client-side (psycopg quotes them), so Postgres plans it for them."""
    query = load_query(name)
    params = params or {}
    pgconn = conn.pgconn
    if query.plan_every_call:
        with psycopg.ClientCursor(conn) as cursor:
            text = cursor.mogrify(query.text, params)
        result = _check(conn, pgconn.exec_(text.encode()))
    else:
        values = [_wire_value(params[key]) for key in query.param_names]
        if conn.prepared is None:  # behind a transaction pooler: an unnamed statement each time
            result = _check(conn, pgconn.exec_params(query.wire_text, values))
        else:
            if query.name not in conn.prepared:
                _check(conn, pgconn.prepare(query.statement, query.wire_text))
                conn.prepared.add(query.name)
            result = _check(conn, pgconn.exec_prepared(query.statement, values))
    if result.ntuples == 0:
        return None
    return tuple(None if (value := result.get_value(0, column)) is None else value.decode()
                 for column in range(result.nfields))


def query_json(conn: Connection, name: str, params: dict | None = None) -> str | None:
    """Run the named query, whose first column is JSON text built by Postgres."""
    row = query_row(conn, name, params)
    return None if row is None else row[0]


db = Database()
