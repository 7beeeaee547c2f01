"""bin/bench: the feed at 1k, 100k and 1M activities, measured against its ceilings.

For each size it builds a database of its own (never the dev one) on a PostgreSQL cluster of its
own (bench/data/, git-ignored), with 1,000 users and N activities made in SQL (bench/generate.sql),
starts the API exactly as production serves it (backend-flask/serve.py: granian, its worker and
thread counts, as bin/dev and the Docker image start it), warms it, and drives it with wrk over
127.0.0.1 (16 connections, or --connections, a fixed duration). In the same run it measures two ceilings:

- the database alone: `pgbench -M prepared` running the very SQL file the route runs, with the
  same parameters, at the same concurrency (and the plan mode the API gives that query), half
  the duration just before the API's measurement and half just after;
- the HTTP stack alone: the same server, same settings, answering a constant body of the same
  size (tools/bench_const_app.py), right after the API's measurement.

The page latencies the targets compare (one connection) are measured at the smallest and the
largest size in turns, with an API on each (a copy of the smallest database as its reads saw it),
so that both come from the same minute.

It writes its latest run, and nothing else, to bench/results.md (a markdown table, the targets
met or missed, and the query-plan check) and bench/PLANS.md (EXPLAIN (ANALYZE, BUFFERS) of every
list query at the largest size, as the API runs it), and prints the results. Each run replaces
both files: history is git's. How to read them: docs/benchmark.md.

It also builds a mostly expired table (--expired-size, the largest size by default; 0: none), all
its activities expired but a handful of cruds and their replies, and measures every list route on
it beside the live table: what the list queries meet when expired rows are not purged.

With --pooled the API reaches PostgreSQL through a PgBouncer in transaction mode (DB_POOLER=
transaction) that has a quarter as many server connections as the API has client connections,
as RDS Proxy would (the API runs 2 threads and 2 connections per worker for it, so that there are
4); the table (bench/results-pooled.md) is the same, the ceilings the same.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import requests
from psycopg import sql as pgsql

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend-flask"
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(BACKEND))

from fake_cognito import FakeCognito  # noqa: E402
from lib.paging import NEWEST_FIRST_START, OLDEST_FIRST_START, decode_cursor, encode_cursor  # noqa: E402
from lib.queries import load_query  # noqa: E402
from lib.settings import Settings  # noqa: E402
from localpg import LocalPostgres, find_bindir, free_port  # noqa: E402
from localpgbouncer import INSTALL_HINT as PGBOUNCER_HINT  # noqa: E402
from localpgbouncer import LocalPgBouncer, find_pgbouncer  # noqa: E402

CONNECTIONS = 16  # wrk's and pgbench's, shared by the API's workers; main() sets --connections
WRK = os.environ.get("BENCH_WRK", "wrk")  # the tests name a missing one
WRK_THREADS = 2
SEARCH_TERM = "coffee"  # in about 4% of the activities (bench/generate.sql)
RARE_TERM = "aurora"  # in about 1 in 10,000: search's first page of a rare term
PAGE = 20
# POST /api/activities posts as this many users in turn (bench-sub-1 ...), as many users would:
# one user's posts would all wait on the same row of user_crud_expiries.
POSTERS = 50
CLIENTS_PER_SERVER_CONNECTION = 4  # --pooled: API connections per PgBouncer server connection
EXPIRED_TABLE_LIVE = 5  # the mostly expired table: its live cruds (bench/generate.sql's bench.live)
WRK_HINT = ("wrk is not installed: bin/bench drives the API with it.\n"
            "  Debian/Ubuntu: sudo apt-get install -y wrk\n"
            "  macOS:         brew install wrk\n"
            "then run bin/bench again.")
PRODUCTION_SETTINGS = {  # what serve.py and lib/db.py read; the bench sets none of them
    "WEB_CONCURRENCY", "WEB_THREADS", "ACCESS_LOG", "DB_POOL_SIZE", "DB_POOL_MIN_SIZE",
    "DB_PLAN_CACHE_MODE",
}

TOKEN_SECONDS = 4 * 3600  # the bench's access tokens outlive its longest run


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


# -- processes: every one started here is stopped here, by its pid -----------------------------

class Server:
    """A server process (the API, or the constant-body app) and the peak memory of its workers."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.peak_worker_rss = 0
        self.peak_total_rss = 0
        self._sampling = False

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; its log: {self._log.name}")
            try:
                if requests.get(self.base + path, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout:.0f}s; log: {self._log.name}")

    def processes(self) -> list[psutil.Process]:
        try:
            main = psutil.Process(self.process.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample_memory(self) -> None:
        rss = []
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                rss.append(proc.memory_info().rss)
        if rss:
            # the workers are the children; a single-process server is its own worker
            self.peak_worker_rss = max(self.peak_worker_rss, max(rss[1:] or rss))
            self.peak_total_rss = max(self.peak_total_rss, sum(rss))

    def connection_split(self) -> list[int]:
        """How many of wrk's connections each worker holds, most first. The kernel hands wrk's
        connections to whichever worker accepts first: 8+8 or 12+4, and the worker with more
        serves each of its connections less often, which is what moves p99."""
        wrk_ports = set()
        for proc in psutil.Process().children():  # wrk, run by this process
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if proc.name() == Path(WRK).name:
                    wrk_ports |= {c.laddr.port for c in proc.net_connections("tcp")}
        counts = []
        for proc in self.processes()[1:] or self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if any("resource_tracker" in arg for arg in proc.cmdline()):
                    continue  # multiprocessing's helper beside the spawned workers
                counts.append(sum(1 for c in proc.net_connections("tcp")
                                  if c.laddr.port == self.port and c.raddr and c.raddr.port in wrk_ports))
        return sorted(counts, reverse=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


class ServerSampler:
    """Samples a server's memory every 0.1 s while a measurement runs, and, until it has seen
    all of wrk's connections open, how its workers share them."""

    def __init__(self, server: Server):
        self.server = server
        self.connections = CONNECTIONS
        self.split: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.server.sample_memory()
            if sum(self.split) < self.connections:
                split = self.server.connection_split()
                if sum(split) > sum(self.split):
                    self.split = split
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_bounded(argv: list[str], timeout: float, env: dict | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}):\n"
                           f"{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return result.stdout


# -- load generators ----------------------------------------------------------------------------

@dataclass
class Load:
    rps: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # pgbench's, each one


def latency_load(rps: float, latencies_ms: list[float]) -> Load:
    """A Load whose p50 and p99 come from every latency measured."""
    ordered = sorted(latencies_ms)

    def percentile(q: float) -> float | None:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None

    return Load(rps, percentile(0.50), percentile(0.99), ordered)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: float, script: Path | None = None, connections: int | None = None) -> Load:
    """wrk for `seconds` at `connections` (the run's CONNECTIONS by default)."""
    connections = connections or CONNECTIONS
    threads = min(WRK_THREADS, connections)
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
            "--timeout", "5s"]
    if script:
        argv += ["-s", str(script)]
    out = run_bounded([*argv, url], timeout=seconds + 30)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"wrk got {m.group(1)} error responses from {url}")
    if m := re.search(r"Socket errors: .*", out):
        raise RuntimeError(f"wrk: {m.group(0)} ({url})")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return Load(rps, _ms(p50.group(1)) if p50 else None, _ms(p99.group(1)) if p99 else None)


