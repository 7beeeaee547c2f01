"""What the tests share: real PostgreSQL servers, a real gunicorn, the bin scripts as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend-flask"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tools"))

from localpg import LocalPostgres  # noqa: E402

# The tests' PostgreSQL password: every output a test captures is searched for it.
TEST_PASSWORD = "pw-Test-" + os.urandom(6).hex()

__all__ = ["ROOT", "TEST_PASSWORD", "ApiServer", "LocalPostgres", "free_port", "load_schema",
           "run_script", "script_env"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_schema(url: str) -> None:
    """Build the tables from the same db/schema.sql the scripts load."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((ROOT / "db" / "schema.sql").read_text())


def create_database(server: LocalPostgres, name: str) -> str:
    """A fresh, empty database on `server` (dropped first if it exists); returns its URL."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


def script_env(**overrides: str | None) -> dict[str, str]:
    """The environment a developer's shell would give a bin script: no stray PG* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.pop("CONNECTION_URL", None)
    env.pop("PROD_CONNECTION_URL", None)
    env["NO_COLOR"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


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
    """The API under gunicorn, exactly as bin/dev serves it, on a free port."""

    def __init__(self, connection_url: str, workers: int = 2, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CONNECTION_URL": connection_url,
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
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
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=BACKEND, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log()}"
            try:
                requests.get(self.base + "/", timeout=1)  # any answer, even a 404, means it listens
                return
            except requests.RequestException:  # not listening yet, or a worker still booting
                time.sleep(0.1)
        raise TimeoutError(f"gunicorn did not listen:\n{self.log()}")

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
        return requests.get(self.base + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, timeout=kwargs.pop("timeout", 10), **kwargs)


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
