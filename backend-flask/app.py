"""The Cruddur API: create_app() builds it; serve.py serves it (granian, one app per worker)."""

from __future__ import annotations

import gc
import logging
import os

from flask import Flask

from lib import auth, cors, errors
from lib.db import db
from routes import activities, health, openapi, profile, users

# Every setting, its default, and where it comes from: the environment variable of the same name.
DEFAULTS = {
    "CONNECTION_URL": None,
    "FRONTEND_URL": None,
    "BACKEND_URL": None,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_COGNITO_USER_POOL_ID": None,
    "AWS_COGNITO_USER_POOL_CLIENT_ID": None,
    "COGNITO_JWKS_URL": None,  # default: the user pool's well-known JWKS URL
    "COGNITO_JWKS_REFETCH_SECONDS": 30,  # at most one refetch per worker this often (unknown kid)
    # connections per worker process: one per request thread (WEB_THREADS); the budget:
    # docs/decisions/0007-connection-budget.md
    "DB_POOL_SIZE": 1,
    "DB_POOL_MIN_SIZE": 1,
    "DB_POOL_TIMEOUT": 2.0,  # seconds a request waits for a connection before a 503
    "DB_CONNECT_TIMEOUT": 2,  # seconds
    # Seconds one reconnection attempt keeps retrying (1 s apart) before it gives up and the
    # next request starts a fresh one: short, so a database that returns is found within ~1 s
    # instead of after psycopg_pool's exponential backoff has grown to minutes.
    "DB_RECONNECT_TIMEOUT": 2.0,
    "DB_STATEMENT_TIMEOUT_MS": 5000,
    # Postgres' plan_cache_mode; "" leaves the server's (docs/decisions/0003-generic-plans.md)
    "DB_PLAN_CACHE_MODE": "force_generic_plan",
    # "transaction" behind PgBouncer in transaction mode or RDS Proxy: no prepared statements and
    # no startup options (set statement_timeout and TimeZone on the role or in the pooler).
    "DB_POOLER": "",
    "READ_CONNECTION_URL": None,  # a read replica for the read-only routes
    "DB_READ_POOL_SIZE": None,  # connections per worker to the replica (default: DB_POOL_SIZE)
}
MAX_BODY_BYTES = 16 * 1024


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.url_map.merge_slashes = False  # "//" is a 404 JSON error, not an HTML redirect
    app.config.update(DEFAULTS)
    app.config.update({key: os.environ[key] for key in DEFAULTS if os.environ.get(key)})
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if test_config:
        app.config.update(test_config)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    errors.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    cors.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(activities.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(openapi.bp)
    freeze_long_lived_objects()
    return app


def freeze_long_lived_objects() -> None:
    """Move what the worker has built so far (modules, the app, the pool) out of the cyclic
    garbage collector's sight: it lives as long as the process, so a full collection walks only
    what requests left behind (docs/decisions/0005-gc-freeze-at-worker-start.md). What exists
    when it runs is never collected: caches that grow with requests are built after it."""
    gc.collect()
    gc.freeze()