def warm(url: str, seconds: float, script: Path | None = None) -> None:
    """A second of load before a measurement (skipped by a smoke run of 1 s measurements)."""
    if seconds >= 2:
        wrk(url, 1, script)


def pgbench_script(sql: str) -> str:
    """A db/sql file as a pgbench script: %(name)s becomes :name, %% becomes %."""
    body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    return re.sub(r"%\((\w+)\)s", r":\1", body).replace("%%", "%").strip() + "\n"


def pgbench(bindir: Path, url: str, sql: str, params: dict, seconds: float, plan_mode: str,
            workdir: Path, posters: int = 0) -> Load:
    """The SQL alone; with `posters`, each transaction as one of the users bench-sub-1..posters,
    drawn at random, as the API's POSTs are. Its latencies come from pgbench's per-transaction
    log (a line written per transaction: well under 1% of one)."""
    text = pgbench_script(sql)
    for key in [key for key, value in params.items() if value is None]:  # pgbench has no NULL variable
        text = text.replace(f":{key}", "NULL")
    params = {key: value for key, value in params.items() if value is not None}
    if posters:
        params = {k: v for k, v in params.items() if k != "cognito_user_id"}
        text = (f"\\set poster random(1, {posters})\n"
                + text.replace(":cognito_user_id", "('bench-sub-' || :poster)"))
    script = workdir / "query.pgbench"
    script.write_text(text)
    log_dir = Path(tempfile.mkdtemp(prefix="pgbench-log-", dir=workdir))
    argv = [str(bindir / "pgbench"), "-n", "-M", "prepared", f"-c{CONNECTIONS}",
            f"-j{min(WRK_THREADS, CONNECTIONS)}", f"-T{max(1, round(seconds))}", "-f", str(script),
            "--log", f"--log-prefix={log_dir / 'txn'}"]
    for key, value in params.items():
        argv += ["-D", f"{key}={value}"]
    env = {**os.environ, "PGOPTIONS": f"-c plan_cache_mode={plan_mode}" if plan_mode else ""}
    try:
        out = run_bounded([*argv, url], timeout=seconds + 60, env=env)
        if (m := re.search(r"number of failed transactions: (\d+)", out)) and int(m.group(1)):
            raise RuntimeError(f"pgbench: {m.group(1)} failed transactions")
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
        # each line: client, transaction, latency in microseconds, ...
        latencies = [int(line.split()[2]) / 1000 for log in log_dir.iterdir()
                     for line in log.read_text().splitlines()]
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return latency_load(tps, latencies)


# -- the benchmark ----------------------------------------------------------------------------

@dataclass
class Case:
    """One request the bench measures."""

    route: str  # ROUTES
    page: str  # first, deep, rare (search's rare term), - (create)
    path: str
    sql_name: str
    params: dict  # the SQL's parameters, exactly as the service binds them
    token: str | None = None
    body: dict | None = None
    ceilings: bool = False  # measure pgbench and the constant-body server too
    poster_tokens: list[str] = field(default_factory=list)  # a write: posted as these, at random


@dataclass
class Row:
    size: int
    case: Case
    items: int
    body: bytes  # what the API answered: the constant-body server answers the same
    api: Load
    alone: Load | None = None  # one connection: the page's own latency, no queue in front of it
    db: Load | None = None  # the mean of db_spread
    db_spread: tuple[float, float] | None = None  # pgbench tps just before and just after `api`
    http: Load | None = None
    worker_rss_mb: float = 0.0
    total_rss_mb: float = 0.0
    split: list[int] = field(default_factory=list)  # wrk's connections per worker, mid-run


ROUTES = ("home", "user", "search", "notifications", "status", "create")


@dataclass
class Run:
    duration: float
    pooled: bool = False
    routes: tuple[str, ...] = ROUTES  # the routes measured (the plans are of every list route)
    against: Path | None = None  # another checkout, whose home page is measured in turns with ours
    rows: list[Row] = field(default_factory=list)
    plans: str = ""  # PLANS.md: the plans themselves
    plan_checks: list[str] = field(default_factory=list)  # one line per plan, for results.md
    notes: list[str] = field(default_factory=list)
    expired_rows: list[Row] = field(default_factory=list)  # the list routes on a mostly expired table


def plan_mode_for(sql_name: str) -> str:
    """The plan_cache_mode the API's sessions run the query with (lib/queries.py)."""
    if load_query(sql_name).plan_every_call:
        return "force_custom_plan"
    return Settings.from_env().db_plan_cache_mode


def build_database(pg: LocalPostgres, name: str, activities: int, live: int | None = None) -> str:
    """A fresh database loaded from db/schema.sql and filled by bench/generate.sql; with `live`,
    a mostly expired one, all its activities expired but `live` cruds and their replies."""
    drop_database(pg, name)
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((ROOT / "db" / "schema.sql").read_text())
        # Loading a million rows and then building the indexes beats updating them row by row.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = 'activities' AND indexname <> 'activities_pkey'").fetchall()
        for index_name, _ in indexes:
            conn.execute(f"DROP INDEX public.{index_name}")
        conn.execute("SELECT set_config('bench.activities', %s, false)", [str(activities)])
        if live is not None:
            conn.execute("SELECT set_config('bench.live', %s, false)", [str(live)])
        conn.execute((BENCH / "generate.sql").read_text())
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM (ANALYZE) public.users, public.activities")
        # Write the load out now, not in a scheduled checkpoint during the measurements.
        conn.execute("CHECKPOINT")
    return url


