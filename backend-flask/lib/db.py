"""The connection pools and what the API does when the database is away.

One psycopg 3 ConnectionPool per process on the primary, made by init_app() inside each server
worker process, and one on a read replica with READ_CONNECTION_URL (db.read_connection(); when the
replica does not answer, reads go to the primary). Connections are in autocommit: every service
runs one statement, its own transaction (one that needs several wraps them in
`with conn.transaction():`). A connection is checked on checkout only when its socket has
something to read (the server ended the session), not with a round trip per request.

When the database is away the API answers 503 with Retry-After, fast: a short wait for a
connection, and none at all for a second after a failed attempt to connect.

Behind a transaction pooler (PgBouncer in transaction mode, RDS Proxy: DB_POOLER=transaction) a
server connection is ours for one transaction only, so nothing may live in the session: no
prepared statements, no startup options (statement_timeout and TimeZone come from the role or
the pooler). Running the queries: lib/queries.py.
"""

from __future__ import annotations

import atexit
import logging
import select
import time
from contextlib import contextmanager
from functools import partial

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from lib.errors import ApiError
from lib.queries import Connection
from lib.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"
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


def safe_conninfo(url: str) -> str:
    """The connection string with its password removed, for messages."""
    params = conninfo.conninfo_to_dict(url)
    params.pop("password", None)
    return conninfo.make_conninfo(**params)


class Database:
    """The pools of one process; `db` below is the instance the app uses."""

    def __init__(self) -> None:
        self.pool: ConnectionPool | None = None
        self.read_pool: ConnectionPool | None = None
        self._replica_retry_at = 0.0
        self._connect_failed_at: float | None = None  # the primary's last failed connect
        atexit.register(self.close)  # a server worker that exits leaves no session behind

    def init_app(self, app) -> None:
        settings: Settings = app.config["SETTINGS"]
        if not settings.connection_url:
            raise RuntimeError("CONNECTION_URL is not set")
        self.close()
        self.pool = self._open_pool(settings, "CONNECTION_URL", "cruddur", settings.db_pool_size)
        if settings.read_connection_url:
            self.read_pool = self._open_pool(settings, "READ_CONNECTION_URL", "cruddur-read",
                                             settings.read_pool_size)

    def _open_pool(self, settings: Settings, url_setting: str, name: str, size: int) -> ConnectionPool:
        url = getattr(settings, url_setting.lower())
        try:
            conninfo.conninfo_to_dict(url)  # a malformed URL fails here, loudly
        except psycopg.ProgrammingError:  # not its message: libpq quotes the URL, password and all
            raise RuntimeError(f"{url_setting} is not a valid connection string (percent-encode"
                               " special characters such as % @ : / [ in the password)") from None
        # client_encoding: query_row() decodes what libpq hands it as UTF-8
        kwargs = {"connect_timeout": settings.db_connect_timeout, "client_encoding": "UTF8",
                  "application_name": f"{name}-api", "autocommit": True, "prepare_threshold": None}
        pooled = settings.db_pooler == "transaction"
        if not pooled:
            options = f"-c statement_timeout={settings.db_statement_timeout_ms} -c TimeZone=UTC"
            if settings.db_plan_cache_mode:
                options += f" -c plan_cache_mode={settings.db_plan_cache_mode}"
            kwargs["options"] = options

        def configure(conn: Connection) -> None:
            conn.prepared = None if pooled else set()

        pool = ConnectionPool(
            url,
            name=name,
            open=False,
            min_size=min(settings.db_pool_min_size, size),
            max_size=size,
            timeout=settings.db_pool_timeout,
            check=partial(self._check_connection, name),
            reconnect_timeout=settings.db_reconnect_timeout,
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


db = Database()
