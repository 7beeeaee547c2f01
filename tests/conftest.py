"""Fixtures: one real PostgreSQL per test run, a database of its own per pytest-xdist worker, the
API in-process (Flask's test client) and under its real server, a clean database per test.

The run's first process (pytest-xdist's controller, or pytest alone) starts the PostgreSQL server
and loads db/schema.sql once into a template database; each worker copies the template into a
database of its own (CREATE DATABASE ... TEMPLATE). The server's address reaches the workers in
the environment they inherit (CRUDDUR_TEST_PG).
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from support import (
    PGBOUNCER_INSTALL_HINT,
    TEST_PASSWORD,
    FakeCognito,
    InProcessApi,
    LocalPgBouncer,
    LocalPostgres,
    api_server,
    create_database,
    find_pgbouncer,
    free_port,
    load_schema,
)

SESSION_PG_ENV = "CRUDDUR_TEST_PG"
TEMPLATE_DB = "cruddur_template"
# Tests that start a process of their own that serves (the API, moto, PgBouncer, another
# PostgreSQL) or run a bin/ script are marked e2e: `bin/test --fast` leaves them out. A test is
# e2e when it uses one of these fixtures, lives in one of these modules, or says so itself.
E2E_FIXTURES = {"api", "pooled_api", "moto", "aws_env"}
E2E_MODULES = {"test_bench", "test_cognito_sync", "test_database_outage", "test_db_scripts", "test_dev",
               "test_faults", "test_gitpod", "test_lambda_deploy", "test_lambda_package",
               "test_migrations", "test_rds_scripts", "test_repo_migrations", "test_scale", "test_secrets"}
# Under pytest-xdist (bin/test: --dist loadfile) each test file runs on one worker, so its module
# fixtures start once; the tests of these files share no fixture of their own and go one by one
# to whichever worker is free, so a long file does not keep one worker busy after the rest end.
SPREAD_MODULES = {"test_bench", "test_migrations", "test_rds_scripts",
                  "test_repo_migrations"}
# The longest test files, longest first: they start first, so the workers end together.
LONGEST_FIRST = ["test_bench", "test_openapi_contract", "test_repo_migrations", "test_faults", "test_fuzz",
                 "test_lambda_deploy", "test_db_scripts", "test_cognito_sync", "test_lambda_package",
                 "test_dev", "test_migrations", "test_rds_scripts"]


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    """Never let a test reach real AWS: only a local endpoint and fake credentials."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and not _is_loopback(endpoint):
        pytest.exit(f"refusing to run: AWS_ENDPOINT_URL={endpoint} is not on 127.0.0.1", returncode=2)
    # awscli v1 ignores AWS_ENDPOINT_URL for some services (rds in us-east-1): any request that
    # is not for this machine goes to a closed local port instead of leaving it.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    os.environ.update(HTTP_PROXY=dead_proxy, HTTPS_PROXY=dead_proxy, http_proxy=dead_proxy,
                      https_proxy=dead_proxy, NO_PROXY="127.0.0.1,localhost",
                      no_proxy="127.0.0.1,localhost")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(key, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                      AWS_SHARED_CREDENTIALS_FILE="/dev/null")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """The run's PostgreSQL and its template database, before pytest-xdist starts its workers."""
    config = session.config
    if _is_worker(config) or config.option.collectonly:
        return
    import tempfile

    datadir = tempfile.mkdtemp(prefix="cruddur-test-pg-")
    server = LocalPostgres(os.path.join(datadir, "data"), free_port(), password=TEST_PASSWORD,
                           ephemeral=True)
    server.start()
    config._cruddur_pg = server
    template = create_database(server, TEMPLATE_DB)
    load_schema(template)
    with psycopg.connect(template, autocommit=True) as conn:
        # the API's and the purge's roles, with a password as an operator would set one (roles are
        # server-wide)
        for role in ("cruddur_app", "cruddur_purge"):
            conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(role), TEST_PASSWORD))
    os.environ[SESSION_PG_ENV] = json.dumps({"datadir": str(server.datadir), "port": server.port})


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    if _is_worker(session.config):  # the figures this worker measured go to the controller
        from support import FIGURES

        session.config.workeroutput["figures"] = FIGURES
    server = getattr(session.config, "_cruddur_pg", None)
    if server is not None:
        server.destroy()
        os.rmdir(server.datadir.parent)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (E2E_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or item.module.__name__ in E2E_MODULES):
            item.add_marker(pytest.mark.e2e)

    def rank(item) -> int:
        name = item.module.__name__
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests stay in their order


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without it (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, but the tests of SPREAD_MODULES one by one. (pytest-xdist's loadgroup would
    say it with marks, but under pytest 9 it no longer groups.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return nodeid if Path(file).stem in SPREAD_MODULES else file

    return FileScheduling(config, log)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without it (-p no:xdist)
def pytest_testnodedown(node, error):
    """A pytest-xdist worker ended: keep the figures it measured for the summary."""
    from support import FIGURES

    FIGURES.extend(getattr(node, "workeroutput", {}).get("figures", []))


def pytest_terminal_summary(terminalreporter):
    """The figures the reliability tests measured (requests during an outage, recovery time, ...)."""
    from support import FIGURES

    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pg():
    """The run's PostgreSQL server, with a password (so tests can prove it never leaks)."""
    started = json.loads(os.environ[SESSION_PG_ENV])
    return LocalPostgres(started["datadir"], started["port"], password=TEST_PASSWORD, ephemeral=True)


@pytest.fixture(scope="session")
def app_db_url(pg):
    """This worker's copy of the API's database, built from db/schema.sql (the template)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # "gw0", ... under pytest-xdist
    return create_database(pg, f"cruddur_{worker}", template=TEMPLATE_DB)


@pytest.fixture(scope="session")
def app_role_url(pg, app_db_url):
    """The API's database as cruddur_app, the role db/schema.sql makes, so the API under test
    has only the rights it has in production."""
    return pg.url(urlsplit(app_db_url).path.lstrip("/"), user="cruddur_app")


@pytest.fixture(scope="session")
def purge_role_url(pg, app_db_url):
    """This worker's database as cruddur_purge, the role the scheduled purge runs as."""
    return pg.url(urlsplit(app_db_url).path.lstrip("/"), user="cruddur_purge")


@pytest.fixture(scope="session")
def cognito():
    """A fake user pool: its JWKS on 127.0.0.1 and a way to sign tokens."""
    pool = FakeCognito()
    yield pool
    pool.close()


API_ENV = {"FRONTEND_URL": "http://frontend.test:3000", "COGNITO_JWKS_REFETCH_SECONDS": "0"}


@pytest.fixture(scope="session")
def client(app_role_url, cognito):
    """The API in this process (create_app() and Flask's test client) on this worker's database
    as cruddur_app, trusting the fake user pool: routes, services, SQL, errors, auth."""
    from app import create_app

    app = create_app({"CONNECTION_URL": app_role_url, "BACKEND_URL": "http://localhost",
                      "DB_POOL_SIZE": 4, **cognito.env(), **API_ENV})
    yield InProcessApi(app)
    from lib.db import db as pools

    pools.close()


@pytest.fixture(scope="session")
def api(pg, app_role_url, cognito, tmp_path_factory):
    """The API under its real server (serve.py, granian), on this worker's database as
    cruddur_app: what only a real exchange shows (the server, CORS, faults)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with api_server(app_role_url, log, **cognito.env(), **API_ENV) as server:
        yield server


@pytest.fixture(scope="session")
def pooled_api(pg, app_db_url, cognito, tmp_path_factory):
    """The API under its real server through PgBouncer in transaction mode (DB_POOLER=transaction):
    its 2 workers x 1 connection on 1 server connection, as RDS Proxy would multiplex them."""
    if find_pgbouncer() is None:
        pytest.skip(PGBOUNCER_INSTALL_HINT)
    log = tmp_path_factory.mktemp("api-pooled") / "api.log"
    database = urlsplit(app_db_url).path.lstrip("/")
    bouncer = LocalPgBouncer(log.parent / "pgbouncer", free_port(), pg, database, pool_size=1,
                             users={"cruddur_app": TEST_PASSWORD})
    bouncer.start()
    try:
        with api_server(bouncer.url("cruddur_app"), log, DB_POOLER="transaction", **cognito.env(),
                        **API_ENV) as server:
            yield server
    finally:
        bouncer.stop()


@pytest.fixture
def db(app_db_url):
    """A connection to this worker's API database, emptied before the test."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE public.activities, public.users, public.user_crud_expiries")
        yield conn


@pytest.fixture
def database(pg):
    """A fresh, empty database of its own (the migration tests); yields its URL."""
    name = "mig_" + os.urandom(4).hex()
    url = create_database(pg, name)
    yield url
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def folder(tmp_path):
    """An empty migrations folder (MIGRATIONS_DIR) for one test."""
    path = tmp_path / "migrations"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A local moto server on 127.0.0.1: the endpoint every AWS call in the tests goes to.

    Yields the environment (endpoint, fake credentials, region) to give the aws CLI,
    boto3 and the bin scripts; it points only at 127.0.0.1.
    """
    import subprocess
    import time

    import requests

    from support import VENV_BIN

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    # AWS's managed IAM policies (e.g. AWSLambdaBasicExecutionRole) exist only when asked for;
    # moto_server.py keeps the ones the tests need.
    process = subprocess.Popen([str(VENV_BIN / "python"), str(Path(__file__).with_name("moto_server.py")),
                                "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
                                    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(endpoint + "/moto-api/", timeout=1)
            break
        except requests.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": ""}
    yield env
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def aws_env(moto):
    """moto's environment after a reset: each test starts from an empty AWS account."""
    import requests

    requests.post(moto["AWS_ENDPOINT_URL"] + "/moto-api/reset", timeout=10)
    return moto