def drop_database(pg: LocalPostgres, dbname: str) -> None:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def pick(conn, sql: str, params: dict | None = None):
    return conn.execute(sql, params or {}).fetchone()


def middle_cursor(conn, where: str, params: dict) -> str | None:
    """The cursor of the row in the middle of a list (newest first): a deep page."""
    # `where` is one of the constant conditions in cases_for(); the values are bound
    count = pick(conn, f"SELECT count(*) FROM public.activities a WHERE {where}", params)[0]  # noqa: S608
    if count == 0:
        return None
    row = pick(conn, f"SELECT a.created_at, a.uuid FROM public.activities a WHERE {where}"  # noqa: S608
                     " ORDER BY a.created_at DESC, a.uuid DESC OFFSET %(offset)s LIMIT 1",
               {**params, "offset": count // 2})
    return encode_cursor(row[0].isoformat(), str(row[1]))


def cases_for(url: str, cognito: FakeCognito) -> list[Case]:
    """The requests to measure, and the SQL parameters each one binds."""
    from services.search_activities import like_pattern

    start, oldest_first = (dict(zip(("cursor_created_at", "cursor_uuid"), first, strict=True))
                           for first in (NEWEST_FIRST_START, OLDEST_FIRST_START))
    live = "a.expires_at > now()"
    with psycopg.connect(url, autocommit=True) as conn:
        # the user with the most live cruds, and the one with the most live replies from others
        handle, author = pick(conn, """
            SELECT u.handle, u.uuid::text FROM public.users u
            LEFT JOIN public.activities a ON a.user_uuid = u.uuid
              AND a.reply_to_activity_uuid IS NULL AND a.expires_at > now()
            GROUP BY u.uuid ORDER BY count(a.uuid) DESC, u.handle LIMIT 1""")
        caller, caller_sub = pick(conn, """
            SELECT u.uuid::text, u.cognito_user_id FROM public.users u
            LEFT JOIN public.activities a ON a.reply_to_user_uuid = u.uuid
              AND a.user_uuid <> u.uuid AND a.expires_at > now()
            GROUP BY u.uuid ORDER BY count(a.uuid) DESC, u.handle LIMIT 1""")
        # a status page: the live crud with the most replies, and its author
        status_uuid, status_handle = pick(conn, """
            SELECT a.uuid::text, u.handle FROM public.activities a
            JOIN public.users u ON u.uuid = a.user_uuid
            WHERE a.reply_to_activity_uuid IS NULL AND a.expires_at > now()
            ORDER BY a.replies_count DESC, a.created_at DESC LIMIT 1""")
        pattern = like_pattern(SEARCH_TERM)
        deep = {
            "home": middle_cursor(conn, f"a.reply_to_activity_uuid IS NULL AND {live}", {}),
            "user": middle_cursor(conn, f"a.user_uuid = %(u)s AND a.reply_to_activity_uuid IS NULL"
                                        f" AND {live}", {"u": author}),
            "search": middle_cursor(conn, f"a.message ILIKE %(p)s AND {live}", {"p": pattern}),
            "notifications": middle_cursor(
                conn, f"a.reply_to_user_uuid = %(u)s AND a.user_uuid <> %(u)s AND {live}",
                {"u": caller}),
        }
    token = cognito.token(caller_sub, expires_in=TOKEN_SECONDS)
    lists = {
        "home": ("/api/activities/home", "activities/home", {}),
        "user": (f"/api/activities/@{handle}", "activities/user", {"handle": handle}),
        "search": (f"/api/activities/search?term={SEARCH_TERM}", "activities/search",
                   {"pattern": pattern}),
        "notifications": ("/api/activities/notifications", "activities/notifications",
                          {"cognito_user_id": caller_sub}),
    }
    cases = []
    for route, (path, sql_name, params) in lists.items():
        auth = token if route == "notifications" else None
        cases.append(Case(route, "first", path, sql_name, {**params, "limit": PAGE, **start},
                          token=auth, ceilings=route != "notifications"))
        if deep[route]:
            created_at, row_uuid = decode_cursor(deep[route])  # as the API binds it
            sep = "&" if "?" in path else "?"
            cases.append(Case(route, "deep", f"{path}{sep}cursor={deep[route]}", sql_name,
                              {**params, "limit": PAGE, "cursor_created_at": created_at,
                               "cursor_uuid": row_uuid}, token=auth))
        if route == "search":
            cases.append(Case(route, "rare", f"/api/activities/search?term={RARE_TERM}", sql_name,
                              {"pattern": like_pattern(RARE_TERM), "limit": PAGE, **start}))
    cases.append(Case("status", "first", f"/api/activities/@{status_handle}/status/{status_uuid}",
                      "activities/show", {"handle": status_handle, "uuid": status_uuid, "limit": PAGE,
                                          **oldest_first}))
    message = "Benchmarking the feed with a crud that expires tomorrow"
    posters = [cognito.token(f"bench-sub-{k}", expires_in=TOKEN_SECONDS) for k in range(1, POSTERS + 1)]
    cases.append(Case("create", "-", "/api/activities", "activities/post",
                      {"cognito_user_id": "bench-sub-1", "message": message, "ttl": "1 day",
                       "parent_uuid": None},
                      token=posters[0], body={"message": message, "ttl": "1-day"}, ceilings=True,
                      poster_tokens=posters))
    return cases


def wrk_script(case: Case, workdir: Path) -> Path | None:
    if case.poster_tokens:  # a token drawn for each request
        tokens = ", ".join(json.dumps(token) for token in case.poster_tokens)
        lines = [f"tokens = {{{tokens}}}",
                 "request = function()",
                 '  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]',
                 "  return wrk.format()",
                 "end"]
    elif case.token:
        lines = [f'wrk.headers["Authorization"] = "Bearer {case.token}"']
    else:
        return None
    if case.body is not None:
        lines += ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"',
                  f"wrk.body = {json.dumps(json.dumps(case.body))}"]
    script = workdir / f"{case.route}-{case.page}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def server_argv(target: str, backend: Path = BACKEND) -> list[str]:
    """How production starts the server (serve.py), serving `target`; BIND gives the port."""
    return [str(VENV_BIN / "python"), str(backend / "serve.py"), target]


def start_api(url: str, cognito: FakeCognito, workdir: Path, backend: Path = BACKEND,
              **settings: str) -> Server:
    """The API of this checkout, or of the one whose backend-flask/ is `backend` (--against)."""
    port = free_port()
    env = {**os.environ, **cognito.env(), "CONNECTION_URL": url, "BIND": f"127.0.0.1:{port}",
           "FRONTEND_URL": "http://localhost:3000", "BACKEND_URL": f"http://127.0.0.1:{port}",
           "PYTHONUNBUFFERED": "1", **settings}
    api = Server(server_argv("app:create_app", backend), backend, env,
                 workdir / f"api-{port}.log", port)
    api.wait_ready("/api/health-check")
    return api


def start_run_api(run: Run, pg: LocalPostgres, dbname: str, url: str, cognito: FakeCognito, workdir: Path,
                  stack: contextlib.ExitStack) -> Server:
    """The API on database `dbname` as this run reaches it (through PgBouncer with --pooled),
    stopped when `stack` closes."""
    api_url, settings = url, {}
    if run.pooled:
        bouncer = pooler_for(pg, dbname, workdir)
        stack.callback(bouncer.stop)
        api_url, settings = bouncer.url(), {"DB_POOLER": "transaction"}
    server = start_api(api_url, cognito, workdir, **settings)
    stack.callback(server.stop)
    return server


def start_const(workdir: Path) -> tuple[Server, Path]:
    """The constant-body app and the folder of its bodies: GET or POST /<name> answers the file
    <name> written there before the first request for it."""
    port = free_port()
    body_dir = workdir / f"bodies-{port}"
    body_dir.mkdir()
    env = {**os.environ, "BENCH_BODY_DIR": str(body_dir), "BIND": f"127.0.0.1:{port}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tools"), str(BACKEND)])}
    const = Server(server_argv("bench_const_app:create_app"), ROOT / "tools", env,
                   workdir / f"const-{port}.log", port)
    const.wait_ready("/ready")  # a 404 JSON error: it answers
    return const, body_dir


