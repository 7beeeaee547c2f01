"""Serve the API in production: granian's WSGI mode, settings from the environment.

    python serve.py [TARGET]   (bin/dev, the Docker image, bin/bench and the tests start it so)

TARGET is the app factory, app:create_app by default (bin/bench serves its constant-body app the
same way, to measure the HTTP stack alone).

granian serves the app (docs/decisions/0001-granian.md). Each worker is a fresh interpreter
(spawned, not forked) that builds its own app and pool, and closes the pool when it exits.

Each worker starts a session of its own (worker_app), so that Linux's autogroup scheduler gives
it a share of the CPU of its own beside the database's backends, each a session too; out of the
server's process group, it asks the kernel for SIGTERM when the server exits (PR_SET_PDEATHSIG)
and stops as on a normal shutdown (docs/decisions/0009-workers-in-sessions-of-their-own.md).

One request thread per worker by default (docs/decisions/0002-one-request-thread-per-worker.md):
a request that waits on the database holds up its worker's other connections, so where slow
routes are added, WEB_THREADS=2 DB_POOL_SIZE=2 lets them go on.

Settings (environment variables, lib/settings.py): BIND (host:port, default 0.0.0.0:4567),
WEB_CONCURRENCY (worker processes, default 2), WEB_THREADS (request threads per worker, default 1;
set DB_POOL_SIZE to the same), ACCESS_LOG (1: a line per request). The database's share is
WEB_CONCURRENCY x DB_POOL_SIZE connections, logged at start (docs/decisions/0007-connection-budget.md).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import sys
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings

from lib.settings import Settings, SettingsError

# Largest request head (request line and headers) granian buffers; larger ones get a 431/414.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
ACCESS_LOG_FORMAT = '%(addr)s "%(method)s %(path)s" %(status)d %(dt_ms).1fms'
WORKER_TARGET_ENV = "CRUDDUR_WORKER_TARGET"  # the factory worker_app() builds, module:function
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STARTED_BY = os.getppid()  # read first thing, before the parent can exit

log = logging.getLogger("cruddur.serve")


def worker_app():
    """The factory every worker calls (serve.py hands granian this one): a session of its own,
    then the app that main() was asked to serve, then what it built frozen."""
    start_own_session()
    module, _, factory = os.environ[WORKER_TARGET_ENV].partition(":")
    app = getattr(importlib.import_module(module), factory)()
    freeze_long_lived_objects()
    return app


def freeze_long_lived_objects() -> None:
    """Move what the worker has built so far (modules, the app, the pool) out of the cyclic
    garbage collector's sight: it lives as long as the process, so a full collection walks only
    what requests left behind (docs/decisions/0005-gc-freeze-at-worker-start.md). What exists
    when it runs is never collected: caches that grow with requests are built after it."""
    gc.collect()
    gc.freeze()


def start_own_session() -> None:
    """This worker in a session of its own, stopped with SIGTERM when the server exits (the
    module's docstring says why). Where either is impossible, the worker serves as it is."""
    if sys.platform != "linux":
        return
    server = multiprocessing.parent_process()
    try:
        os.setsid()
    except OSError as err:
        log.warning("worker %d stays in the server's session: %s", os.getpid(), err)
        return
    stop_when_parent_exits(server.pid if server is not None else None)


def stop_when_parent_exits(parent_pid: int | None) -> None:
    """SIGTERM to this process when its parent exits (PR_SET_PDEATHSIG): a worker when its server
    dies, the server when what started it (bin/dev, a test) is killed, so no server is left
    holding the port. Nothing happens where the kernel cannot do it."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("pid %d: prctl(PR_SET_PDEATHSIG) failed: errno %d", os.getpid(), ctypes.get_errno())
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop_when_parent_exits(STARTED_BY)
    if len(argv) > 1 or (argv and ":" not in argv[0]):
        print("usage: python serve.py [module:factory]", file=sys.stderr)
        return 2
    target = argv[0] if argv else "app:create_app"
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        print(f"serve.py: {err}", file=sys.stderr)
        return 2
    if target == "app:create_app" and not settings.connection_url:
        print("serve.py: CONNECTION_URL is not set", file=sys.stderr)
        return 2
    # Spawned workers run the interpreter's normal exit, atexit included: that closes the pool.
    multiprocessing.set_start_method("spawn", force=True)
    if target == "app:create_app":
        log.info("connection budget: %s", settings.connection_budget())
    os.environ[WORKER_TARGET_ENV] = target  # spawned workers inherit the environment
    Granian(
        "serve:worker_app",
        factory=True,
        working_dir=Path(__file__).resolve().parent,
        interface=Interfaces.WSGI,
        websockets=False,
        address=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        blocking_threads=settings.web_threads,
        http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD_BYTES),
        log_access=settings.access_log,
        log_access_format=ACCESS_LOG_FORMAT,
        respawn_failed_workers=True,
        workers_kill_timeout=15,  # a worker that does not stop within this is killed
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
