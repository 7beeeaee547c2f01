"""cruddur_app, the API's own database role: rows only (SELECT, INSERT, UPDATE; of users, UPDATE of
display_name and bio only), no DDL, owns nothing.

The session API runs as it (conftest's app_role_url), so every API test also proves the role has
what the API needs; these tests prove it has nothing more, and that a statement injected through
it could not drop, empty or change a table.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from support import (
    TEST_PASSWORD,
    LocalPostgres,
    free_port,
    insert_activity,
    insert_user,
    run_script,
    script_env,
)

ROLE = "cruddur_app"
ROW_PRIVILEGES = ["SELECT", "INSERT", "UPDATE"]
DENIED_TABLE_PRIVILEGES = ["DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
# Tables the role may UPDATE only some columns of: what a user edits of their profile.
UPDATABLE_COLUMNS = {"users": ["bio", "display_name"]}


def as_app(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def test_the_api_connects_as_cruddur_app(client, db):
    assert client.app.config["SETTINGS"].connection_url.startswith(f"postgresql://{ROLE}:")
    assert client.get("/api/health-check").status_code == 200
    users = db.execute("SELECT DISTINCT usename FROM pg_stat_activity"
                       " WHERE application_name = 'cruddur-api' AND datname = current_database()").fetchall()
    assert (ROLE,) in users  # (other tests may run an API of their own as another user)


def test_the_role_has_no_special_attribute_membership_or_object(db):
    attributes = db.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin"
        " FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
    assert attributes == (False, False, False, False, False, True)
    assert db.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
                      " WHERE r.rolname = %s", (ROLE,)).fetchone() == (0,), "member of another role"
    owned = db.execute(
        "SELECT 'relation ' || relname FROM pg_class WHERE relowner = %(r)s::regrole"
        " UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = %(r)s::regrole"
        " UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = %(r)s::regrole"
        " UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = %(r)s::regrole",
        {"r": ROLE}).fetchall()
    assert owned == []


def test_every_table_and_view_grants_rows_only_and_nothing_on_the_schema(db):
    """Every relation in public (so also one a later migration adds): SELECT, INSERT, UPDATE on
    tables (UPDATE of some columns only on UPDATABLE_COLUMNS' tables), SELECT on views, nothing on
    schema_migrations; no CREATE on the schema or database."""
    relations = db.execute("SELECT c.relname, c.relkind FROM pg_class c"
                           " WHERE c.relnamespace = 'public'::regnamespace"
                           " AND c.relkind IN ('r', 'p', 'v', 'm')"
                           " ORDER BY 1").fetchall()
    assert {"users", "activities", "activity_items", "user_profiles"} <= {name for name, _ in relations}

    def has(relation: str, privilege: str) -> bool:
        return db.execute("SELECT has_table_privilege(%s, %s, %s)",
                          (ROLE, f"public.{relation}", privilege)).fetchone()[0]

    for name, kind in relations:
        if name == "schema_migrations":
            wanted = []
        elif kind in ("v", "m"):
            wanted = ["SELECT"]
        elif name in UPDATABLE_COLUMNS:
            wanted = ["SELECT", "INSERT"]
        else:
            wanted = ROW_PRIVILEGES
        granted = [p for p in ROW_PRIVILEGES + DENIED_TABLE_PRIVILEGES if has(name, p)]
        assert granted == wanted, f"{ROLE} on public.{name}"
        updatable = db.execute(
            "SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped AND has_column_privilege(%s, attrelid, attnum, 'UPDATE')",
            (f"public.{name}", ROLE)).fetchone()[0]
        if name in UPDATABLE_COLUMNS:
            assert updatable == UPDATABLE_COLUMNS[name], f"{ROLE} may update public.{name}: {updatable}"
    assert db.execute("SELECT has_schema_privilege(%s, 'public', 'USAGE'),"
                      " has_schema_privilege(%s, 'public', 'CREATE'),"
                      " has_database_privilege(%s, current_database(), 'CREATE'),"
                      " has_function_privilege(%s, 'public.activity_page(uuid[], integer)', 'EXECUTE')",
                      (ROLE,) * 4).fetchone() == (True, False, False, True)


INJECTED = [
    "DROP TABLE public.activities",
    "DROP TABLE public.users CASCADE",
    "DROP VIEW public.activity_items",
    "DROP FUNCTION public.activity_page(uuid[], integer)",
    "TRUNCATE public.activities",
    "DELETE FROM public.activities",
    "ALTER TABLE public.users ADD COLUMN is_admin boolean",
    "ALTER TABLE public.activities DROP CONSTRAINT activities_message_length",
    "CREATE TABLE public.stolen AS SELECT * FROM public.users",
    "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE INDEX evil_idx ON public.activities (message)",
    "ALTER ROLE cruddur_app SUPERUSER",
    "SELECT rolpassword FROM pg_authid",
    "CREATE ROLE intruder LOGIN",
    "CREATE DATABASE intruder",
    "CREATE SCHEMA intruder",
    "CREATE EXTENSION IF NOT EXISTS dblink",
    "COPY public.activities TO PROGRAM 'true'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT 1; DROP TABLE public.activities",  # a stacked statement, the classic injection
]


@pytest.mark.parametrize("statement", INJECTED)
def test_an_injected_statement_is_refused_and_changes_nothing(app_role_url, db, statement):
    alice = insert_user(db, "alice")
    insert_activity(db, alice, "still here")
    with as_app(app_role_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    assert db.execute("SELECT count(*) FROM public.users").fetchone() == (1,)
    assert db.execute("SELECT message FROM public.activities").fetchall() == [("still here",)]
    assert db.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
                      " AND table_name = 'users' AND column_name = 'is_admin'").fetchone() == (0,)
    assert db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone() == (False,)


@pytest.mark.parametrize("statement", [
    "UPDATE public.users SET handle = 'mallory'",
    "UPDATE public.users SET email = 'mallory@evil.test'",
    "UPDATE public.users SET cognito_user_id = 'sub-mallory'",
    "UPDATE public.users SET uuid = gen_random_uuid()",
    "UPDATE public.users SET created_at = now()",
    "UPDATE public.users SET display_name = 'Mallory', handle = 'mallory'",
])
def test_of_users_the_role_updates_only_display_name_and_bio(app_role_url, db, statement):
    """An UPDATE injected through the API cannot take over an account (its handle, email or
    Cognito user); the profile update's own columns it can change."""
    insert_user(db, "alice", cognito_user_id="sub-alice")
    before = db.execute("SELECT row_to_json(u)::text FROM public.users u").fetchall()
    with as_app(app_role_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        assert db.execute("SELECT row_to_json(u)::text FROM public.users u").fetchall() == before
        conn.execute("UPDATE public.users SET display_name = 'Alice L', bio = 'hi'"
                     " WHERE cognito_user_id = 'sub-alice'")
    assert db.execute("SELECT handle, display_name, bio FROM public.users").fetchall() == [
        ("alice", "Alice L", "hi")]


def test_the_role_reads_writes_and_updates_rows(app_role_url, db):
    alice = insert_user(db, "alice")
    with as_app(app_role_url) as conn:
        row = conn.execute("INSERT INTO public.activities (user_uuid, message, expires_at)"
                           " VALUES (%s, 'hi', now() + interval '1 day') RETURNING uuid", (alice,)).fetchone()
        conn.execute("UPDATE public.activities SET replies_count = 1 WHERE uuid = %s", row)
        count = conn.execute("SELECT replies_count FROM public.activity_items WHERE uuid = %s", row)
        assert count.fetchone() == (1,)
        page = conn.execute("SELECT body::text FROM public.activity_page(ARRAY[%s::uuid], 20)", row)
        assert json.loads(page.fetchone()[0])[0]["replies"] == []


@pytest.mark.e2e
def test_an_rds_like_master_user_builds_the_role_on_a_new_server(tmp_path):
    """On RDS the scripts run as a master user with CREATEDB and CREATEROLE but not superuser: on a
    server without cruddur_app, bin/db-create and bin/db-schema-load make it there; a reload keeps it
    and its password; the API's rights are the same as on the session server."""
    server = LocalPostgres(tmp_path / "data", free_port(), password=TEST_PASSWORD, ephemeral=True)
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE ROLE cruddurroot LOGIN CREATEDB CREATEROLE PASSWORD {}")
                         .format(TEST_PASSWORD))
        url = server.url("cruddur", user="cruddurroot")
        env = script_env(PROD_CONNECTION_URL=url)
        for script in ("db-create", "db-schema-load", "db-seed"):
            result = run_script(script, "prod", env=env)
            assert result.returncode == 0, f"bin/{script}: {result.stdout}{result.stderr}"
            assert "WARNING" not in result.stdout + result.stderr
        app_url = server.url("cruddur", user=ROLE)
        with pytest.raises(psycopg.OperationalError):  # made without a password: no login yet
            as_app(app_url)
        with psycopg.connect(url, autocommit=True) as conn:  # the operator's step
            conn.execute(psycopg.sql.SQL("ALTER ROLE cruddur_app PASSWORD {}").format(TEST_PASSWORD))
        result = run_script("db-schema-load", "prod", "--force-prod", env=env)
        assert result.returncode == 0, result.stderr
        with as_app(app_url) as conn:  # the password survived the reload, the grants came back
            assert conn.execute("SELECT count(*) FROM public.activity_items").fetchone() == (0,)
            for statement in ("DROP TABLE public.activities", "SELECT * FROM public.schema_migrations"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        server.destroy()