def request_once(api: Server, case: Case) -> requests.Response:
    headers = {"Authorization": f"Bearer {case.token}"} if case.token else {}
    method = "POST" if case.body is not None else "GET"
    response = requests.request(method, api.base + case.path, headers=headers, json=case.body,
                                timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {case.path} -> {response.status_code} {response.text[:200]}")
    return response


def count_items(route: str, body) -> int:
    if route == "create":
        return 1
    if route == "user":
        return len(body["activities"])
    if route == "status":
        return len(body["replies"])
    return len(body)


@dataclass
class Baseline:
    """A copy of the smallest size's database as its reads were measured (before the posts),
    kept until the largest size is measured: the page latencies of the two are measured in
    alternation (measure_latencies)."""

    size: int
    dbname: str
    url: str
    cases: list[Case]


def measure_size(run: Run, pg: LocalPostgres, size: int, cognito: FakeCognito, workdir: Path,
                 explain: bool, keep_baseline: bool = False,
                 baseline: Baseline | None = None, last: bool = False) -> Baseline | None:
    started = time.monotonic()
    say(f"{size:,} activities: building the database")
    dbname = f"cruddur_bench_{size}"
    url = build_database(pg, dbname, size)
    say(f"{size:,} activities: built in {time.monotonic() - started:.1f}s")
    cases = cases_for(url, cognito)
    kept = None
    if keep_baseline:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}_baseline" TEMPLATE "{dbname}"')
        kept = Baseline(size, f"{dbname}_baseline", pg.url(f"{dbname}_baseline"), cases)
    if explain:
        run.plans, run.plan_checks = explain_plans(url, cases, size)
    cases = [case for case in cases if case.route in run.routes]
    with contextlib.ExitStack() as stack:

        def api_for(dbname: str, db_url: str) -> Server:
            return start_run_api(run, pg, dbname, db_url, cognito, workdir, stack)

        api = api_for(dbname, url)
        const, body_dir = start_const(workdir)
        stack.callback(const.stop)

        def database_alone(case: Case, seconds: float) -> Load:
            return pgbench(pg.bindir, url, load_query(case.sql_name).text, case.params, seconds,
                           plan_mode_for(case.sql_name), workdir, posters=len(case.poster_tokens))

        def http_alone(case: Case, body: bytes) -> Load:
            """The HTTP stack alone: the same server and settings answering the API's body."""
            name = f"{case.route}-{case.page}"
            (body_dir / name).write_bytes(body)
            warm(f"{const.base}/{name}", run.duration)
            return wrk(f"{const.base}/{name}", run.duration)

        # Every read, through the API and then alone in the database, and the page latencies,
        # before the first write: the writes add the newest activities, which change what the
        # reads find (search walks past them).
        # from one connection: measured here at a size between the smallest and the largest; the
        # smallest (kept as the baseline) and the largest have theirs measured in turns below
        rows = measure_api(run, size, api, [c for c in cases if c.body is None], workdir,
                           database_alone, http_alone, alone=baseline is None and not keep_baseline)
        if baseline:
            base_api = api_for(baseline.dbname, baseline.url)
            measure_latencies(run, rows, api, baseline, base_api, workdir)
            base_api.stop()
        rows += measure_api(run, size, api, [c for c in cases if c.body is not None], workdir,
                            database_alone, http_alone)
        if run.against and last:
            home = next(case for case in cases if (case.route, case.page) == ("home", "first"))
            other = start_api(url, cognito, workdir, backend=run.against / "backend-flask")
            stack.callback(other.stop)
            compare_home(run, size, api, other, home)
    for row in rows:
        run.rows.append(row)
        label = f"{row.case.route} {row.case.page}".strip(" -")
        extra = ""
        if row.db:
            extra = (f", {100 * row.api.rps / row.db.rps:.0f}% of pgbench {row.db.rps:,.0f}/s"
                     f" ({row.db_spread[0]:,.0f} before, {row.db_spread[1]:,.0f} after),"
                     f" {100 * row.api.rps / row.http.rps:.0f}% of the HTTP stack {row.http.rps:,.0f}/s")
        alone = f", alone p50 {row.alone.p50_ms:.2f} ms" if row.alone else ""
        say(f"{size:,} {label}: {row.api.rps:,.0f} req/s, p50 {row.api.p50_ms:.2f} ms,"
            f" p99 {row.api.p99_ms:.2f} ms ({'+'.join(map(str, row.split))} connections){alone}{extra}")
    return kept


