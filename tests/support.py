"""What the tests share: real PostgreSQL servers, the real API server, the bin scripts as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend-flask"
VENV_BIN = Path(sys.executable).parent
sys.path[:0] = [str(ROOT / "tools"), str(BACKEND)]  # the scripts' helpers, the API's modules

from fake_cognito import FakeCognito  # noqa: E402
from localpg import LocalPostgres, free_port  # noqa: E402
from localpgbouncer import INSTALL_HINT as PGBOUNCER_INSTALL_HINT  # noqa: E402
from localpgbouncer import LocalPgBouncer, find_pgbouncer  # noqa: E402

# The tests' PostgreSQL password: every output a test captures is searched for it. Made by the
# run's first process; pytest-xdist's workers inherit it.
TEST_PASSWORD = os.environ.setdefault("CRUDDUR_TEST_PASSWORD", "pw-Test-" + os.urandom(6).hex())

__all__ = ["PGBOUNCER_INSTALL_HINT", "ROOT", "TEST_PASSWORD", "ApiServer", "FakeCognito", "LocalPgBouncer",
           "LocalPostgres", "find_pgbouncer", "free_port", "load_schema",
           "run_script", "script_env"]


# What the reliability tests measured, one line each; conftest prints them after the run.
FIGURES: list[str] = []


def record_figure(line: str) -> None:
    FIGURES.append(line)


def load_schema(url: str) -> None:
    """Build the tables from the same db/schema.sql the scripts load."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((ROOT / "db" / "schema.sql").read_text())


def create_database(server: LocalPostgres, name: str, template: str = "template1") -> str:
    """A fresh database on `server` (dropped first if it exists), a copy of `template` (empty by
    default); returns its URL."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.url(name)


def script_env(**overrides: str | None) -> dict[str, str]:
    """The environment a developer's shell would give a bin script: no stray PG* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CRUDDUR_TEST_"))}
    env.pop("CONNECTION_URL", None)
    env.pop("PROD_CONNECTION_URL", None)
    env["NO_COLOR"] = "1"
    return changed(env, **overrides)


def changed(env: dict[str, str], **overrides: str | None) -> dict[str, str]:
    """A copy of `env` with `overrides` applied; None removes a variable."""
    new = dict(env)
    for key, value in overrides.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new


def run_script(name: str, *args: str, env: dict[str, str], cwd: Path | str = "/",
               timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    """Run bin/NAME as a developer would, from another directory (/ by default)."""
    result = subprocess.run(
        [str(ROOT / "bin" / name), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=timeout, input=input,
    )
    output = result.stdout + result.stderr
    assert TEST_PASSWORD not in output, f"bin/{name} printed the password"
    assert "Traceback" not in output, f"bin/{name} printed a stack trace:\n{output}"
    return result


class ApiServer:
    """The API under granian, exactly as bin/dev serves it (backend-flask/serve.py), on a free port."""

    def __init__(self, connection_url: str, workers: int = 2, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CONNECTION_URL": connection_url,
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "ACCESS_LOG": "1",  # tests read it: no 5xx, how fast each 503 was served
            "FRONTEND_URL": "http://frontend.test:3000",
            "BACKEND_URL": self.base,
            **env,
        }
        self.log_path = None
        self.process: subprocess.Popen | None = None

    def start(self, log_path: Path, wait: bool = True) -> ApiServer:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(VENV_BIN / "python"), "serve.py"],
            cwd=BACKEND, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the API server exited:\n{self.log()}"
            try:
                requests.get(self.base + "/", timeout=1)  # any answer, even a 404, means it listens
                return
            except requests.RequestException:  # not listening yet, or a worker still booting
                time.sleep(0.1)
        raise TimeoutError(f"the API server did not listen:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self._log.close()
            return self.process.returncode
        return None

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request; its response is checked against openapi.yml when the route is in it."""
        response = requests.request(method, self.base + path, timeout=kwargs.pop("timeout", 10), **kwargs)
        assert_matches_spec(response)
        return response


class InProcessApi:
    """The API in this process, through Flask's test client: the calls ApiServer takes, without a
    server or a socket. Its responses are checked against openapi.yml the same way."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def get(self, path: str, **kwargs) -> ClientResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> ClientResponse:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, *, headers: dict | None = None, json=None, data=None,
                params: dict | None = None, **_ignored) -> ClientResponse:
        """One request, as requests would send it (json= sets the Content-Type, data= is the raw
        body); the server's own arguments (timeout=) mean nothing here."""
        from werkzeug.test import EnvironBuilder
        from werkzeug.wrappers import Request

        def environ():  # the app reads the body once: the spec check gets a copy of the request
            return EnvironBuilder(path, method=method, headers=headers, json=json, data=data,
                                  query_string=params).get_environ()

        response = self.client.open(environ())
        assert_werkzeug_response_matches_spec(Request(environ()), response)
        return ClientResponse(response)


class ClientResponse:
    """A test client's response, read the way the tests read a requests.Response."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.get_data()

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self):
        import json

        return json.loads(self.content)


@contextmanager
def api_server(connection_url: str, log_path: Path, **env: str):
    server = ApiServer(connection_url, **env).start(log_path)
    try:
        yield server
    finally:
        server.stop()


def insert_user(conn, handle: str, display_name: str | None = None,
                cognito_user_id: str | None = None) -> str:
    row = conn.execute(
        "INSERT INTO users (display_name, email, handle, cognito_user_id)"
        " VALUES (%s, %s, %s, %s) RETURNING uuid::text",
        (display_name or handle.title(), f"{handle}@example.com", handle, cognito_user_id),
    ).fetchone()
    return row[0]


def insert_activity(conn, user_uuid: str, message: str, *, age: str = "0 seconds",
                    expires_in: str = "7 days", reply_to: str | None = None) -> str:
    """An activity created `age` ago (an interval), expiring `expires_in` from now."""
    row = conn.execute(
        "INSERT INTO activities (user_uuid, message, reply_to_activity_uuid, created_at, expires_at)"
        " VALUES (%s, %s, %s, now() - %s::interval, now() + %s::interval) RETURNING uuid::text",
        (user_uuid, message, reply_to, age, expires_in),
    ).fetchone()
    return row[0]


@cache
def openapi_spec():
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(BACKEND / "openapi.yml"))


def assert_matches_spec(response: requests.Response) -> None:
    """The response is one openapi.yml allows for its request (routes outside it are skipped)."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    _validate(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response),
              f"{response.request.method} {response.request.url} -> {response.status_code}"
              f" {response.text[:300]!r}")


def assert_werkzeug_response_matches_spec(request, response) -> None:
    """The same check for a Flask test client's request and response."""
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

    _validate(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response),
              f"{request.method} {request.full_path} -> {response.status_code}"
              f" {response.get_data()[:300]!r}")


def _validate(request, response, what: str) -> None:
    from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

    try:
        openapi_spec().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        return
    except Exception as err:
        raise AssertionError(f"{what} breaks openapi.yml: {err!r:.400}"
                             f" {getattr(err, '__cause__', '')!r:.600}") from None
