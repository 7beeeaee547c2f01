"""bin/dev end to end: local PostgreSQL, schema and seed on first start, the API, the purge of
expired activities, Ctrl-C stops all."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import psycopg
import requests

from support import ROOT, LocalPostgres, free_port, script_env


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_dev(tmp_path, pg_port, api_port, log_name, **env_overrides):
    env = script_env(LOCAL_PG_PORT=str(pg_port), API_PORT=str(api_port),
                     LOCAL_PG_DATADIR=str(tmp_path / "pgdata"), CONNECTION_URL=None, **env_overrides)
    log = open(tmp_path / log_name, "w")  # noqa: SIM115 - closed by the caller
    # Ctrl-C must reach it even when this run was started with SIGINT ignored (a background job
    # of a script, some CI runners): a shell cannot trap a signal ignored when it starts.
    process = subprocess.Popen([str(ROOT / "bin" / "dev")], cwd=tmp_path, env=env,
                               stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return process, log


def wait_for_feed(api_port: int, process, timeout: float = 90) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "bin/dev exited early"
        try:
            response = requests.get(f"http://127.0.0.1:{api_port}/api/activities/home", timeout=2)
            if response.status_code == 200:
                return response.json()
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError("the API did not answer")


def stop_with_ctrl_c(process, log) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        log.close()


def assert_all_end(started: list[psutil.Process]) -> None:
    """Every process bin/dev started ends with it."""
    _, alive = psutil.wait_procs(started, timeout=20)
    assert not alive, f"still running after bin/dev: {[p.cmdline() for p in alive]}"


def assert_purged_by_the_loop(pg_port: int) -> None:
    """An activity expired two days ago leaves within a few of bin/dev's purges (one a second)."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/cruddur", autocommit=True) as conn:
        conn.execute("INSERT INTO activities (user_uuid, message, expires_at)"
                     " SELECT uuid, 'long expired', now() - interval '2 days' FROM users LIMIT 1")
        deadline = time.monotonic() + 30
        while conn.execute("SELECT 1 FROM activities WHERE message = 'long expired'").fetchone():
            assert time.monotonic() < deadline, "bin/dev's purge loop did not remove the expired activity"
            time.sleep(0.2)


def started_by(process) -> list[psutil.Process]:
    """bin/dev's processes: the API, and the purge loop (a bash waiting between its runs)."""
    children = psutil.Process(process.pid).children(recursive=True)
    assert any(child.name() == "bash" for child in children), "no purge loop"
    return children


def test_dev_starts_everything_and_ctrl_c_stops_it(tmp_path):
    pg_port, api_port = free_port(), free_port()
    try:
        run_dev_twice(tmp_path, pg_port, api_port)
    finally:
        LocalPostgres(tmp_path / "pgdata", pg_port).destroy()  # as root the data lives in /var/tmp


def run_dev_twice(tmp_path, pg_port, api_port):
    process, log = start_dev(tmp_path, pg_port, api_port, "dev1.log", PURGE_INTERVAL_SECONDS="1")
    try:
        feed = wait_for_feed(api_port, process)
        assert [item["message"] for item in feed] == ["This was imported as seed data!"]
        assert_purged_by_the_loop(pg_port)
        started = started_by(process)
    finally:
        stop_with_ctrl_c(process, log)
    assert_all_end(started)
    output = (tmp_path / "dev1.log").read_text()
    assert "removed 1 expired activities (1 cruds, 0 replies)" in output
    assert "== starting the local PostgreSQL" in output
    assert "db-setup local: done" in output
    assert not port_open(api_port), "the API still listens"
    assert not port_open(pg_port), "PostgreSQL still listens"
    assert (tmp_path / "pgdata").exists()

    # A second start keeps the data: no setup again.
    process, log = start_dev(tmp_path, pg_port, api_port, "dev2.log")
    try:
        assert len(wait_for_feed(api_port, process)) == 1
    finally:
        stop_with_ctrl_c(process, log)
    assert "db-setup" not in (tmp_path / "dev2.log").read_text()
    assert not port_open(pg_port)


def test_dev_rejects_unknown_arguments():
    result = subprocess.run([str(ROOT / "bin" / "dev"), "--prod-like"], env=script_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "unknown argument '--prod-like'" in result.stderr


def wait_closed(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port):
        assert time.monotonic() < deadline, f"port {port} still open"
        time.sleep(0.1)


def test_a_killed_dev_leaves_its_postgresql_to_the_next_one_and_no_api(tmp_path):
    """SIGKILL (a closed terminal): the API stops with bin/dev, PostgreSQL stays; the next bin/dev in
    that checkout takes it back, one in another checkout is told whose server holds the port."""
    pg_port, api_port = free_port(), free_port()
    other = tmp_path / "other"
    other.mkdir()
    try:
        process, log = start_dev(tmp_path, pg_port, api_port, "killed.log")
        try:
            wait_for_feed(api_port, process)
            started = started_by(process)
        finally:
            process.kill()
            process.wait(timeout=10)
            log.close()
        assert_all_end(started)  # the purge loop too, whose stdin closed with bin/dev
        wait_closed(api_port)
        assert port_open(pg_port)

        clash = subprocess.run([str(ROOT / "bin" / "dev")], cwd=other, capture_output=True, text=True,
                               timeout=120, env=script_env(
                                   LOCAL_PG_PORT=str(pg_port), API_PORT=str(free_port()),
                                   LOCAL_PG_DATADIR=str(other / "pgdata"), CONNECTION_URL=None))
        assert clash.returncode != 0
        assert f"port {pg_port} is taken by the PostgreSQL of data directory {tmp_path / 'pgdata'}" \
            in clash.stderr, clash.stderr
        assert "stop --datadir" in clash.stderr

        process, log = start_dev(tmp_path, pg_port, api_port, "again.log")
        try:
            assert len(wait_for_feed(api_port, process)) == 1
        finally:
            stop_with_ctrl_c(process, log)
        again = (tmp_path / "again.log").read_text()
        assert "reused the PostgreSQL left running" in again and "db-setup" not in again
        assert not port_open(pg_port) and not port_open(api_port)
    finally:
        LocalPostgres(tmp_path / "pgdata", pg_port).destroy()
        LocalPostgres(other / "pgdata", pg_port).destroy()


def test_requirements_already_in_the_venv_are_not_installed_again(tmp_path):
    """bin/dev and bin/test check .venv against the pinned file of their layer (a stamp of its
    hash) before they install: run again with nothing changed, they install nothing; a pinned file
    that changed since counts as not installed."""
    def bash(venv: Path, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f'source "{ROOT}/bin/lib/common.sh"; VENV="{venv}"; {command}'],
                              env=script_env(), capture_output=True, text=True, timeout=60)

    for layer in ("test", "dev"):  # this run's .venv holds the test layer, which includes dev's
        result = bash(ROOT / ".venv", f"ensure_venv {layer}")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result

    stamp = (ROOT / ".venv" / ".installed-test").read_text()
    (tmp_path / ".installed-test").write_text(stamp)
    assert bash(tmp_path, "installed test").returncode == 0
    (tmp_path / ".installed-test").write_text("0" * 64 + stamp[64:])  # the file has changed since
    assert bash(tmp_path, "installed test").returncode != 0