def measure_expired(run: Run, pg: LocalPostgres, size: int, cognito: FakeCognito, workdir: Path) -> None:
    """Every list route on a mostly expired table of `size` activities, at CONNECTIONS as on the
    live tables. A route that answers errors (a statement timeout) is noted, not measured."""
    dbname = f"cruddur_bench_expired_{size}"
    say(f"{size:,} activities, all but {EXPIRED_TABLE_LIVE} cruds expired: building the database")
    url = build_database(pg, dbname, size, live=EXPIRED_TABLE_LIVE)
    cases = [case for case in cases_for(url, cognito) if case.body is None and case.route in run.routes]
    if not run.pooled:  # the plans of the list queries on this table too, as on the live one
        plans, checks = explain_plans(url, cases_for(url, cognito), size, table=", mostly expired")
        run.plans += "\n" + plans
        run.plan_checks += ["", *checks]
    with contextlib.ExitStack() as stack:
        api = start_run_api(run, pg, dbname, url, cognito, workdir, stack)
        for case in cases:
            label = f"{case.route} ({case.page})"
            try:
                response = request_once(api, case)
                warm(api.base + case.path, run.duration, wrk_script(case, workdir))
                load = wrk(api.base + case.path, run.duration, wrk_script(case, workdir))
            except RuntimeError as err:
                run.notes.append(f"Mostly expired table, {label}: not measured: {err}")
                say(f"{size:,} mostly expired {label}: {err}")
                continue
            run.expired_rows.append(Row(size, case, count_items(case.route, response.json()),
                                        response.content, load))
            say(f"{size:,} mostly expired {label}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms,"
                f" p99 {load.p99_ms:.2f} ms")
    drop_database(pg, dbname)


def measure_latencies(run: Run, rows: list[Row], api: Server, baseline: Baseline, base_api: Server,
                      workdir: Path) -> None:
    """Each list page's own latency (p50 from one connection) at this size and at the baseline
    size, measured in turns of a quarter of the duration, both APIs up: the two figures the
    latency targets compare then come from the same minute, not from runs minutes apart on a
    machine whose speed drifts. Each is the median of its turns; the baseline rows get theirs."""
    base_cases = {(c.route, c.page): c for c in baseline.cases}
    base_rows = {(r.case.route, r.case.page): r for r in run.rows if r.size == baseline.size}
    turns = max(1, min(4, int(run.duration)))
    for row in rows:
        key = (row.case.route, row.case.page)
        base_case, base_row = base_cases.get(key), base_rows.get(key)
        if row.case.route == "create" or base_case is None or base_row is None:
            continue
        here, there = [], []
        for _ in range(turns):
            here.append(wrk(api.base + row.case.path, run.duration / turns,
                            wrk_script(row.case, workdir), 1))
            there.append(wrk(base_api.base + base_case.path, run.duration / turns,
                             wrk_script(base_case, workdir), 1))
        row.alone, base_row.alone = median_load(here), median_load(there)


def compare_home(run: Run, size: int, api: Server, other: Server, home: Case) -> None:
    """--against: the home page from this checkout's API and the other's, in turns on the same
    database (wrk at CONNECTIONS, a quarter of the duration each but at least the second wrk
    counts in, eight turns each, the first of each pair alternating), as a ratio of the medians:
    a code change's effect, free of the machine's drift between runs."""
    loads: dict[str, list[Load]] = {"this": [], "other": []}
    seconds = max(1, round(run.duration / 4))
    for server in (api, other):
        warm(server.base + home.path, seconds)
    for turn in range(8):
        pair = [("this", api), ("other", other)]
        for name, server in pair if turn % 2 == 0 else pair[::-1]:
            loads[name].append(wrk(server.base + home.path, seconds))
    this, other_rps = (statistics.median(load.rps for load in loads[name]) for name in ("this", "other"))
    line = (f"Home page at {size:,}, in turns with {run.against}: this checkout {this:,.0f} req/s,"
            f" the other {other_rps:,.0f} req/s: {this / other_rps:.2f}x.")
    say(line)
    run.notes.append(line)


def median_load(loads: list[Load]) -> Load:
    return Load(statistics.median(load.rps for load in loads),
                statistics.median(load.p50_ms for load in loads))


def pooler_connections() -> tuple[int, int]:
    """--pooled: the API's connections to PgBouncer (workers x DB_POOL_SIZE) and PgBouncer's to
    PostgreSQL, a quarter as many."""
    settings = Settings.from_env()
    clients = settings.web_concurrency * settings.db_pool_size
    return clients, max(1, round(clients / CLIENTS_PER_SERVER_CONNECTION))


def pooler_for(pg: LocalPostgres, dbname: str, workdir: Path) -> LocalPgBouncer:
    """A PgBouncer in transaction mode for `dbname`."""
    _, servers = pooler_connections()
    bouncer = LocalPgBouncer(workdir / f"pgbouncer-{dbname}", free_port(), pg, dbname, pool_size=servers,
                             users={"postgres": os.urandom(12).hex()})
    bouncer.start()
    return bouncer


