"""Migrations: bin/db-migration-new, db-migrate, db-rollback and db-migrate-status, each test with a
migrations folder of its own (MIGRATIONS_DIR). Real PostgreSQL, the scripts as subprocesses. The
repository's own migrations: tests/test_repo_migrations.py."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from migration_support import FILE_RE, env_for, exists, query, recorded, run, schema_dump, versions, write
from support import ROOT, TEST_PASSWORD, run_script, script_env

# -- db-migration-new ------------------------------------------------------------------------------

def test_new_creates_the_next_pair_from_the_template(folder):
    env = script_env(MIGRATIONS_DIR=str(folder))
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    first = run_script("db-migration-new", "add_users_bio", env=env)
    assert first.returncode == 0, first.stderr
    up, down = (Path(line) for line in first.stdout.splitlines())
    assert up.read_text().startswith(f"-- {up}\n") and down.is_file()
    version, name, part = FILE_RE.fullmatch(up.name).groups()
    assert (name, part) == ("add_users_bio", "up") and down.name == f"{version}_{name}.down.sql"
    created = datetime.strptime(version, "%Y%m%d%H%M%S")
    assert before <= created <= datetime.now(UTC).replace(tzinfo=None)  # UTC, to the second

    # the same second: still a later version, so name order stays creation order
    second = run_script("db-migration-new", "add_users_location", env=env)
    assert second.returncode == 0, second.stderr
    assert Path(second.stdout.splitlines()[0]).name[:14] > version

    # a migration from a clock ahead of ours: the next one still sorts after it
    write(folder, "20991231235959", "from_the_future", "SELECT 1;\n")
    third = run_script("db-migration-new", "after_the_future", env=env)
    assert Path(third.stdout.splitlines()[0]).name == "21000101000000_after_the_future.up.sql"


@pytest.mark.parametrize("name", ["Add_bio", "add-bio", "add bio", "../escape", "", "prod", "x" * 81])
def test_new_rejects_bad_names(folder, name):
    result = run_script("db-migration-new", name, env=script_env(MIGRATIONS_DIR=str(folder)))
    assert result.returncode != 0
    assert result.stderr.startswith("error: ")
    assert list(folder.iterdir()) == []


def test_new_rejects_a_name_in_use_and_bad_usage(folder):
    write(folder, "20250101000000", "add_users_bio", "SELECT 1;\n")
    env = script_env(MIGRATIONS_DIR=str(folder))
    taken = run_script("db-migration-new", "add_users_bio", env=env)
    assert taken.returncode == 1 and "exists already" in taken.stderr
    assert run_script("db-migration-new", env=env).returncode == 1
    assert "usage" in run_script("db-migration-new", "a", "b", env=env).stderr
    assert len(list(folder.iterdir())) == 2


# -- db-migrate ------------------------------------------------------------------------------------

def test_applies_pending_in_version_order_whatever_the_file_order(database, folder):
    # created newest first, and the newest file has the oldest mtime
    write(folder, "20250103000000", "third", "INSERT INTO public.log (name) VALUES ('third');\n",
          "DELETE FROM public.log WHERE name = 'third';\n")
    write(folder, "20250101000000", "first", "CREATE TABLE public.log (id serial, name text);\n",
          "DROP TABLE public.log;\n")
    write(folder, "20250102000000", "second", "INSERT INTO public.log (name) VALUES ('second');\n",
          "DELETE FROM public.log WHERE name = 'second';\n")
    os.utime(folder / "20250103000000_third.up.sql", (1, 1))

    status = run("db-migrate-status", url=database, folder=folder).stdout
    assert re.findall(r"^(pending) +(\S+)", status, re.M) == [
        ("pending", "20250101000000_first"), ("pending", "20250102000000_second"),
        ("pending", "20250103000000_third")]

    out = run("db-migrate", url=database, folder=folder).stdout
    assert re.findall(r"^applying (\S+)", out, re.M) == [
        "20250101000000_first", "20250102000000_second", "20250103000000_third"]
    assert "applied 3 migration(s)" in out
    assert query(database, "SELECT name FROM public.log ORDER BY id") == [("second",), ("third",)]

    # a migration merged late from another branch: older than the newest applied, still pending
    write(folder, "20250102120000", "merged_late", "INSERT INTO public.log (name) VALUES ('late');\n",
          "DELETE FROM public.log WHERE name = 'late';\n")
    status = run("db-migrate-status", url=database, folder=folder).stdout
    assert re.findall(r"^([a-z-]+) +([0-9]{14}_\w+)", status, re.M) == [
        ("applied", "20250101000000_first"), ("applied", "20250102000000_second"),
        ("pending", "20250102120000_merged_late"), ("applied", "20250103000000_third")]
    assert status.rstrip().endswith("3 applied, 1 pending")
    out = run("db-migrate", url=database, folder=folder).stdout
    assert re.findall(r"^applying (.+)$", out, re.M) == [
        "20250102120000_merged_late (older than the newest applied migration: merged late)"]
    assert query(database, "SELECT name FROM public.log ORDER BY id") == [("second",), ("third",), ("late",)]

    # rollback undoes what was applied last first: the late one, not the newest version
    out = run("db-rollback", url=database, folder=folder).stdout
    assert re.findall(r"^rolling back (\S+)", out, re.M) == ["20250102120000_merged_late"]
    assert versions(database) == ["20250101000000", "20250102000000", "20250103000000"]


def test_rerun_is_a_no_op(pg, database, folder):
    write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n")
    write(folder, "20250102000000", "fill_t", "INSERT INTO public.t VALUES (1);\n")
    run("db-migrate", url=database, folder=folder)
    rows, dump = recorded(database), schema_dump(pg, database)

    out = run("db-migrate", url=database, folder=folder).stdout
    assert "up to date: 2 migration(s) applied, none pending" in out
    assert "applying" not in out
    assert recorded(database) == rows  # applied_at included
    assert schema_dump(pg, database) == dump
    assert query(database, "SELECT a FROM public.t") == [(1,)]


def test_failing_migration_leaves_no_trace_and_names_file_and_line(pg, database, folder):
    write(folder, "20250101000000", "good", "CREATE TABLE public.good (a int);\n")
    run("db-migrate", url=database, folder=folder)
    rows, dump = recorded(database), schema_dump(pg, database)

    bad = write(folder, "20250102000000", "bad",
                "-- creates a table, then fails\n"
                "CREATE TABLE public.half_done (a int);\n"
                "INSERT INTO public.half_done\n"
                "  VALUES (1 / 0);\n"
                "CREATE TABLE public.never (a int);\n")
    write(folder, "20250103000000", "after_bad", "CREATE TABLE public.after_bad (a int);\n")
    result = run("db-migrate", url=database, folder=folder, expect=1)

    assert f"{bad}:4: ERROR:  division by zero" in result.stderr  # psql: file and (last) line
    assert f"error: {bad} failed" in result.stderr and "rolled back and not recorded" in result.stderr
    assert "applying 20250103000000_after_bad" not in result.stdout
    assert recorded(database) == rows
    assert schema_dump(pg, database) == dump
    assert not exists(database, "public.half_done") and not exists(database, "public.after_bad")

    # fixed, it applies with the one after it
    bad.write_text("CREATE TABLE public.half_done (a int);\n")
    run("db-migrate", url=database, folder=folder)
    assert versions(database) == ["20250101000000", "20250102000000", "20250103000000"]


def test_concurrent_runs_apply_each_migration_exactly_once(database, folder):
    write(folder, "20250101000000", "create_counter", "CREATE TABLE public.counter (n int);\n")
    write(folder, "20250102000000", "slow", "SELECT pg_sleep(0.5);\nINSERT INTO public.counter VALUES (2);\n")
    write(folder, "20250103000000", "count", "INSERT INTO public.counter VALUES (3);\n")
    env = env_for(database, folder)
    runs = [subprocess.Popen([str(ROOT / "bin" / "db-migrate")], env=env, cwd="/", text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(5)]
    outputs = [process.communicate(timeout=60) for process in runs]
    results = [(process.returncode, out, err) for process, (out, err) in zip(runs, outputs, strict=True)]

    output = "".join(out + err for _, out, err in results)
    assert [code for code, _, _ in results] == [0] * 5, output
    assert TEST_PASSWORD not in output and "Traceback" not in output
    for migration in ("20250101000000_create_counter", "20250102000000_slow", "20250103000000_count"):
        assert output.count(f"applying {migration}\n") == 1, output
    assert output.count("up to date: 3 migration(s) applied") == 4
    assert query(database, "SELECT n FROM public.counter ORDER BY n") == [(2,), (3,)]
    assert versions(database) == ["20250101000000", "20250102000000", "20250103000000"]


def test_changed_migration_stops_the_run(database, folder):
    first = write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n",
                  "DROP TABLE public.t;\n")
    run("db-migrate", url=database, folder=folder)
    original = first.read_text()
    first.write_text(original.replace("(a int)", "(a bigint)"))
    write(folder, "20250102000000", "add_b", "ALTER TABLE public.t ADD COLUMN b int;\n")

    result = run("db-migrate", url=database, folder=folder, expect=1)
    assert f"error: {first} changed after it was applied" in result.stderr
    assert "applying" not in result.stdout
    assert versions(database) == ["20250101000000"]

    status = run("db-migrate-status", url=database, folder=folder).stdout
    assert re.search(r"^changed +20250101000000_create_t .*changed after it was applied", status, re.M)
    assert "changed after it was applied" in run("db-rollback", url=database, folder=folder, expect=1).stderr

    # a rename is a change too
    first.write_text(original)
    renamed = folder / "20250101000000_make_t.up.sql"
    first.rename(renamed)
    (folder / "20250101000000_create_t.down.sql").rename(folder / "20250101000000_make_t.down.sql")
    assert "restore the old name" in run("db-migrate", url=database, folder=folder, expect=1).stderr

    renamed.rename(first)
    (folder / "20250101000000_make_t.down.sql").rename(folder / "20250101000000_create_t.down.sql")
    run("db-migrate", url=database, folder=folder)
    assert versions(database) == ["20250101000000", "20250102000000"]


# -- db-rollback -----------------------------------------------------------------------------------

def test_rollback_n_steps(database, folder):
    for n in (1, 2, 3):
        write(folder, f"2025010{n}000000", f"create_t{n}", f"CREATE TABLE public.t{n} (a int);\n",
              f"DROP TABLE public.t{n};\n")
    run("db-migrate", url=database, folder=folder)

    out = run("db-rollback", "2", url=database, folder=folder).stdout
    assert re.findall(r"^rolling back (\S+)", out, re.M) == [
        "20250103000000_create_t3", "20250102000000_create_t2"]
    assert "rolled back 2 migration(s); 1 applied, newest 20250101000000_create_t1" in out
    assert versions(database) == ["20250101000000"]
    assert [exists(database, f"public.t{n}") for n in (1, 2, 3)] == [True, False, False]

    too_many = run("db-rollback", "2", url=database, folder=folder, expect=1)
    assert "cannot roll back 2 migration(s): 1 applied" in too_many.stderr
    run("db-rollback", url=database, folder=folder)  # one step by default
    assert versions(database) == [] and not exists(database, "public.t1")
    assert "0 applied" in run("db-rollback", url=database, folder=folder, expect=1).stderr

    for bad in ("0", "-1", "two", "--steps=2"):
        result = run("db-rollback", bad, url=database, folder=folder, expect=1)
        assert result.stderr.startswith("error: ") and "STEPS" in result.stderr


def test_failing_down_keeps_the_migration_applied(database, folder):
    write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n", "DROP TABLE public.t;\n")
    down = folder / "20250102000000_irreversible.down.sql"
    write(folder, "20250102000000", "irreversible", "INSERT INTO public.t VALUES (1);\n")
    down.write_text("DELETE FROM public.t;\n"
                    "DO $$ BEGIN RAISE EXCEPTION 'irreversible cannot be rolled back'; END $$;\n")
    run("db-migrate", url=database, folder=folder)

    result = run("db-rollback", "2", url=database, folder=folder, expect=1)
    assert f"{down}:2: ERROR:  irreversible cannot be rolled back" in result.stderr
    assert "20250102000000_irreversible is still applied" in result.stderr
    assert versions(database) == ["20250101000000", "20250102000000"]
    assert query(database, "SELECT a FROM public.t") == [(1,)]


def test_prod_guards(database, folder):
    write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n", "DROP TABLE public.t;\n")
    env = script_env(PROD_CONNECTION_URL=database, MIGRATIONS_DIR=str(folder))
    migrated = run_script("db-migrate", "prod", env=env)
    assert migrated.returncode == 0 and "applying 20250101000000_create_t" in migrated.stdout

    refused = run_script("db-rollback", "prod", env=env)
    assert refused.returncode == 1 and "--force-prod" in refused.stderr
    assert versions(database) == ["20250101000000"]

    forced = run_script("db-rollback", "prod", "--force-prod", env=env)
    assert forced.returncode == 0, forced.stderr
    assert versions(database) == [] and not exists(database, "public.t")

    # without prod, the local CONNECTION_URL is the one used: unset, it says so
    missing = run_script("db-migrate", env=env)
    assert missing.returncode == 1 and "CONNECTION_URL is not set" in missing.stderr


def test_bad_migration_folders_and_files(database, folder):
    def error_of(*args: str) -> str:
        return run("db-migrate", *args, url=database, folder=folder, expect=1).stderr

    (folder / "notes.txt").write_text("hi")
    assert f"{folder / 'notes.txt'} is not a migration file" in error_of()
    (folder / "notes.txt").unlink()

    (folder / "20250101000000_lonely.up.sql").write_text("SELECT 1;\n")
    assert "has no down file" in error_of()
    (folder / "20250101000000_lonely.up.sql").unlink()

    write(folder, "20250101000000", "one", "SELECT 1;\n")
    write(folder, "20250101000000", "same_version", "SELECT 1;\n")
    assert "two migrations have version 20250101000000" in error_of()
    for path in folder.glob("*same_version*"):
        path.unlink()

    txn = write(folder, "20250102000000", "own_transaction", "-- BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;\n")
    assert f"{txn}:2: 'BEGIN;'" in error_of()
    txn.write_text("DO $$\nBEGIN\n  PERFORM 1;\nEND;\n$$;\n"  # PL/pgSQL's BEGIN/END are fine
                   "CREATE PROCEDURE public.p() LANGUAGE plpgsql\n"
                   "AS $body$\nBEGIN\n  COMMIT;\nEND;\n$body$;\n")  # and a procedure's COMMIT

    template = Path(run_script("db-migration-new", "not_written_yet",
                               env=script_env(MIGRATIONS_DIR=str(folder))).stdout.splitlines()[0])
    assert f"{template} has no SQL yet" in error_of()
    assert versions(database) == []  # nothing ran: every pending file is checked first
    template.write_text("SELECT 1;\n")

    assert "unknown argument 'staging': allowed: local, prod, --baseline" in error_of("staging")
    run("db-migrate", url=database, folder=folder)
    assert len(versions(database)) == 3

    gone = run("db-migrate-status", url=database, folder=folder / "missing", expect=1)
    assert "is not a folder (MIGRATIONS_DIR?)" in gone.stderr


def test_applied_migration_without_files_is_reported(database, folder):
    write(folder, "20250101000000", "one", "SELECT 1;\n")
    write(folder, "20250102000000", "two", "SELECT 1;\n")
    run("db-migrate", url=database, folder=folder)
    for path in folder.glob("20250102000000_*"):
        path.unlink()
    status = run("db-migrate-status", url=database, folder=folder).stdout
    assert re.search(r"^no-file +20250102000000_two .*no files in", status, re.M)
    migrated = run("db-migrate", url=database, folder=folder)
    assert "warning: 20250102000000_two is applied but has no files" in migrated.stderr
    assert "has no files" in run("db-rollback", url=database, folder=folder, expect=1).stderr


def test_a_run_waits_for_the_lock(database, folder):
    write(folder, "20250101000000", "slow", "SELECT pg_sleep(1.5);\n")
    env = env_for(database, folder)
    first = subprocess.Popen([str(ROOT / "bin" / "db-migrate")], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    # pg_locks is the server's: other tests' migrations, in databases of their own, hold locks too
    while not query(database, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND database"
                              " = (SELECT oid FROM pg_database WHERE datname = current_database())"):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = run("db-migrate", url=database, folder=folder)
    assert first.wait(timeout=30) == 0
    assert "waiting: another db-migrate or db-rollback holds the migration lock" in second.stdout
    assert "up to date: 1 migration(s) applied" in second.stdout


# -- locks: lock_timeout, retries, no-transaction migrations ---------------------------------------

def lock_waiters(url: str, table: str) -> int:
    """Sessions waiting for a lock on `table` (of this database: pg_locks shows the server's)."""
    return query(url, "SELECT count(*) FROM pg_locks WHERE relation = to_regclass(%s) AND NOT granted"
                      " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                 table)[0][0]


def test_a_migration_that_cannot_get_its_lock_fails_fast_retries_and_leaves_nothing(database, folder):
    """Another session holds a lock on the table (a long read): the migration waits at most its
    lock_timeout each time, is rolled back and retried, and in the end fails with nothing of it
    applied. A query queued behind its lock request waits no longer than that lock_timeout."""
    write(folder, "20250101000000", "create_t",
          "CREATE TABLE public.t (a int);\nINSERT INTO public.t VALUES (1);\n")
    run("db-migrate", url=database, folder=folder)
    write(folder, "20250102000000", "alter_t", "CREATE TABLE public.half_done (a int);\n"
                                               "INSERT INTO public.t VALUES (2);\n"
                                               "ALTER TABLE public.t ADD COLUMN b int;\n")
    settings = {"MIGRATION_LOCK_TIMEOUT": "500ms", "MIGRATION_LOCK_RETRIES": "2",
                "MIGRATION_RETRY_PAUSE": "0.3"}
    with psycopg.connect(database) as holder:
        holder.execute("SELECT count(*) FROM public.t")  # its transaction stays open: a lock on t
        started = time.monotonic()
        migrate = subprocess.Popen([str(ROOT / "bin" / "db-migrate")], cwd="/", text=True,
                                   env=env_for(database, folder, **settings),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while not lock_waiters(database, "public.t"):
            assert migrate.poll() is None and time.monotonic() < started + 20
            time.sleep(0.02)
        queued = time.monotonic()
        assert query(database, "SELECT count(*) FROM public.t") == [(1,)]  # behind the ALTER's request
        waited = time.monotonic() - queued
        out, err = migrate.communicate(timeout=60)
        elapsed = time.monotonic() - started

    assert migrate.returncode == 1, out + err
    assert waited < 0.5 + 0.5, f"a read waited {waited:.2f}s behind the migration"
    assert elapsed < 3 * 0.5 + 2 * 0.3 + 10
    assert re.findall(r"gave up waiting for a lock after lock_timeout 500ms; trying again in 0.3s"
                      r" \(retry (\d) of 2\)", out) == ["1", "2"]
    assert err.count("ERROR:  canceling statement due to lock timeout") == 3
    assert "55P03" not in err and "LOCATION:" not in err  # psql's words, as the default verbosity has them
    assert ("20250102000000_alter_t.up.sql could not take a lock within lock_timeout 500ms,"
            " in 3 attempt(s)") in err
    assert "rolled back and not recorded" in err and "bin/db-sessions" in err
    assert versions(database) == ["20250101000000"]
    assert not exists(database, "public.half_done")
    assert query(database, "SELECT * FROM public.t") == [(1,)]

    run("db-migrate", url=database, folder=folder, **settings)  # the lock is gone
    assert query(database, "SELECT * FROM public.t ORDER BY a") == [(1, None), (2, None)]


def test_a_migration_retried_once_the_lock_is_gone_applies_once(database, folder):
    write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n")
    run("db-migrate", url=database, folder=folder)
    write(folder, "20250102000000", "alter_t", "INSERT INTO public.t VALUES (2);\n"
                                               "ALTER TABLE public.t ADD COLUMN b int;\n")
    holder = psycopg.connect(database)
    holder.execute("LOCK public.t IN ACCESS SHARE MODE")

    def release_once_waited_for():
        deadline = time.monotonic() + 30
        while not lock_waiters(database, "public.t") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # past the first lock_timeout
        holder.close()

    release = threading.Thread(target=release_once_waited_for)
    release.start()
    try:
        out = run("db-migrate", url=database, folder=folder, MIGRATION_LOCK_TIMEOUT="300ms",
                  MIGRATION_LOCK_RETRIES="20", MIGRATION_RETRY_PAUSE="0.2").stdout
    finally:
        release.join()
    assert "(retry 1 of 20)" in out and "applied 1 migration(s)" in out
    assert query(database, "SELECT * FROM public.t") == [(2, None)]  # the attempts rolled back left nothing


@pytest.mark.parametrize("setting", [{"MIGRATION_LOCK_TIMEOUT": "2 seconds"},
                                     {"MIGRATION_LOCK_TIMEOUT": "-1"}, {"MIGRATION_LOCK_RETRIES": "many"},
                                     {"MIGRATION_RETRY_PAUSE": "-1"}])
def test_bad_lock_settings_are_refused(database, folder, setting):
    write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n")
    result = run("db-migrate", url=database, folder=folder, expect=1, **setting)
    assert result.stderr.startswith("error: MIGRATION_") and "applying" not in result.stdout
    assert not exists(database, "public.t")


def test_a_no_transaction_migration_builds_an_index_concurrently(database, folder):
    """`-- migrate: no-transaction`: the file runs statement by statement, so CREATE INDEX
    CONCURRENTLY can; without the line it cannot. A failure leaves the statements before it and
    no record, and the message says so."""
    write(folder, "20250101000000", "create_t", "CREATE TABLE public.t (a int);\n")
    index_sql = ("DROP INDEX CONCURRENTLY IF EXISTS public.t_a_idx;\n"
                 "CREATE INDEX CONCURRENTLY t_a_idx ON public.t (a);\n")
    up = write(folder, "20250102000000", "index_t", index_sql,
               "-- migrate: no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS public.t_a_idx;\n")
    refused = run("db-migrate", url=database, folder=folder, expect=1)
    assert "INDEX CONCURRENTLY cannot run inside a transaction block" in refused.stderr
    assert versions(database) == ["20250101000000"]

    up.write_text("-- index_t: a concurrent build takes no lock that stops writes\n"
                  "-- migrate: no-transaction\n" + index_sql)
    run("db-migrate", url=database, folder=folder)
    assert versions(database) == ["20250101000000", "20250102000000"]
    assert query(database, "SELECT indisvalid FROM pg_index"
                           " WHERE indexrelid = 'public.t_a_idx'::regclass") == [(True,)]
    run("db-rollback", url=database, folder=folder)
    assert not exists(database, "public.t_a_idx") and versions(database) == ["20250101000000"]

    up.write_text("-- migrate: no-transaction\n" + index_sql + "SELECT 1 / 0;\n")
    failed = run("db-migrate", url=database, folder=folder, expect=1)
    assert "runs outside a transaction (no-transaction)" in failed.stderr and "not recorded" in failed.stderr
    assert exists(database, "public.t_a_idx") and versions(database) == ["20250101000000"]
    up.write_text("-- migrate: no-transaction\n" + index_sql)
    run("db-migrate", url=database, folder=folder)  # safe to run again: it drops what the failure left
    assert versions(database) == ["20250101000000", "20250102000000"]
