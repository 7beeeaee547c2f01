"""gunicorn settings for the Cruddur API (bin/dev and the Docker image).

Each worker calls create_app() after the fork, so each has its own pool:
the database connection budget is workers x DB_POOL_SIZE.
"""

import os

bind = os.environ.get("BIND", "0.0.0.0:4567")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "lib.gunicorn_worker.JsonErrorWorker"  # gthread, JSON error pages
threads = int(os.environ.get("WEB_THREADS", "4"))
graceful_timeout = 10
accesslog = "-"
control_socket_disable = True  # no ~/.gunicorn socket shared between instances
# The query string is left out of the access log: it carries cursors and search terms.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def when_ready(server):
    """Say what this server may ask of the database: workers x pool size, per pool."""
    from app import DEFAULTS

    def setting(name):
        return os.environ.get(name) or DEFAULTS[name]

    pool = int(setting("DB_POOL_SIZE"))
    budget = f"{workers} workers x {pool} = {workers * pool} connections to the primary"
    if setting("READ_CONNECTION_URL"):
        read_pool = int(setting("DB_READ_POOL_SIZE") or pool)
        budget += f", {workers} x {read_pool} = {workers * read_pool} to the replica"
    if setting("DB_POOLER"):
        budget += f" (client connections to a {setting('DB_POOLER')} pooler)"
    server.log.info("connection budget: %s", budget)


def worker_exit(server, worker):
    """Close the worker's pool so a stopped API leaves no sessions behind."""
    import sys

    lib_db = sys.modules.get("lib.db")
    if lib_db is not None:
        lib_db.db.close()
