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


def worker_exit(server, worker):
    """Close the worker's pool so a stopped API leaves no sessions behind."""
    import sys

    lib_db = sys.modules.get("lib.db")
    if lib_db is not None:
        lib_db.db.close()