def measure_api(run: Run, size: int, api: Server, cases: list[Case], workdir: Path,
                database_alone: Callable[[Case, float], Load],
                http_alone: Callable[[Case, bytes], Load], alone: bool = True) -> list[Row]:
    """Each case against the API: wrk at CONNECTIONS (and the workers' peak memory meanwhile),
    then, with `alone`, from a single connection. A case with ceilings has its query run alone in
    the database for half the duration just before the API's measurement and half just after
    (the ceiling is the mean of the two), and its body served by the HTTP stack alone right
    after: a machine whose speed drifts (a VM's does, by up to 2x in minutes) moves the ceilings
    as it moves the API, and their ratios stay put."""
    for case in cases:  # warm: every worker has prepared every query
        warm(api.base + case.path, run.duration, wrk_script(case, workdir))
    rows = []
    half = run.duration / 2
    for case in cases:
        response = request_once(api, case)
        before = database_alone(case, half) if case.ceilings else None
        api.peak_worker_rss = api.peak_total_rss = 0
        with ServerSampler(api) as sampler:
            load = wrk(api.base + case.path, run.duration, wrk_script(case, workdir))
        row = Row(size, case, count_items(case.route, response.json()), response.content, load,
                  worker_rss_mb=api.peak_worker_rss / 2**20, total_rss_mb=api.peak_total_rss / 2**20,
                  split=sampler.split)
        if before:
            after = database_alone(case, half)
            row.db = latency_load((before.rps + after.rps) / 2,
                                  before.latencies_ms + after.latencies_ms)
            row.db_spread = (before.rps, after.rps)
            row.http = http_alone(case, response.content)
        if alone and case.route != "create":
            row.alone = wrk(api.base + case.path, run.duration, wrk_script(case, workdir), 1)
        rows.append(row)
    return rows


# -- plans --------------------------------------------------------------------------------------

