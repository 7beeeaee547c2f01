"""Secrets and access: no script, log line, error body or process list shows a password or a full
connection string; credentials come from the environment only; the repository holds placeholders
only; CORS answers the configured frontend origin and nothing else.

Every output is searched for TEST_PASSWORD (the tests' real password) and for any
`scheme://user:password@` connection string.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from support import (
    ROOT,
    TEST_PASSWORD,
    ApiServer,
    free_port,
    record_figure,
    run_script,
    script_env,
)

FULL_URL = re.compile(r"postgres(?:ql)?://[^\s:/@\"'`]+:([^\s@]+)@")
# What a connection string's password may be in an example or a file: a placeholder, a shell or
# compose variable, a Python f-string field.
PLACEHOLDER = re.compile(r"CHANGE_ME|password|pass|\.\.\.|\*+|\$\{[^}]*\}|.*\{[A-Za-z_]+\}.*")
DB_SCRIPTS = ["db-connect", "db-create", "db-drop", "db-schema-load", "db-seed", "db-setup", "db-sessions",
              "db-migrate", "db-migrate-status", "db-rollback", "db-purge-expired"]
CHECKED: list[int] = []  # bytes of output searched, for the summary


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    if CHECKED:
        record_figure(f"secrets: {len(CHECKED)} outputs of scripts, the API and ps searched"
                      f" ({sum(CHECKED) // 1024} KiB): no password, no connection string")


def assert_no_secret(output: str, where: str) -> None:
    CHECKED.append(len(output))
    assert TEST_PASSWORD not in output, f"{where} printed the password"
    for match in FULL_URL.finditer(output):
        assert PLACEHOLDER.fullmatch(match[1]), f"{where} printed a connection string: {match[0]}"


def failing_urls(pg) -> dict[str, str]:
    """Connection URLs, each with the test password, that fail in a different way."""
    good = pg.url("cruddur")
    return {
        "unreachable server": f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:{free_port()}/cruddur",
        "wrong password": good.replace(TEST_PASSWORD, TEST_PASSWORD + "-wrong"),
        "malformed host": f"postgresql://postgres:{TEST_PASSWORD}@[127.0.0.1/cruddur",
        "bad percent escape": good.replace(TEST_PASSWORD, TEST_PASSWORD + "%zz"),
        "bad port": f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:99999/cruddur",
    }


@pytest.mark.parametrize("case", ["unreachable server", "wrong password", "malformed host",
                                  "bad percent escape", "bad port"])
def test_failing_db_scripts_print_no_secret(pg, case):
    """Every script, with a URL the server refuses or cannot be reached at; a few scripts for
    the URLs that fail before any connection (they share tools/dburl.py)."""
    url = failing_urls(pg)[case]
    every = case in ("unreachable server", "wrong password")
    for script in DB_SCRIPTS if every else ["db-connect", "db-sessions", "db-migrate", "db-setup"]:
        env_name, arg = ("PROD_CONNECTION_URL", "prod") if script in ("db-sessions", "db-seed") else \
            ("CONNECTION_URL", "local")
        args = [arg, "--", "-c", "SELECT 1"] if script == "db-connect" else [arg]
        result = run_script(script, *args, env=script_env(**{env_name: url}), timeout=30)
        assert result.returncode != 0, f"bin/{script} succeeded with {case}"
        assert_no_secret(result.stdout + result.stderr, f"bin/{script} ({case})")
        assert "error" in result.stderr.lower(), f"bin/{script} ({case}) said nothing:\n{result.stderr}"


def test_working_db_scripts_print_no_secret(pg):
    name = "secrets_" + os.urandom(3).hex()
    url = pg.url(name)
    env = script_env(CONNECTION_URL=url, PROD_CONNECTION_URL=url)
    try:
        for script, *args in [("db-setup",), ("db-sessions",), ("db-migrate-status",), ("db-migrate",),
                              ("db-seed", "prod"), ("db-connect", "--", "-c", "SELECT count(*) FROM users"),
                              ("db-rollback",), ("db-migrate",), ("db-purge-expired",), ("db-drop",)]:
            result = run_script(script, *args, env=env, timeout=60)
            assert result.returncode == 0, f"bin/{script}: {result.stdout}{result.stderr}"
            assert_no_secret(result.stdout + result.stderr, f"bin/{script}")
    finally:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cmdlines_under(*roots: int) -> dict[int, str]:
    """The command lines of `roots` and of all their descendants, by pid."""
    parents, lines = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                raw = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            pid = int(entry.name)
            parents[pid] = int(stat.rpartition(")")[2].split()[1])
            lines[pid] = raw.replace(b"\0", b" ").decode(errors="replace")
    tree, grew = set(roots), True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return {pid: lines[pid] for pid in tree if pid in lines}


@pytest.mark.e2e
def test_credentials_never_reach_a_command_line(app_db_url, app_role_url, tmp_path):
    """The scripts hand the password to psql in the environment, the API gets it in the environment:
    `ps` shows neither the password nor the URL while they run."""
    api = ApiServer(app_role_url, workers=1).start(tmp_path / "api.log")  # first: its start takes seconds
    try:
        process = subprocess.Popen([str(ROOT / "bin" / "db-connect"), "--", "-c", "SELECT pg_sleep(1.5)"],
                                   env=script_env(CONNECTION_URL=app_db_url), cwd="/",
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen_psql = False
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            for pid, cmdline in cmdlines_under(process.pid, api.process.pid).items():
                assert TEST_PASSWORD not in cmdline, f"pid {pid}: {cmdline}"
                assert "postgresql://" not in cmdline, f"pid {pid}: {cmdline}"
                seen_psql = seen_psql or "pg_sleep" in cmdline
            time.sleep(0.1)
        assert seen_psql, "psql was not seen running"
        assert api.get("/api/health-check").status_code == 200
    finally:
        api.stop()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert_no_secret(out + err + api.log(), "bin/db-connect and the API")


@pytest.mark.parametrize("case", ["unreachable server", "wrong password"])
def test_api_without_its_database_shows_no_secret(pg, tmp_path, case):
    """The API started on a database it cannot use: 503 JSON bodies and a log without the password."""
    url = failing_urls(pg)[case]
    api = ApiServer(url, workers=1, DB_POOL_TIMEOUT="0.3").start(tmp_path / "api.log")
    try:
        bodies = []
        for path in ("/api/health-check", "/api/activities/@x"):
            response = api.get(path)
            assert response.status_code == 503
            bodies.append(response.text + str(response.headers))
    finally:
        api.stop()
    log = api.log()
    assert "database not reachable at start" in log
    assert_no_secret("\n".join(bodies) + log, f"the API ({case})")


@pytest.mark.parametrize("case", ["malformed host", "bad percent escape"])
def test_api_with_a_malformed_url_fails_to_start_without_showing_it(pg, tmp_path, case):
    api = ApiServer(failing_urls(pg)[case], workers=1).start(tmp_path / "api.log", wait=False)
    try:
        assert api.process.wait(timeout=30) != 0
    finally:
        api.stop()
    log = api.log()
    assert "CONNECTION_URL is not a valid connection string" in log
    assert_no_secret(log, f"the API ({case})")


def test_the_repository_holds_placeholders_only():
    """Tracked files: every connection string's password is a placeholder, .env is not tracked,
    .env.example's secrets are CHANGE_ME or unset, the SQL sets no password."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    found = []
    for name in filter(None, files):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for match in FULL_URL.finditer(text):
            found.append(match[0])
            assert PLACEHOLDER.fullmatch(match[1]), f"{name}: a password in a connection string: {match[0]}"
    assert found, "the scan found no connection string at all"
    assert ".env" not in files
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        key, _, value = line.partition("=")
        if re.search(r"PASSWORD|SECRET|TOKEN", key) and not key.startswith("#"):
            assert value in ("", "CHANGE_ME"), f".env.example: {line}"
        if "_URL=postgres" in line:
            assert ":CHANGE_ME@" in line, f".env.example: {line}"
    for sql in [ROOT / "db" / "schema.sql", *sorted((ROOT / "db" / "migrations").glob("*.sql"))]:
        assert not re.search(r"\bPASSWORD\s+'", sql.read_text(), re.I), f"{sql.name} sets a password"


