"""Schema migrations: the engine behind bin/db-migration-new, db-migrate, db-rollback,
db-migrate-status and db-schema-load.

A migration is a pair of files in db/migrations/ (MIGRATIONS_DIR overrides the folder, for
tests and tools):

    <version>_<name>.up.sql     the change
    <version>_<name>.down.sql   its undo

<version> is the UTC time the migration was created, YYYYMMDDHHMMSS: always 14 digits, so
name order is time order. <name> is lowercase letters, digits and _.

Each migration runs in its own psql session and transaction: the up file (through \\i, so a
failure reports its file and line), then its row in public.schema_migrations (version, name,
checksum, applied_at), then COMMIT. A failure leaves neither. The checksum is the SHA-256 of
the up file: an applied migration whose up file changed stops every later run until the file
is restored. A rollback runs the down file and deletes the row, in one transaction too.

A file with the line `-- migrate: no-transaction` runs outside a transaction, statement by
statement (CREATE INDEX CONCURRENTLY cannot run in one), and its row is written after it: such a
file must be safe to run again after a failure (DROP INDEX CONCURRENTLY IF EXISTS first).

Every migration waits at most MIGRATION_LOCK_TIMEOUT (lock_timeout) for each lock it takes: one
that waits for a lock on a busy table would queue every query of that table behind it. When it
gives up (SQLSTATE 55P03) it is rolled back and run again after MIGRATION_RETRY_PAUSE seconds, up
to MIGRATION_LOCK_RETRIES times.

One db-migrate or db-rollback at a time works on a database: each holds a session-level
advisory lock, in a psql session of its own, from before it reads schema_migrations until it
is done. A second run waits for the lock, then finds nothing left to do.

db/schema.sql is the schema with every migration up to its `-- schema version:` line applied;
load-schema loads it and records those migrations in the same transaction, so a database
built by bin/db-setup is one bin/db-migrate finds up to date.

Standard library and psql only, like the other bin/db-* helpers: the calling script has pointed
libpq's PG* variables at the database and names the psql to run in $PSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "db" / "migrations"
SCHEMA_FILE = ROOT / "db" / "schema.sql"

VERSION_FORMAT = "%Y%m%d%H%M%S"
FILE_RE = re.compile(r"(?P<version>[0-9]{14})_(?P<name>[a-z0-9_]+)\.(?P<part>up|down)\.sql")
NAME_RE = re.compile(r"[a-z0-9_]+")
MAX_NAME = 80
SCHEMA_VERSION_RE = re.compile(r"^-- schema version: *(\S*)", re.MULTILINE)
# A statement that starts or ends a transaction: the tool owns the transaction of a migration.
TRANSACTION_RE = re.compile(
    r"^[ \t]*(?:BEGIN|START[ \t]+TRANSACTION|COMMIT|ABORT|END[ \t]+(?:WORK|TRANSACTION)"
    r"|ROLLBACK(?![ \t]+(?:TO|PREPARED)\b))\b[^;\n]*;",
    re.IGNORECASE | re.MULTILINE,
)
COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
# Comments and dollar-quoted bodies (a procedure's COMMIT belongs to the procedure), in one pass.
NOT_STATEMENTS_RE = re.compile(r"--[^\n]*|/\*.*?\*/|\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$",
                               re.DOTALL)
NO_TRANSACTION_RE = re.compile(r"^-- migrate: no-transaction[ \t]*$", re.MULTILINE)
# psql's VERBOSITY verbose puts the SQLSTATE after the severity and adds a LOCATION line; the
# runner reads the SQLSTATE, then shows the messages as psql's default verbosity words them.
SQLSTATE_RE = re.compile(r"^(.*?\b(?:ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|LOG|DEBUG):  )([0-9A-Z]{5}): ",
                         re.MULTILINE)
LOCATION_RE = re.compile(r"^LOCATION:  .*\n", re.MULTILINE)
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired (or NOWAIT)
LOCK_TIMEOUT_RE = re.compile(r"[0-9]+(ms|s|min)?")

DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_LOCK_RETRIES = 4
DEFAULT_RETRY_PAUSE = 5.0

# pg_advisory_lock key of the migration lock (per database): "cruddur migrations" in a bigint.
LOCK_KEY = 0x6372756464757201

TABLE_DDL = """\
CREATE TABLE IF NOT EXISTS public.schema_migrations (
  version    text        PRIMARY KEY,  -- the migration's UTC version, YYYYMMDDHHMMSS
  name       text        NOT NULL,
  checksum   text        NOT NULL,     -- SHA-256 (hex) of the up file that was applied
  applied_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT schema_migrations_version_format CHECK (version ~ '^[0-9]{14}$')
);
"""

SESSION_SETUP = """\
\\set VERBOSITY verbose
SET lock_timeout = :'lock_timeout';
"""

RECORD_APPLIED = """\
INSERT INTO public.schema_migrations (version, name, checksum)
VALUES (:'version', :'name', :'checksum');
"""

RECORD_ROLLED_BACK = "DELETE FROM public.schema_migrations WHERE version = :'version';\n"


def migration_script(path: Path, record: str) -> str:
    """The psql script that runs one migration file and records it: in one transaction, unless
    the file says it cannot run in one."""
    if NO_TRANSACTION_RE.search(path.read_text(errors="replace")):
        return f"{SESSION_SETUP}\\i :path\n{record}"
    return f"{SESSION_SETUP}BEGIN;\n\\i :path\n{record}COMMIT;\n"


UP_TEMPLATE = """\
-- {path}
-- {name}: <what it changes, and why>
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.
-- Make the same change in db/schema.sql and set its "-- schema version:" line to {version}.
-- A busy table: take no long lock (README, "Schema changes: migrations").

