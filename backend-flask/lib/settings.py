"""Every setting of the API and its server, read once from the environment and checked there.

Each field is the environment variable of the same name in capitals (`db_pool_size` is
DB_POOL_SIZE); unset or empty means the default. `Settings.from_env()` raises SettingsError naming
the first variable it cannot use, so a typo stops the server at start, not at the first request.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

PLAN_CACHE_MODES = ("", "auto", "force_generic_plan", "force_custom_plan")
POOLERS = ("", "transaction")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting the environment gives that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    # the database
    connection_url: str | None = None
    read_connection_url: str | None = None  # a read replica for the read-only routes
    # connections per worker process: one per request thread (WEB_THREADS); the budget:
    # docs/decisions/0007-connection-budget.md
    db_pool_size: int = 1
    db_pool_min_size: int = 1
    db_read_pool_size: int | None = None  # connections per worker to the replica (default: DB_POOL_SIZE)
    db_pool_timeout: float = 2.0  # seconds a request waits for a connection before a 503
    db_connect_timeout: int = 2  # seconds
    # Seconds one reconnection attempt keeps retrying (1 s apart) before it gives up and the next
    # request starts a fresh one: short, so a database that returns is found within about a
    # second instead of after psycopg_pool's exponential backoff has grown to minutes.
    db_reconnect_timeout: float = 2.0
    db_statement_timeout_ms: int = 5000
    # Postgres' plan_cache_mode; "" leaves the server's (docs/decisions/0003-generic-plans.md)
    db_plan_cache_mode: str = "force_generic_plan"
    # "transaction" behind PgBouncer in transaction mode or RDS Proxy: no prepared statements and
    # no startup options (set statement_timeout and TimeZone on the role or in the pooler)
    db_pooler: str = ""
    # who may call from a browser (CORS)
    frontend_url: str | None = None
    backend_url: str | None = None
    # Cognito, whose access tokens sign users in
    aws_default_region: str = "us-east-1"
    aws_cognito_user_pool_id: str | None = None
    aws_cognito_user_pool_client_id: str | None = None
    cognito_jwks_url: str | None = None  # default: the user pool's well-known JWKS URL
    # at most one refetch of the JWKS per worker this often (a token with an unknown kid); 0: no limit
    cognito_jwks_refetch_seconds: float = 30.0
    # the server (serve.py)
    bind: str = "0.0.0.0:4567"  # host:port
    web_concurrency: int = 2  # worker processes (docs/decisions/0010-two-workers.md)
    web_threads: int = 1  # request threads per worker (docs/decisions/0002-one-request-thread-per-worker.md)
    access_log: bool = False  # a line per request: method, path, status, time (no query string)

    @classmethod
    def from_env(cls, environ: Mapping[str, object] = os.environ) -> Settings:
        values = {}
        for field in fields(cls):
            name = field.name.upper()
            raw = environ.get(name)
            if raw is not None and str(raw) != "":
                values[field.name] = _parse(name, field.type, str(raw))
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        for name in ("db_pool_size", "db_pool_min_size", "db_read_pool_size", "web_concurrency",
                     "web_threads"):
            if (value := getattr(self, name)) is not None and value < 1:
                raise SettingsError(f"{name.upper()} must be at least 1, not {value}")
        for name in ("db_pool_timeout", "db_connect_timeout", "db_reconnect_timeout",
                     "db_statement_timeout_ms"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()} must be more than 0, not {getattr(self, name)}")
        if self.cognito_jwks_refetch_seconds < 0:
            raise SettingsError("COGNITO_JWKS_REFETCH_SECONDS must be 0 or more")
        if self.db_pooler not in POOLERS:
            raise SettingsError(f"DB_POOLER must be empty (direct) or 'transaction', not {self.db_pooler!r}")
        if self.db_plan_cache_mode not in PLAN_CACHE_MODES:
            raise SettingsError(f"DB_PLAN_CACHE_MODE must be one of {', '.join(PLAN_CACHE_MODES[1:])}"
                                f" or empty, not {self.db_plan_cache_mode!r}")
        host, sep, port = self.bind.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"BIND must be host:port, not {self.bind!r}")

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def read_pool_size(self) -> int:
        return self.db_read_pool_size or self.db_pool_size

    def connection_budget(self) -> str:
        """What this server may ask of the database: workers x pool size, per pool."""
        workers, pool = self.web_concurrency, self.db_pool_size
        budget = f"{workers} workers x {pool} = {workers * pool} connections to the primary"
        if self.read_connection_url:
            budget += f", {workers} x {self.read_pool_size} = {workers * self.read_pool_size} to the replica"
        if self.db_pooler:
            budget += f" (client connections to a {self.db_pooler} pooler)"
        return budget


def _parse(name: str, kind: str, raw: str) -> object:
    """The value of `raw` as the field's type (`kind`, as annotated); SettingsError naming it."""
    kind = kind.removesuffix(" | None")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float" and math.isfinite(value := float(raw)):
            return value
        if kind == "float":
            raise ValueError(raw)
    except ValueError:
        whole = "whole " if kind == "int" else ""
        raise SettingsError(f"{name} must be a {whole}number, not {raw!r}") from None
    if kind == "bool":
        if raw.lower() in TRUE + FALSE:
            return raw.lower() in TRUE
        raise SettingsError(f"{name} must be 1 or 0 (true or false), not {raw!r}")
    return raw