# -- CORS ------------------------------------------------------------------------------------------

FRONTEND = "http://frontend.test:3000"


@pytest.mark.parametrize("origin", ["http://evil.test", "null", FRONTEND + ".evil.test",
                                    "http://frontend.test", "https://frontend.test:3000", "http://frontend.test:3001"])
def test_cors_preflight_and_errors_answer_only_the_frontend(client, db, origin):
    preflight = client.request("OPTIONS", "/api/activities", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    error = client.post("/api/activities", json={}, headers={"Origin": origin})
    assert error.status_code == 401 and "Access-Control-Allow-Origin" not in error.headers

    allowed = client.post("/api/activities", json={}, headers={"Origin": FRONTEND})
    assert allowed.headers["Access-Control-Allow-Origin"] == FRONTEND  # errors readable by the frontend
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers  # tokens, not cookies


def test_cors_with_no_frontend_configured_allows_no_origin(app_role_url, tmp_path):
    api = ApiServer(app_role_url, workers=1, FRONTEND_URL="", BACKEND_URL="").start(tmp_path / "api.log")
    try:
        for origin in (FRONTEND, "http://evil.test"):
            response = api.get("/api/activities/home", headers={"Origin": origin})
            assert response.status_code == 200
            assert "Access-Control-Allow-Origin" not in response.headers, response.headers
    finally:
        api.stop()
