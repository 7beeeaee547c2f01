"""The repository's migrations (db/migrations) and db/schema.sql: they build the same schema, each
migration's down file undoes its up file, rows survive every one, the ones that check data say
what stops them, and a database built before migrations is baselined. Real PostgreSQL, the
scripts as subprocesses."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import psycopg
import pytest

from migration_support import (
    REPO_MIGRATIONS,
    copy_migration,
    query,
    recorded,
    repo_migrations,
    run,
    schema_dump,
    versions,
)
from support import ROOT, create_database, run_script, script_env


def test_schema_sql_and_the_migrations_build_the_same_schema(pg, database):
    schema_sql = (ROOT / "db" / "schema.sql").read_text()
    (schema_version,) = re.findall(r"^-- schema version: (\d+)$", schema_sql, re.M)
    assert schema_version == repo_migrations()[-1][0], "db/schema.sql's schema version is not the newest"

    by_migrations = database
    out = run("db-migrate", url=by_migrations).stdout
    assert f"applied {len(repo_migrations())} migration(s)" in out

    by_schema = create_database(pg, "mig_" + os.urandom(4).hex())
    setup = run("db-setup", url=by_schema)
    assert f"recorded the {len(repo_migrations())} migration(s) it contains" in setup.stdout

    assert schema_dump(pg, by_schema) == schema_dump(pg, by_migrations)
    assert [row[:3] for row in recorded(by_schema)] == [row[:3] for row in recorded(by_migrations)]
    assert "up to date" in run("db-migrate", url=by_schema).stdout
    status = run("db-migrate-status", url=by_schema).stdout
    assert status.count("\napplied ") == len(repo_migrations()) and "0 pending" in status

    # a reload resets the record too
    with psycopg.connect(by_schema, autocommit=True) as conn:
        conn.execute("DELETE FROM public.schema_migrations")
    run("db-schema-load", url=by_schema)
    assert len(recorded(by_schema)) == len(repo_migrations())


def without_extensions(dump: str) -> str:
    return "\n".join(line for line in dump.splitlines()
                     if not line.startswith(("CREATE EXTENSION ", "COMMENT ON EXTENSION ")))


def test_up_down_up_round_trip_of_every_repo_migration(pg, database, folder):
    """Every migration up, one at a time; then down, one at a time, each back to the schema before
    it; then up again, to the same schema.

    A down may leave an extension it created installed: extensions are database-wide and
    other objects may use them; the up's CREATE EXTENSION IF NOT EXISTS finds it again.
    """
    run("db-migrate", url=database, folder=folder)  # only schema_migrations
    dumps = [schema_dump(pg, database)]
    for version, name in repo_migrations():
        copy_migration(version, name, folder)
        run("db-migrate", url=database, folder=folder)
        dumps.append(schema_dump(pg, database))
        assert dumps[-1] != dumps[-2], f"{version}_{name} changed nothing"
    for (version, name), before in reversed(list(zip(repo_migrations(), dumps, strict=False))):
        rolled_back = run("db-rollback", url=database, folder=folder)
        assert f"rolling back {version}_{name}" in rolled_back.stdout
        assert without_extensions(schema_dump(pg, database)) == without_extensions(before), \
            f"{version}_{name}.down.sql does not undo its up file"
    run("db-migrate", url=database, folder=folder)
    assert schema_dump(pg, database) == dumps[-1], "up, down, up is not up"


def snapshot(url: str) -> dict[str, list[dict]]:
    """Every row of every public table but schema_migrations, as JSON objects."""
    tables = [row[0] for row in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                                           " AND tablename <> 'schema_migrations' ORDER BY tablename")]
    return {table: [json.loads(row[0]) for row in
                    query(url, f'SELECT row_to_json(t)::text FROM public."{table}" t ORDER BY 1')]  # noqa: S608
            for table in tables}


def test_rows_survive_every_repo_migration(database, folder):
    migrations = repo_migrations()
    copy_migration(*migrations[0], folder)
    run("db-migrate", url=database, folder=folder)  # the baseline: users and activities
    with psycopg.connect(database, autocommit=True) as conn:
        alice, bob = (conn.execute(
            "INSERT INTO users (display_name, email, handle, cognito_user_id) VALUES (%s, %s, %s, %s)"
            " RETURNING uuid", (name.title(), f"{name}@example.com", name, cognito)).fetchone()[0]
            for name, cognito in (("alice", "cognito-alice"), ("bob", None)))
        (post,) = conn.execute("INSERT INTO activities (user_uuid, message, likes_count, expires_at)"
                               " VALUES (%s, 'hello', 3, now() + interval '1 day') RETURNING uuid",
                               (alice,)).fetchone()
        conn.execute("INSERT INTO activities (user_uuid, message, reply_to_activity_uuid, expires_at)"
                     " VALUES (%s, 'hi back', %s, now() + interval '1 day')", (bob, post))
    before = snapshot(database)
    assert len(before["users"]) == 2 and len(before["activities"]) == 2

    for version, name in migrations[1:]:
        copy_migration(version, name, folder)
        run("db-migrate", url=database, folder=folder)
        after = snapshot(database)
        for table, rows in before.items():
            assert len(after[table]) == len(rows), f"{version}_{name} changed the rows of {table}"
            for old, new in zip(rows, after[table], strict=True):
                assert {key: new[key] for key in old} == old, f"{version}_{name} changed a row of {table}"
        before = after
    if any(name == "add_users_bio" for _, name in migrations):
        assert {row["handle"]: row["bio"] for row in before["users"]} == {"alice": None, "bob": None}


def migrate_up_to(name: str, url: str, folder: Path) -> tuple[tuple[str, str], str]:
    """The repository's migrations before `name` applied to `url`; returns `name`'s (version, name)
    and the version applied last."""
    migrations = repo_migrations()
    index = [n for _, n in migrations].index(name)
    for migration in migrations[:index]:
        copy_migration(*migration, folder)
    run("db-migrate", url=url, folder=folder)
    return migrations[index], migrations[index - 1][0]


def test_case_insensitive_handles_refuse_handles_that_differ_only_in_case(database, folder):
    """users_handle_case_insensitive on a database holding `ChrisFenton` and `chrisfenton`: it
    names them, changes nothing, and applies once one is renamed."""
    target, applied = migrate_up_to("users_handle_case_insensitive", database, folder)
    with psycopg.connect(database, autocommit=True) as conn:
        for handle in ("ChrisFenton", "chrisfenton", "bayko", "Alice", "ALICE"):
            conn.execute("INSERT INTO users (display_name, email, handle) VALUES ('N', 'e@x.test', %s)",
                         (handle,))
    copy_migration(*target, folder)

    result = run("db-migrate", url=database, folder=folder, expect=1)

    assert "handles that differ only in case: 'ALICE', 'Alice'; 'ChrisFenton', 'chrisfenton'" in result.stderr
    assert "rename all but one of each" in result.stderr
    assert versions(database)[-1] == applied
    assert query(database, "SELECT to_regclass('public.users_handle_lower_key')") == [(None,)]

    query(database, "UPDATE users SET handle = handle || '2' WHERE handle IN ('ChrisFenton', 'ALICE')"
                    " RETURNING 1")
    run("db-migrate", url=database, folder=folder)
    with psycopg.connect(database, autocommit=True) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO users (display_name, email, handle) VALUES ('N', 'e@x.test', 'BAYKO')")


def test_profile_limits_name_the_users_over_them_and_change_nothing(database, folder):
    """users_profile_limits on a database holding a display name or a bio over the new limits: it
    names their users, changes nothing, and applies once they are shortened."""
    target, applied = migrate_up_to("users_profile_limits", database, folder)
    with psycopg.connect(database, autocommit=True) as conn:
        for handle, display_name, bio in (("ann", "Ann", None), ("zed", "Z" * 51, None),
                                          ("bea", "Bea", "b" * 161)):
            conn.execute("INSERT INTO users (display_name, email, handle, bio)"
                         " VALUES (%s, 'e@x.test', %s, %s)", (display_name, handle, bio))
    copy_migration(*target, folder)

    result = run("db-migrate", url=database, folder=folder, expect=1)

    assert "whose bio is over 160: 'bea', 'zed'" in result.stderr
    assert versions(database)[-1] == applied
    query(database, "UPDATE users SET display_name = left(display_name, 50), bio = left(bio, 160)"
                    " RETURNING 1")
    run("db-migrate", url=database, folder=folder)
    with psycopg.connect(database, autocommit=True) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE users SET display_name = '' WHERE handle = 'ann'")


def test_database_built_before_migrations_is_baselined(pg, database):
    """The prod case: tables from the old schema.sql, real rows, no schema_migrations."""
    baseline_version, baseline_name = repo_migrations()[0]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute((REPO_MIGRATIONS / f"{baseline_version}_{baseline_name}.up.sql").read_text())
        conn.execute("INSERT INTO users (display_name, email, handle)"
                     " VALUES ('Ann', 'ann@example.com', 'ann')")
    env = script_env(PROD_CONNECTION_URL=database)

    refused = run_script("db-migrate", "prod", env=env)
    assert refused.returncode == 1
    assert "built before migrations" in refused.stderr and "bin/db-migrate prod --baseline" in refused.stderr
    assert "--baseline" in run_script("db-migrate-status", "prod", env=env).stdout

    done = run_script("db-migrate", "prod", "--baseline", env=env)
    assert done.returncode == 0, done.stderr
    assert f"recorded {baseline_version}_{baseline_name} as applied without running it" in done.stdout
    assert versions(database) == [version for version, _ in repo_migrations()]
    assert query(database, "SELECT handle, email FROM users") == [("ann", "ann@example.com")]

    reference = create_database(pg, "mig_" + os.urandom(4).hex())
    run("db-migrate", url=reference)
    assert schema_dump(pg, database) == schema_dump(pg, reference)
    again = run_script("db-migrate", "prod", "--baseline", env=env)
    assert again.returncode == 1 and "has migrations recorded already" in again.stderr