def explain_plans(url: str, cases: list[Case], size: int, table: str = "") -> tuple[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every list query as the API runs it: a generic plan of the
    prepared statement (force_generic_plan), or, for a query planned every call, its custom plan.
    Returns the PLANS.md text and the check, one line per plan, that results.md shows."""
    out = [f"# Query plans at {size:,} activities{table}", "",
           "Written by `bin/bench` (tools/bench.py) for its latest run; each run replaces it.",
           "`EXPLAIN (ANALYZE, BUFFERS)` of each list query with the plan the API gets: the generic",
           "plan of the prepared statement (`plan_cache_mode=force_generic_plan`,",
           "docs/decisions/0003-generic-plans.md), or, for search (`-- plan: every call`), the plan",
           "made for its parameters. The check under each plan: no sequential scan of `activities`",
           "and no sort of more rows than a page holds (docs/decisions/0006-keyset-paging.md).", ""]
    checks = [f"## Query plans at {size:,} activities{table}", "",
              "Each list query as the API runs it (its plans: PLANS.md beside this file), checked for"
              " a sequential scan of `activities` or a sort of more rows than a page holds:", ""]
    for case in cases:
        if case.route == "create":
            continue
        sql = load_query(case.sql_name).text
        names: list[str] = []

        def positional(match, names=names):
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        mode = plan_mode_for(case.sql_name)
        with psycopg.connect(url, autocommit=True, options=f"-c plan_cache_mode={mode}") as conn:
            if mode == "force_custom_plan":
                cur = psycopg.ClientCursor(conn)
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, case.params)
            else:
                body = re.sub(r"%\((\w+)\)s", positional, sql).replace("%%", "%")
                conn.execute(f"PREPARE q AS {body}")
                values = ", ".join(pgsql.quote(case.params[n]) for n in names)
                for _ in range(2):
                    conn.execute(f"EXECUTE q({values})").fetchall()
                cur = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE q({values})")
            plan = [line for (line,) in cur.fetchall()]
        problems = plan_problems(plan)
        verdict = "ok: index scans only, no sort of the table" if not problems else \
            "CHECK: " + "; ".join(problems)
        out += [f"## {case.route}, {case.page} page (`db/sql/{case.sql_name}.sql`)", "",
                f"Parameters: `{json.dumps(case.params)}`; {verdict}.", "", "```",
                *plan, "```", ""]
        checks.append(f"- {case.route}, {case.page} page (`{case.sql_name}.sql`): {verdict};"
                      f" {plan_cost(plan)}.")
    return "\n".join(out), checks


def plan_cost(plan: list[str]) -> str:
    """The plan's execution time and the buffers its top node touched, as EXPLAIN gives them."""
    run = next((m.group(1) for line in plan if (m := re.search(r"Execution Time: ([\d.]+) ms", line))),
               None)
    buffers = next((m.group(1) for line in plan if (m := re.search(r"Buffers: shared (.+)", line))),
                   None)
    return ", ".join(filter(None, (run and f"{run} ms", buffers and f"buffers {buffers}"))) or "no timing"


def plan_problems(plan: list[str]) -> list[str]:
    problems = []
    for line in plan:
        if re.search(r"Seq Scan on activities", line):
            problems.append("a sequential scan of activities")
        sort = re.search(r"-> +Sort .*actual time=[\d.]+\.\.[\d.]+ rows=([\d.]+)", line)
        if sort and float(sort.group(1)) > 101:
            problems.append(f"a sort of {sort.group(1)} rows")
        bitmap = re.search(r"Bitmap Heap Scan on activities .*actual time=\S+ rows=([\d.]+)", line)
        if bitmap and float(bitmap.group(1)) > 101:
            problems.append(f"a bitmap scan of {bitmap.group(1)} rows")
    return problems


# -- the report ---------------------------------------------------------------------------------

def fmt(value: float | None, spec: str = ".2f") -> str:
    return "" if value is None else format(value, spec)


def results_table(run: Run) -> list[str]:
    lines = ["| activities | request | items | body B | req/s | p50 ms | p99 ms | conns/worker |"
             " p50 ms, 1 conn | pgbench tps | % of pgbench | HTTP stack req/s | % of HTTP |"
             " peak MB/worker |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in run.rows:
        label = {"create": "POST /api/activities"}.get(row.case.route, f"{row.case.route} ({row.case.page})")
        db_share = 100 * row.api.rps / row.db.rps if row.db else None
        http_share = 100 * row.api.rps / row.http.rps if row.http else None
        lines.append(
            f"| {row.size:,} | {label} | {row.items} | {len(row.body):,} | {row.api.rps:,.0f} |"
            f" {fmt(row.api.p50_ms)} | {fmt(row.api.p99_ms)} | {'+'.join(map(str, row.split))} |"
            f" {fmt(row.alone.p50_ms if row.alone else None)} |"
            f" {fmt(row.db.rps if row.db else None, ',.0f')} | {fmt(db_share, '.0f')} |"
            f" {fmt(row.http.rps if row.http else None, ',.0f')} | {fmt(http_share, '.0f')} |"
            f" {row.worker_rss_mb:.0f} |")
    return lines


def targets(run: Run) -> list[str]:
    """The issue's targets, each met or missed, from this run's rows."""
    if not run.rows:
        return []
    big, small = max(r.size for r in run.rows), min(r.size for r in run.rows)

    def find(size, route, page):
        return next((r for r in run.rows if r.size == size and r.case.route == route
                     and r.case.page == page), None)

    def mark(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def spread(row: Row) -> str:
        before, after = row.db_spread
        return f" ({row.db.rps:,.0f} tps: {before:,.0f} just before, {after:,.0f} just after)"

    out = []
    home = find(big, "home", "first")
    if home and home.db:
        share = home.api.rps / home.db.rps
        out.append(f"- Home page at {big:,}: {100 * share:.0f}% of the pgbench ceiling{spread(home)}"
                   " (target >= 35%):"
                   f" {mark(share >= 0.35)}; p99 {home.api.p99_ms:.2f} ms (target <= 10 ms):"
                   f" {mark(home.api.p99_ms <= 10)}. At the same {CONNECTIONS} connections the"
                   f" database alone (pgbench) had p99 {fmt(home.db.p99_ms)} ms, and the HTTP stack"
                   f" alone {fmt(home.http.p99_ms if home.http else None)} ms.")
    if big != small:
        # not search's rare term: at the small size its page is empty, so the two do not compare
        for row in (r for r in run.rows
                    if r.size == big and r.case.route != "create" and r.case.page != "rare"):
            base = find(small, row.case.route, row.case.page)
            if base and row.alone and base.alone:
                ratio = row.alone.p50_ms / base.alone.p50_ms
                loaded = row.api.p50_ms / base.api.p50_ms
                out.append(f"- {row.case.route} ({row.case.page}) page latency (p50, 1 connection)"
                           f" at {big:,} vs {small:,}: {row.alone.p50_ms:.2f} / {base.alone.p50_ms:.2f}"
                           f" ms = {ratio:.2f}x (target <= 1.5x): {mark(ratio <= 1.5)};"
                           f" at {CONNECTIONS} connections {loaded:.2f}x.")
        per_size = {size: max(r.worker_rss_mb for r in run.rows if r.size == size)
                    for size in sorted({r.size for r in run.rows})}
        grow = per_size[big] - per_size[small]
        out.append("- Peak memory per worker by size: "
                   + ", ".join(f"{s:,}: {mb:.0f} MB" for s, mb in per_size.items())
                   + f" (target: no growth with the table; {grow:+.0f} MB): {mark(grow <= 5)}.")
    create = find(big, "create", "-")
    if create and create.db:
        share = create.api.rps / create.db.rps
        out.append(f"- POST /api/activities at {big:,}: {100 * share:.0f}% of pgbench running the"
                   f" same INSERT{spread(create)} (target >= 30%): {mark(share >= 0.30)}.")
    return out


def expired_table(run: Run) -> list[str]:
    """The list routes on the mostly expired table beside the same routes on a live one (of the
    same size when it was measured, else the largest)."""
    if not run.expired_rows:
        return []
    size = run.expired_rows[0].size
    live_size = size if any(r.size == size for r in run.rows) else max(r.size for r in run.rows)
    live = {(r.case.route, r.case.page): r for r in run.rows if r.size == live_size}
    lines = ["## A mostly expired table", "",
             f"{size:,} activities, all expired but {EXPIRED_TABLE_LIVE} cruds spread over the 30 days and"
             " their replies (`bench/generate.sql`, `bench.live`), beside the live table of"
             f" {live_size:,}: wrk, {CONNECTIONS} connections.", "",
             "| request | items | live p50 ms | live p99 ms | mostly expired p50 ms |"
             " mostly expired p99 ms | p50 expired / live |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in run.expired_rows:
        base = live.get((row.case.route, row.case.page))
        ratio = row.api.p50_ms / base.api.p50_ms if base else None
        lines.append(f"| {row.case.route} ({row.case.page}) | {row.items} |"
                     f" {fmt(base.api.p50_ms if base else None)} | {fmt(base.api.p99_ms if base else None)} |"
                     f" {fmt(row.api.p50_ms)} | {fmt(row.api.p99_ms)} | {fmt(ratio, '.1f')} |")
    return [*lines, ""]


def write_results(run: Run, path: Path, sizes: list[int]) -> str:
    cpu = (psutil.cpu_count(logical=True), psutil.virtual_memory().total / 2**30)
    lines = [
        "# bin/bench results", "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu[0]} cores, {cpu[1]:.0f} GiB;"
        f" server: {describe_server()};"
        f" {CONNECTIONS} connections, {run.duration:g} s per measurement;{describe_scheduler()}"
        f" sizes: {', '.join(f'{s:,}' for s in sizes)} activities, 1,000 users.", "",
        *results_table(run), "",
        f"req/s, p50 and p99: wrk against the API, {CONNECTIONS} connections. p50 ms, 1 conn: the same",
        f"request from a single connection: the page's own latency, without the queue of {CONNECTIONS - 1}"
        " others",
        "in front of it (what the latency targets compare; at the smallest and the largest size",
        "measured in turns, both APIs up, the median of the turns). pgbench tps: `pgbench -M prepared`",
        "running the route's own SQL file with the same parameters and concurrency (the database",
        "alone), half the duration just before the API's measurement and half just after: the",
        "mean of the two. HTTP stack: the same server and settings answering a constant body of",
        "the same size, right after. items: activities in the page (at 1k a notifications page is",
        "not full yet).",
        "Deep page: the page that starts in the middle of the list, through its cursor.",
        f"conns/worker: how the API's workers shared wrk's {CONNECTIONS} connections during the measurement",
        "(what moves p99 most from run to run: docs/benchmark.md).", "",
        "## Targets", "", *targets(run), "",
        *expired_table(run),
        *([*run.plan_checks, ""] if run.plan_checks else []), *run.notes,
    ]
    text = "\n".join(lines).rstrip() + "\n"
    path.write_text(text)
    return text


def describe_server() -> str:
    """The server and the settings it runs with (lib/settings.py)."""
    settings = Settings.from_env()
    threads = f"{settings.web_threads} thread{'s' if settings.web_threads > 1 else ''}"
    return (f"granian (serve.py), {settings.web_concurrency} workers x {threads}; "
            + ", ".join(f"{key.upper()}={getattr(settings, key)}"
                        for key in ("db_pool_size", "db_pool_min_size", "db_plan_cache_mode")))


def describe_scheduler() -> str:
    """Linux's autogroup setting: with it on, the scheduler shares the cores between sessions
    (every PostgreSQL backend is one) before threads, which changes what the API gets of them
    (docs/decisions/0009-workers-in-sessions-of-their-own.md)."""
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return ""
    return f" kernel.sched_autogroup_enabled={enabled};"


def main(argv: list[str] | None = None) -> int:
    global CONNECTIONS  # the run's concurrency: set once here, read by every measurement
    parser = argparse.ArgumentParser(prog="bin/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=1_000_000,
                        help="the largest size (default 1,000,000); also measured: 1,000 and"
                             " 100,000 when smaller")
    parser.add_argument("--expired-size", type=int,
                        help="activities in the mostly expired table, all expired but"
                             f" {EXPIRED_TABLE_LIVE} cruds and their replies (default: --activities;"
                             " 0: no such table)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help=f"wrk's and pgbench's connections (default {CONNECTIONS})")
    parser.add_argument("--duration", type=float, default=4.0,
                        help="seconds per measurement (default 4)")
    parser.add_argument("--datadir", type=Path, default=BENCH / "data",
                        help="the bench's own PostgreSQL cluster (default bench/data); removed"
                             " at the end")
    parser.add_argument("--pooled", action="store_true",
                        help="the API through PgBouncer in transaction mode, 4 API connections per"
                             " server connection (writes bench/results-pooled.md, no plans)")
    parser.add_argument("--output", type=Path,
                        help="default bench/results.md, or bench/results-pooled.md with --pooled")
    parser.add_argument("--plans", type=Path, default=BENCH / "PLANS.md")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="another checkout of this repository (e.g. a git worktree of main): at the"
                             " largest size its API answers the home page in turns with this one's")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help=f"the routes to measure, comma-separated (default all: {','.join(ROUTES)});"
                             " the plans are of every list route")
    args = parser.parse_args(argv)
    routes = tuple(args.routes.split(","))
    if not set(routes) <= set(ROUTES):
        parser.error(f"--routes: each one of {', '.join(ROUTES)}")
    args.output = args.output or BENCH / ("results-pooled.md" if args.pooled else "results.md")
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    CONNECTIONS = args.connections
    if args.activities < 100:
        parser.error("--activities must be at least 100")
    args.expired_size = args.activities if args.expired_size is None else args.expired_size
    if args.expired_size and args.expired_size < 100:
        parser.error("--expired-size must be at least 100, or 0 for no mostly expired table")
    if not shutil.which(WRK):
        print(f"error: {WRK_HINT}", file=sys.stderr)
        return 2
    for key in sorted(PRODUCTION_SETTINGS & set(os.environ)):
        say(f"note: {key}={os.environ[key]} from the environment overrides the production setting")
    if args.pooled:
        if find_pgbouncer() is None:
            print(f"error: {PGBOUNCER_HINT}", file=sys.stderr)
            return 2
        # 4 API connections per server connection takes 4 of them: 2 threads per worker, each
        # with its connection, where production's defaults have 1 (unless the environment says).
        for key in ("WEB_THREADS", "DB_POOL_SIZE"):
            os.environ.setdefault(key, "2")
    bindir = find_bindir()
    if not (bindir / "pgbench").exists():
        print(f"error: no pgbench in {bindir}", file=sys.stderr)
        return 2
    sizes = sorted({s for s in (1_000, 100_000) if s < args.activities} | {args.activities})
    started = time.monotonic()
    if args.against and not (args.against / "backend-flask" / "serve.py").is_file():
        parser.error(f"--against: {args.against} is not a checkout of this repository")
    run = Run(args.duration, pooled=args.pooled, routes=routes, against=args.against)
    if args.pooled:
        clients, servers = pooler_connections()
        run.notes.append(
            f"Pooled: the API reached PostgreSQL through PgBouncer in transaction mode"
            f" (DB_POOLER=transaction), {clients} API connections on {servers} server connections."
            " Behind a transaction pooler nothing is prepared: every query is parsed and planned on"
            " every call. pgbench ran against PostgreSQL directly, as in the direct run.")
    pg = LocalPostgres(args.datadir, free_port())
    cognito = FakeCognito()
    say(f"PostgreSQL for the bench on 127.0.0.1:{pg.port} (data in {args.datadir})")
    try:
        if pg.initialized and pg.is_running():  # left by an interrupted run, maybe on another port
            pg.stop()
        pg.start()
        with tempfile.TemporaryDirectory(prefix="cruddur-bench-") as tmp:
            baseline = None
            for size in sizes:
                last = size == sizes[-1]
                kept = measure_size(run, pg, size, cognito, Path(tmp),
                                    explain=last and not args.pooled,
                                    keep_baseline=size == sizes[0] and not last,
                                    baseline=baseline if last else None, last=last)
                baseline = baseline or kept
                drop_database(pg, f"cruddur_bench_{size}")
            if baseline:
                drop_database(pg, baseline.dbname)
            if args.expired_size:
                measure_expired(run, pg, args.expired_size, cognito, Path(tmp))
    finally:
        cognito.close()
        pg.destroy()
    if run.expired_rows:
        run.notes.append(f"Tables: live, {', '.join(f'{s:,}' for s in sizes)} activities; mostly expired,"
                         f" {args.expired_size:,} activities of which {EXPIRED_TABLE_LIVE} cruds and"
                         " their replies live.")
    run.notes.append(f"Whole run: {time.monotonic() - started:.0f} s.")
    text = write_results(run, args.output, sizes)
    written = [args.output]
    if run.plans:
        args.plans.write_text(run.plans)
        written.append(args.plans)
    print()
    print(text)
    say("wrote " + " and ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