"""

DOWN_TEMPLATE = """\
-- {path}
-- Undo {name} exactly (bin/db-rollback, in one transaction). If it cannot be undone, say so:
-- DO $$ BEGIN RAISE EXCEPTION '{name} cannot be rolled back'; END $$;

"""


class Failure(Exception):
    """An error for the user: printed as `error: ...`, exit 1, no traceback."""


def shown(path: Path) -> str:
    """`path` relative to the project when it is inside it (what psql prints too)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def say(text: str = "") -> None:
    print(text, flush=True)


def has_sql(path: Path) -> bool:
    return bool(COMMENT_RE.sub("", path.read_text(errors="replace")).strip())


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    up: Path
    down: Path

    @property
    def id(self) -> str:
        return f"{self.version}_{self.name}"

    def checksum(self) -> str:
        return hashlib.sha256(self.up.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Applied:
    version: str
    name: str
    checksum: str
    applied_at: str

    @property
    def id(self) -> str:
        return f"{self.version}_{self.name}"


def load_migrations(directory: Path) -> list[Migration]:
    """The migrations in `directory`, oldest first; every file must be half of a pair."""
    if not directory.is_dir():
        raise Failure(f"{shown(directory)} is not a folder (MIGRATIONS_DIR?)")
    pairs: dict[tuple[str, str], dict[str, Path]] = {}
    problems = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue  # .gitkeep, editor files
        match = FILE_RE.fullmatch(path.name)
        if not match or not path.is_file():
            problems.append(f"{shown(path)} is not a migration file: migrations are "
                            "<14-digit UTC version>_<name>.up.sql and .down.sql (bin/db-migration-new)")
            continue
        pairs.setdefault((match["version"], match["name"]), {})[match["part"]] = path
    versions: dict[str, str] = {}
    migrations = []
    for (version, name), parts in sorted(pairs.items()):
        for part in ("up", "down"):
            if part not in parts:
                other = next(iter(parts.values()))
                problems.append(f"{shown(other)} has no {part} file ({version}_{name}.{part}.sql)")
        if version in versions:
            problems.append(f"two migrations have version {version}: {versions[version]} and "
                            f"{version}_{name} (rename one with a new version)")
        versions[version] = f"{version}_{name}"
        if len(parts) == 2:
            migrations.append(Migration(version, name, parts["up"], parts["down"]))
    if problems:
        raise Failure("\n".join(problems))
    return migrations


@dataclass(frozen=True)
class Outcome:
    """How a psql script ended: ok, or the SQLSTATE of the error that stopped it ('' unknown)."""

    ok: bool
    sqlstate: str = ""


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration waits for each lock, and how often it is tried again."""

    timeout: str = DEFAULT_LOCK_TIMEOUT
    retries: int = DEFAULT_LOCK_RETRIES
    pause: float = DEFAULT_RETRY_PAUSE

    @classmethod
    def from_env(cls) -> LockPolicy:
        timeout = os.environ.get("MIGRATION_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT
        if not LOCK_TIMEOUT_RE.fullmatch(timeout):
            raise Failure(f"MIGRATION_LOCK_TIMEOUT={timeout} is not a duration: e.g. 2s, 500ms")
        try:
            retries = int(os.environ.get("MIGRATION_LOCK_RETRIES") or DEFAULT_LOCK_RETRIES)
            pause = float(os.environ.get("MIGRATION_RETRY_PAUSE") or DEFAULT_RETRY_PAUSE)
        except ValueError:
            retries = pause = -1
        if retries < 0 or not 0 <= pause < float("inf"):
            raise Failure("MIGRATION_LOCK_RETRIES must be a whole number and MIGRATION_RETRY_PAUSE "
                          "a number of seconds, neither negative")
        return cls(timeout, retries, pause)


class Database:
    """psql on the database the calling script chose (libpq's PG* variables)."""

    def __init__(self, app: str):
        self.psql = os.environ.get("PSQL") or "psql"
        if not shutil.which(self.psql):
            raise Failure(f"psql not found ({self.psql}): install the PostgreSQL client")
        self.display = os.environ.get("CRUDDUR_DB_DISPLAY") or os.environ.get("PGDATABASE", "the database")
        self.env_name = os.environ.get("DB_ENV", "local")
        self.env = dict(os.environ)
        self.env.setdefault("PGAPPNAME", app)

    def command(self, *args: str, **variables: str) -> list[str]:
        command = [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args]
        for key, value in variables.items():
            command += ["-v", f"{key}={value}"]
        return command

    def query(self, sql: str, **variables: str) -> list[list[str]]:
        """Rows of `sql` (from stdin, so psql variables work), fields split on tabs."""
        result = subprocess.run(self.command("-A", "-t", "-F", "\t", **variables), input=sql,
                                capture_output=True, text=True, env=self.env, cwd=ROOT)
        if result.returncode != 0:
            raise Failure(f"psql failed on {self.display}:\n{result.stderr.strip()}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def run(self, script: str, **variables: str) -> Outcome:
        """Run `script`; query results are dropped, notices and errors go to stderr."""
        result = subprocess.run(self.command("-o", os.devnull, **variables), input=script,
                                text=True, stderr=subprocess.PIPE, env=self.env, cwd=ROOT)
        sqlstates = [match[2] for match in SQLSTATE_RE.finditer(result.stderr) if "ERROR:" in match[1]]
        sys.stderr.write(LOCATION_RE.sub("", SQLSTATE_RE.sub(r"\1", result.stderr)))
        sys.stderr.flush()
        return Outcome(result.returncode == 0, sqlstates[-1] if sqlstates else "")

    def state(self) -> tuple[bool, int]:
        """Does schema_migrations exist; how many other tables does the public schema hold?"""
        row = self.query("SELECT to_regclass('public.schema_migrations') IS NOT NULL,"
                         " (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                         " AND tablename <> 'schema_migrations')")[0]
        return row[0] == "t", int(row[1])

    def create_table(self) -> None:
        self.query("SET client_min_messages = warning;\n" + TABLE_DDL)

    def applied(self) -> list[Applied]:
        """The applied migrations, in the order they were applied (schema_migrations exists)."""
        rows = self.query(
            "SELECT version, name, checksum,"
            " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"')"
            " FROM public.schema_migrations ORDER BY applied_at, version"
        )
        return [Applied(*row) for row in rows]


class MigrationLock:
    """The migration lock: a session-level advisory lock held by a psql session of its own.

    Closing that session (at the end, or when this process dies) releases it.
    """

    def __init__(self, db: Database):
        self.db = db
        self.process: subprocess.Popen | None = None

    def _ask(self, sql: str, trouble: str = "lost the session that holds the migration lock") -> str:
        assert self.process and self.process.stdin and self.process.stdout
        with contextlib.suppress(BrokenPipeError):  # then readline() finds the session gone
            self.process.stdin.write(sql + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            error = self.process.stderr.read().strip() if self.process.stderr else ""
            raise Failure(f"{trouble} on {self.db.display}"
                          + (f":\n{error}" if error else ""))
        return line.strip()

    def __enter__(self) -> MigrationLock:
        self.process = subprocess.Popen(self.db.command("-A", "-t"), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=self.db.env, cwd=ROOT)
        if self._ask(f"SELECT pg_try_advisory_lock({LOCK_KEY});",
                     "could not open a session to take the migration lock") != "t":
            say("waiting: another db-migrate or db-rollback holds the migration lock (bin/db-sessions)")
            self._ask(f"SELECT 'locked' FROM pg_advisory_lock({LOCK_KEY});")  # noqa: S608 - a constant
        return self

    def check(self) -> None:
        """Fail unless the lock session is still there."""
        self._ask("SELECT 1;")

    def __exit__(self, *exc) -> None:
        assert self.process and self.process.stdin
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check_applied(migrations: list[Migration], applied: list[Applied]) -> list[Applied]:
    """Stop on an applied migration whose file changed; return the applied ones with no file."""
    files = {m.version: m for m in migrations}
    problems = []
    unknown = []
    for row in applied:
        migration = files.get(row.version)
        if migration is None:
            unknown.append(row)
        elif migration.name != row.name:
            problems.append(f"{row.id} was applied, but its file is now {shown(migration.up)}: "
                            "restore the old name")
        elif migration.checksum() != row.checksum:
            problems.append(f"{shown(migration.up)} changed after it was applied (checksum "
                            f"{row.checksum[:12]}... recorded, {migration.checksum()[:12]}... now): "
                            "restore it (git checkout) and make the change in a new migration")
    if problems:
        raise Failure("\n".join(problems))
    return unknown


def check_runnable(migrations: list[Migration], part: str) -> None:
    problems = []
    for migration in migrations:
        path = migration.up if part == "up" else migration.down
        text = path.read_text(errors="replace")
        if not has_sql(path):
            problems.append(
                f"{shown(path)} has no SQL yet: write the change (or delete the migration's two files)"
                if part == "up" else f"{shown(path)} has no SQL: {migration.id} cannot be rolled back")
        elif match := TRANSACTION_RE.search(NOT_STATEMENTS_RE.sub(lambda m: " " * len(m[0]), text)):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{shown(path)}:{line}: '{match[0].strip()}': a migration runs in the "
                            "transaction bin/db-migrate opens; remove its BEGIN/COMMIT/ROLLBACK")
    if problems:
        raise Failure("\n".join(problems))


def warn_unknown(unknown: list[Applied], directory: Path) -> None:
    for row in unknown:
        print(f"warning: {row.id} is applied but has no files in {shown(directory)} "
              "(applied from another branch or checkout?)", file=sys.stderr)


def check_baseline(db: Database, migrations: list[Migration], any_applied: bool, other_tables: int,
                   baseline: bool) -> None:
    """A database built before migrations needs --baseline, and --baseline needs one."""
    legacy = not any_applied and other_tables > 0
    if legacy and not baseline:
        raise Failure(
            f"{db.display} has tables but no migration recorded in schema_migrations: it was built "
            "before migrations (by an older db/schema.sql). If its tables are the baseline "
            f"migration's ({migrations[0].id if migrations else 'none'}), record that with: "
            f"bin/db-migrate {db.env_name} --baseline")
    if baseline and not legacy:
        raise Failure(f"--baseline is only for a database built before migrations: {db.display} "
                      + ("has migrations recorded already" if any_applied
                         else "has no tables; run bin/db-migrate without --baseline"))
    if baseline and not migrations:
        raise Failure("there are no migrations: nothing to baseline")


# -- commands --------------------------------------------------------------------------------------

def cmd_new(directory: Path, name: str) -> None:
    if not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        raise Failure(f"migration name '{name}' is not allowed: use lowercase letters, digits and _ "
                      f"(at most {MAX_NAME}), e.g. add_users_bio")
    if name in ("local", "prod"):
        raise Failure("bin/db-migration-new makes files and needs no database: "
                      "give the migration a name that says what it does, e.g. add_users_bio")
    migrations = load_migrations(directory)
    for migration in migrations:
        if migration.name == name:
            raise Failure(f"a migration named {name} exists already: {shown(migration.up)}")
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    if migrations:  # always after the newest, even within the same second or under a skewed clock
        newest = dt.datetime.strptime(migrations[-1].version, VERSION_FORMAT)
        moment = max(moment, newest + dt.timedelta(seconds=1))
    while True:
        version = moment.strftime(VERSION_FORMAT)
        up = directory / f"{version}_{name}.up.sql"
        down = directory / f"{version}_{name}.down.sql"
        if not any(directory.glob(f"{version}_*")):
            try:
                with up.open("x") as f:
                    f.write(UP_TEMPLATE.format(path=shown(up), name=name, version=version))
                break
            except FileExistsError:
                pass
        moment += dt.timedelta(seconds=1)
    with down.open("x") as f:
        f.write(DOWN_TEMPLATE.format(path=shown(down), name=name))
    say(shown(up))
    say(shown(down))


def run_with_retries(db: Database, lock: MigrationLock, policy: LockPolicy, path: Path, record: str,
                     **variables: str) -> Outcome:
    """Run one migration file and record it; each time it gives up waiting for a lock, again
    after a pause, at most policy.retries more times."""
    script = migration_script(path, record)
    for retry in range(policy.retries + 1):
        if retry:
            say(f"  gave up waiting for a lock after lock_timeout {policy.timeout}; trying again in"
                f" {policy.pause:g}s (retry {retry} of {policy.retries})")
            time.sleep(policy.pause)
            lock.check()
        outcome = db.run(script, path=shown(path), lock_timeout=policy.timeout, **variables)
        if outcome.sqlstate != LOCK_NOT_AVAILABLE:
            break
    return outcome


def why_failed(path: Path, outcome: Outcome, policy: LockPolicy) -> str:
    if outcome.sqlstate == LOCK_NOT_AVAILABLE:
        return (f"{shown(path)} could not take a lock within lock_timeout {policy.timeout}, in"
                f" {policy.retries + 1} attempt(s): another session holds a lock on a table it changes"
                " (bin/db-sessions shows who)")
    return f"{shown(path)} failed (psql's message above gives the line)"


def what_stays(path: Path, record: str) -> str:
    """What a failed migration file left behind; `record` says what happens to its row."""
    if NO_TRANSACTION_RE.search(path.read_text(errors="replace")):
        return (f"{record}, but it runs outside a transaction (no-transaction): what its statements"
                " before the failing one did stays, and running it again must be safe")
    return f"it was rolled back and {record}"


def cmd_up(db: Database, directory: Path, baseline: bool, policy: LockPolicy) -> None:
    migrations = load_migrations(directory)
    with MigrationLock(db) as lock:
        has_table, other_tables = db.state()
        applied = db.applied() if has_table else []
        check_baseline(db, migrations, bool(applied), other_tables, baseline)
        if baseline:  # counted as applied from here on
            first = migrations[0]
            applied = [*applied, Applied(first.version, first.name, first.checksum(), "")]
        warn_unknown(check_applied(migrations, applied), directory)
        done = {row.version for row in applied}
        pending = [m for m in migrations if m.version not in done]
        check_runnable(pending, "up")
        if not has_table:
            db.create_table()
            say("created table schema_migrations")
        if baseline:
            db.query("INSERT INTO public.schema_migrations (version, name, checksum)"
                     " VALUES (:'version', :'name', :'checksum')",
                     version=first.version, name=first.name, checksum=first.checksum())
            say(f"recorded {first.id} as applied without running it (--baseline)")
        if not pending:
            say(f"up to date: {len(applied)} migration(s) applied, none pending")
            return
        newest = max(done, default="")
        for count, migration in enumerate(pending):
            lock.check()
            late = migration.version < newest
            note = " (older than the newest applied migration: merged late)" if late else ""
            say(f"applying {migration.id}{note}")
            started = time.monotonic()
            outcome = run_with_retries(db, lock, policy, migration.up, RECORD_APPLIED,
                                       version=migration.version, name=migration.name,
                                       checksum=migration.checksum())
            if not outcome.ok:
                kept = f"; the {count} applied before it stay applied" if count else ""
                raise Failure(f"{why_failed(migration.up, outcome, policy)}:"
                              f" {what_stays(migration.up, 'not recorded')}{kept}. Fix it and run"
                              " bin/db-migrate again")
            say(f"  done in {time.monotonic() - started:.2f}s")
        say(f"applied {len(pending)} migration(s); up to date ({len(applied) + len(pending)} applied)")


def cmd_down(db: Database, directory: Path, steps: int, policy: LockPolicy) -> None:
    if steps < 1:
        raise Failure(f"steps must be a positive number, not {steps}")
    migrations = load_migrations(directory)
    files = {m.version: m for m in migrations}
    with MigrationLock(db) as lock:
        has_table, _ = db.state()
        applied = db.applied() if has_table else []
        check_applied(migrations, applied)
        if steps > len(applied):
            raise Failure(f"cannot roll back {steps} migration(s): {len(applied)} applied on {db.display}")
        targets = []
        for row in reversed(applied[-steps:]):
            if row.version not in files:
                raise Failure(f"{row.id} is applied but has no files in {shown(directory)}: "
                              "cannot roll it back from this checkout")
            targets.append(files[row.version])
        check_runnable(targets, "down")
        for count, migration in enumerate(targets):
            lock.check()
            say(f"rolling back {migration.id}")
            started = time.monotonic()
            outcome = run_with_retries(db, lock, policy, migration.down, RECORD_ROLLED_BACK,
                                       version=migration.version)
            if not outcome.ok:
                kept = f"; the {count} rolled back before it stay rolled back" if count else ""
                raise Failure(f"{why_failed(migration.down, outcome, policy)}:"
                              f" {what_stays(migration.down, f'{migration.id} is still applied')}{kept}")
            say(f"  done in {time.monotonic() - started:.2f}s")
        left = len(applied) - steps
        say(f"rolled back {steps} migration(s); {left} applied"
            + (f", newest {applied[left - 1].id}" if left else ""))


def cmd_status(db: Database, directory: Path) -> None:
    migrations = load_migrations(directory)
    has_table, other_tables = db.state()
    applied = {row.version: row for row in db.applied()} if has_table else {}
    files = {m.version: m for m in migrations}
    lines = []
    counts = {"applied": 0, "pending": 0, "changed": 0, "no-file": 0}
    for version in sorted(set(files) | set(applied)):
        migration, row = files.get(version), applied.get(version)
        if row is None:
            state, ident, note = "pending", migration.id, ""
        elif migration is None:
            state, ident = "no-file", row.id
            note = f"{row.applied_at}  (applied; no files in {shown(directory)})"
        elif migration.name != row.name or migration.checksum() != row.checksum:
            state, ident = "changed", row.id
            note = f"{row.applied_at}  (its up file changed after it was applied)"
        else:
            state, ident, note = "applied", row.id, row.applied_at
        counts[state] += 1
        lines.append((state, ident, note))
    width = max((len(ident) for _, ident, _ in lines), default=0)
    for state, ident, note in lines:
        say(f"{state:<8} {ident:<{width}}  {note}".rstrip())
    if not applied and other_tables:
        say(f"no migration recorded, but there are tables: built before migrations "
            f"(bin/db-migrate {db.env_name} --baseline)")
    elif not has_table:
        say("no schema_migrations table yet: bin/db-migrate creates it")
    say(", ".join(f"{n} {state}" for state, n in counts.items() if n or state in ("applied", "pending")))


def cmd_load_schema(db: Database, directory: Path, schema: Path) -> None:
    found = SCHEMA_VERSION_RE.findall(schema.read_text())
    if len(found) != 1 or not re.fullmatch(r"[0-9]{14}", found[0]):
        raise Failure(f"{shown(schema)} must say which migrations it contains in one line "
                      "'-- schema version: <version of the newest migration it includes>'")
    version = found[0]
    migrations = load_migrations(directory)
    if version not in {m.version for m in migrations}:
        raise Failure(f"{shown(schema)} says schema version {version}, "
                      f"but {shown(directory)} has no migration {version}")
    contained = [m for m in migrations if m.version <= version]
    variables = {}
    rows = []
    for i, migration in enumerate(contained):
        variables.update({f"v{i}": migration.version, f"n{i}": migration.name, f"c{i}": migration.checksum()})
        rows.append(f"(:'v{i}', :'n{i}', :'c{i}')")
    script = (
        "BEGIN;\n"
        f"SELECT pg_advisory_xact_lock({LOCK_KEY});\n"
        "\\i :schema\n"
        "SET client_min_messages = warning;\n"
        "DROP TABLE IF EXISTS public.schema_migrations;\n"
        f"{TABLE_DDL}"
        "INSERT INTO public.schema_migrations (version, name, checksum) VALUES\n  "
        + ",\n  ".join(rows) + ";\n"
        "COMMIT;\n"
    )
    if not db.run(script, schema=shown(schema), **variables).ok:
        raise Failure(f"loading {shown(schema)} failed (psql's message above gives the line): "
                      "nothing changed")
    say(f"loaded {shown(schema)}; recorded the {len(contained)} migration(s) it contains "
        f"(schema version {version}) in schema_migrations")
    newer = len(migrations) - len(contained)
    if newer:
        say(f"{newer} migration(s) newer than {shown(schema)} pending: run bin/db-migrate {db.env_name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("new").add_argument("name")
    commands.add_parser("up").add_argument("--baseline", action="store_true")
    commands.add_parser("down").add_argument("steps", type=int, nargs="?", default=1)
    commands.add_parser("status")
    commands.add_parser("load-schema")
    args = parser.parse_args(argv)
    directory = Path(os.environ.get("MIGRATIONS_DIR") or DEFAULT_DIR).absolute()
    apps = {"up": "db-migrate", "down": "db-rollback", "status": "db-migrate-status",
            "load-schema": "db-schema-load"}
    try:
        if args.command == "new":
            cmd_new(directory, args.name)
            return 0
        db = Database(apps[args.command])
        if args.command == "up":
            cmd_up(db, directory, args.baseline, LockPolicy.from_env())
        elif args.command == "down":
            cmd_down(db, directory, args.steps, LockPolicy.from_env())
        elif args.command == "status":
            cmd_status(db, directory)
        else:
            cmd_load_schema(db, directory, SCHEMA_FILE)
    except Failure as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted: each migration is all or nothing; bin/db-migrate-status shows "
              "where it stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
