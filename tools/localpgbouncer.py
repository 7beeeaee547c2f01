"""A PgBouncer in front of a LocalPostgres, for the tests and bin/bench --pooled.

Transaction pooling, the mode RDS Proxy and most hosted poolers use: a server
connection belongs to a client for one transaction only. Uses the machine's
`pgbouncer` (Debian's package). Like PostgreSQL it refuses to run as root, so
as root it runs as the same unprivileged user, its files under /var/tmp/cruddur-pg/.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from localpg import LocalPostgres, _is_root, _owner_ids, _run_as_kwargs, _shared_root, wait_for_port

INSTALL_HINT = "pgbouncer not found: apt-get install pgbouncer (Debian/Ubuntu) or brew install pgbouncer"


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)


class LocalPgBouncer:
    """PgBouncer on 127.0.0.1:`port`, pooling `dbname` of `upstream` in transaction mode."""

    def __init__(self, workdir: Path, port: int, upstream: LocalPostgres, dbname: str,
                 pool_size: int, max_client_conn: int = 1000, users: dict[str, str] | None = None,
                 statement_timeout_ms: int = 5000):
        self.binary = find_pgbouncer()
        if self.binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.workdir = Path(workdir).absolute()
        self.port = port
        self.upstream = upstream
        self.dbname = dbname
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.users = users or {"postgres": upstream.password or ""}
        self.statement_timeout_ms = statement_timeout_ms
        self.process: subprocess.Popen | None = None

    @property
    def confdir(self) -> Path:
        """Where the server user can read the config: the workdir, or a shared folder as root."""
        if not _is_root():
            return self.workdir
        tag = hashlib.sha256(str(self.workdir).encode()).hexdigest()[:12]
        return _shared_root() / f"pgbouncer-{tag}"

    def _write_config(self) -> Path:
        conf = self.confdir
        conf.mkdir(mode=0o700, parents=True, exist_ok=True)
        userlist = "".join(f'"{user}" "{password}"\n' for user, password in self.users.items())
        (conf / "userlist.txt").write_text(userlist)
        ini = conf / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            # Session settings cannot travel through a transaction pooler in the startup packet:
            # each server connection gets them when it is made.
            f"{self.dbname} = host=127.0.0.1 port={self.upstream.port} dbname={self.dbname}"
            f" connect_query='SET TimeZone = ''UTC''; SET statement_timeout = {self.statement_timeout_ms}'\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            f"max_client_conn = {self.max_client_conn}\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {conf / 'userlist.txt'}\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "server_reset_query =\n"  # transaction mode: nothing to reset between clients
            f"logfile = {conf / 'pgbouncer.log'}\n"
        )
        if _is_root():
            for path in (conf, conf / "userlist.txt", ini):
                os.chown(path, *_owner_ids())
        return ini

    def start(self) -> None:
        ini = self._write_config()
        self.process = subprocess.Popen([self.binary, str(ini)], cwd="/", stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, **_run_as_kwargs())
        try:
            wait_for_port(self.port, timeout=15)
        except TimeoutError:
            log = self.confdir / "pgbouncer.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(f"pgbouncer did not start:\n{tail}") from None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.confdir != self.workdir:
            shutil.rmtree(self.confdir, ignore_errors=True)

    def url(self, user: str = "postgres") -> str:
        password = self.users[user]
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{self.dbname}"

