"""Fixtures: a real PostgreSQL per test session, the API under its real server, a clean database per test."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

import psycopg
import pytest

from support import (
    PGBOUNCER_INSTALL_HINT,
    TEST_PASSWORD,
    FakeCognito,
    LocalPgBouncer,
    LocalPostgres,
    api_server,
    create_database,
    find_pgbouncer,
    free_port,
    load_schema,
)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def pytest_terminal_summary(terminalreporter):
    """The figures the reliability tests measured (requests during an outage, recovery time, ...)."""
    from support import FIGURES

    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    """The session's PostgreSQL server, with a password (so tests can prove it never leaks)."""
    server = LocalPostgres(tmp_path_factory.mktemp("pg") / "data", free_port(),
                           password=TEST_PASSWORD, ephemeral=True)
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def app_db_url(pg):
    """The API's database `cruddur`, built from db/schema.sql."""
    url = create_database(pg, "cruddur")
    load_schema(url)
    return url


@pytest.fixture(scope="session")
def app_role_url(pg, app_db_url):
    """The API's database as cruddur_app, the role db/schema.sql makes (a password set here, as an
    operator would), so the API under test has only the rights it has in production."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("ALTER ROLE cruddur_app PASSWORD {}").format(TEST_PASSWORD))
    return pg.url("cruddur", user="cruddur_app")


@pytest.fixture(scope="session")
def cognito():
    """A fake user pool: its JWKS on 127.0.0.1 and a way to sign tokens."""
    pool = FakeCognito()
    yield pool
    pool.close()


@pytest.fixture(scope="session", params=["direct", "pooled"])
def api(request, pg, app_role_url, cognito, tmp_path_factory):
    """The API (serve.py) on the session database as cruddur_app, trusting the fake user pool:
    every test that uses it runs twice, straight on PostgreSQL and through PgBouncer in
    transaction mode (the API's 2 workers x 1 connection on 1 server connection, as RDS Proxy
    would multiplex them)."""
    log = tmp_path_factory.mktemp(f"api-{request.param}") / "api.log"
    env = {**cognito.env(), "COGNITO_JWKS_REFETCH_SECONDS": "0"}
    if request.param == "direct":
        with api_server(app_role_url, log, **env) as server:
            yield server
        return
    if find_pgbouncer() is None:
        pytest.skip(PGBOUNCER_INSTALL_HINT)
    bouncer = LocalPgBouncer(log.parent / "pgbouncer", free_port(), pg, "cruddur", pool_size=1,
                             users={"cruddur_app": TEST_PASSWORD})
    bouncer.start()
    try:
        with api_server(bouncer.url("cruddur_app"), log, DB_POOLER="transaction", **env) as server:
            yield server
    finally:
        bouncer.stop()


@pytest.fixture
def db(app_db_url):
    """A connection to the API's database, emptied before the test."""
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE public.activities, public.users, public.user_crud_expiries")
        yield conn


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
    # AWS's managed IAM policies (e.g. AWSLambdaBasicExecutionRole) exist only when asked for.
    process = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
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
