"""The bin/db-* scripts, run as subprocesses from another directory against a real PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import psycopg.sql
import pytest

from support import ROOT, TEST_PASSWORD, create_database, run_script, script_env

SCRIPTS = ["db-create", "db-drop", "db-schema-load", "db-seed", "db-sessions", "db-setup", "db-connect",
           "db-purge-expired"]


@pytest.fixture
def local(pg):
    """CONNECTION_URL for database `scripts_local` (absent at the start of each test)."""
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS scripts_local WITH (FORCE)")
    return pg.url("scripts_local")


@pytest.fixture
def env(local):
    return script_env(CONNECTION_URL=local)


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        query = psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table))
        return conn.execute(query).fetchone()[0]


def test_setup_twice_in_a_row(env, local, tmp_path):
    for _ in range(2):
        result = run_script("db-setup", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "== db-setup local: done" in result.stdout
    assert count(local, "users") == 2
    assert count(local, "activities") == 1


def test_setup_from_inside_bin_and_a_relative_invocation(env, local):
    result = subprocess.run(["./db-setup"], cwd=ROOT / "bin", env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_create_and_drop_say_already_exists_and_does_not_exist(env):
    assert run_script("db-create", env=env).stdout.endswith("created database scripts_local\n")
    again = run_script("db-create", env=env)
    assert again.returncode == 0 and "already exists" in again.stdout
    assert "dropped database" in run_script("db-drop", env=env).stdout
    gone = run_script("db-drop", env=env)
    assert gone.returncode == 0 and "does not exist" in gone.stdout


def test_seed_twice_adds_nothing(env, local):
    run_script("db-setup", env=env)
    assert run_script("db-seed", env=env).returncode == 0
    assert count(local, "users") == 2
    assert count(local, "activities") == 1


def test_drop_with_a_session_open_names_and_ends_it(env, local):
    run_script("db-setup", env=env)
    with psycopg.connect(local, application_name="someone-else") as other:
        pid = other.info.backend_pid
        sessions = run_script("db-sessions", env=env)
        assert sessions.returncode == 0
        assert str(pid) in sessions.stdout and "someone-else" in sessions.stdout

        dropped = run_script("db-drop", env=env)
        assert dropped.returncode == 0, dropped.stderr
        assert f"pid {pid}" in dropped.stdout and "someone-else" in dropped.stdout
        assert "dropped database scripts_local" in dropped.stdout
        with pytest.raises(psycopg.OperationalError):
            other.execute("SELECT 1")


def test_prod_switch_uses_prod_connection_url(pg, env, local):
    prod = pg.url("scripts_prod")
    create_database(pg, "scripts_prod")
    prod_env = {**env, "PROD_CONNECTION_URL": prod}
    result = run_script("db-schema-load", "prod", env=prod_env)
    assert result.returncode == 0, result.stderr
    assert run_script("db-seed", "prod", env=prod_env).returncode == 0
    assert count(prod, "users") == 2
    # the local database was not touched
    assert "does not exist" in run_script("db-drop", env=env).stdout


@pytest.mark.parametrize("script,args,refusal", [
    ("db-drop", [], "refusing to drop database scripts_prod on prod"),
    ("db-setup", [], "refusing to set up (drop and recreate) database scripts_prod on prod"),
    ("db-schema-load", [], "refusing to reload the schema over the users and activities"),
])
def test_prod_refuses_destructive_actions_without_override(pg, env, script, args, refusal):
    prod = create_database(pg, "scripts_prod")
    prod_env = {**env, "PROD_CONNECTION_URL": prod}
    assert run_script("db-schema-load", "prod", env=prod_env).returncode == 0
    assert run_script("db-seed", "prod", env=prod_env).returncode == 0

    refused = run_script(script, "prod", *args, env=prod_env)
    assert refused.returncode != 0
    assert refusal in refused.stderr
    assert "--force-prod" in refused.stderr
    assert count(prod, "users") == 2  # nothing lost

    forced = run_script(script, "prod", "--force-prod", env=prod_env)
    assert forced.returncode == 0, forced.stderr


def test_purge_expired_prints_what_it_removed(pg, env, local):
    """bin/db-purge-expired [prod]: the cruds and replies that expired more than PURGE_GRACE ago
    go, and it says how many; prod needs no --force-prod; bad settings stop it with psql's word."""
    run_script("db-setup", env=env)
    with psycopg.connect(local, autocommit=True) as conn:
        conn.execute("""
            WITH crud AS (
              INSERT INTO activities (user_uuid, message, expires_at)
              SELECT uuid, 'old', now() - interval '2 days' FROM users WHERE handle = 'bayko'
              RETURNING uuid, user_uuid, expires_at
            )
            INSERT INTO activities (user_uuid, message, reply_to_activity_uuid, expires_at)
            SELECT user_uuid, 'old reply', uuid, expires_at FROM crud""")
        conn.execute("INSERT INTO activities (user_uuid, message, expires_at)"
                     " SELECT uuid, 'expired an hour ago', now() - interval '1 hour' FROM users LIMIT 1")

    result = run_script("db-purge-expired", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "== db-purge-expired local: activities of scripts_local expired more than 1 day ago",
        "removed 2 expired activities (1 cruds, 1 replies) in 2 batch(es)"]
    assert count(local, "activities") == 2  # the seed's, and the one in its grace period

    prod = run_script("db-purge-expired", "prod", env={**env, "PROD_CONNECTION_URL": local,
                                                       "PURGE_GRACE": "30 minutes"})
    assert prod.returncode == 0, prod.stderr
    assert "removed 1 expired activities (1 cruds, 0 replies) in 1 batch(es)" in prod.stdout
    assert count(local, "activities") == 1

    for setting, message in [({"PURGE_GRACE": "soon"}, 'invalid input syntax for type interval: "soon"'),
                             ({"PURGE_GRACE": "-1 day"}, "grace must be a period of 0 or more"),
                             ({"PURGE_BATCH_SIZE": "0"}, "batch_size must be between 1 and 100000")]:
        refused = run_script("db-purge-expired", env={**env, **setting})
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert "error: the purge failed" in refused.stderr
    assert run_script("db-purge-expired", "--force-prod", env=env).returncode == 1


def test_schema_load_on_an_empty_prod_database_needs_no_override(pg, env):
    prod = create_database(pg, "scripts_prod")
    result = run_script("db-schema-load", "prod", env={**env, "PROD_CONNECTION_URL": prod})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_argument_lists_the_allowed_ones(env, script):
    result = run_script(script, "staging", env=env)
    assert result.returncode != 0
    assert "unknown argument 'staging'" in result.stderr
    assert "local, prod" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_unset_url_is_a_clear_error(script):
    result = run_script(script, env=script_env())
    assert result.returncode != 0
    assert "CONNECTION_URL is not set" in result.stderr


def test_unset_prod_url_is_a_clear_error(env):
    result = run_script("db-create", "prod", env=env)
    assert result.returncode != 0
    assert "PROD_CONNECTION_URL is not set" in result.stderr


@pytest.mark.parametrize("url,message", [
    ("mysql://u@127.0.0.1/cruddur", "must start with postgresql://"),
    ("postgresql://u@127.0.0.1:54x/cruddur", "port is not a number"),
    ("postgresql://u@127.0.0.1:5432", "names no database"),
])
def test_malformed_url_is_a_clear_error(url, message):
    result = run_script("db-create", env=script_env(CONNECTION_URL=url))
    assert result.returncode != 0
    assert message in result.stderr


def test_unreachable_server_is_a_clear_error():
    from support import free_port

    url = f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:{free_port()}/cruddur"
    result = run_script("db-setup", env=script_env(CONNECTION_URL=url))
    assert result.returncode != 0
    assert "cannot reach the local database server (postgres@127.0.0.1:" in result.stderr


def test_wrong_password_fails_without_printing_it(pg):
    url = pg.url("cruddur").replace(TEST_PASSWORD, TEST_PASSWORD + "-wrong")
    result = run_script("db-create", env=script_env(CONNECTION_URL=url))
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr
    assert "-wrong" not in result.stdout + result.stderr


def test_broken_sql_file_fails_the_script(pg, tmp_path):
    """A copy of the project whose schema.sql has an error part-way through."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "bin", copy / "bin")
    shutil.copytree(ROOT / "tools", copy / "tools")
    shutil.copytree(ROOT / "db" / "migrations", copy / "db" / "migrations")
    schema = (ROOT / "db" / "schema.sql").read_text()
    broken = "\nCREATE TABLE broken (;\nCREATE TABLE after_error (id int);\n"
    (copy / "db" / "schema.sql").write_text(schema + broken)
    shutil.copy(ROOT / "db" / "seed.sql", copy / "db" / "seed.sql")
    url = create_database(pg, "scripts_broken")
    result = subprocess.run([str(copy / "bin" / "db-setup")], env=script_env(CONNECTION_URL=url),
                            cwd="/", capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "syntax error" in result.stderr and "schema.sql" in result.stderr
    assert "db-seed" not in result.stdout  # it stopped at the first failure
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('after_error')").fetchone()[0] is None


def test_user_named_like_the_database_reaches_the_maintenance_database(pg):
    """The tutorial's sed 's/\\/cruddur//g' broke a master user called cruddurroot."""
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cruddur_maint WITH (FORCE)")
        conn.execute("DROP ROLE IF EXISTS cruddurroot")
        conn.execute(f"CREATE ROLE cruddurroot LOGIN CREATEDB PASSWORD '{TEST_PASSWORD}'")
    url = f"postgresql://cruddurroot:{TEST_PASSWORD}@127.0.0.1:{pg.port}/cruddur_maint"
    result = run_script("db-setup", env=script_env(CONNECTION_URL=url))
    assert result.returncode == 0, result.stderr
    assert count(url, "users") == 2


def test_password_with_special_characters(pg):
    password = TEST_PASSWORD + "#%:?"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cruddur_special WITH (FORCE)")
        conn.execute("DROP ROLE IF EXISTS special")
        conn.execute(psycopg.sql.SQL("CREATE ROLE special LOGIN CREATEDB PASSWORD {}").format(password))
    encoded = password.replace("%", "%25").replace("#", "%23").replace(":", "%3A").replace("?", "%3F")
    url = f"postgresql://special:{encoded}@127.0.0.1:{pg.port}/cruddur_special"
    result = run_script("db-setup", env=script_env(CONNECTION_URL=url))
    assert result.returncode == 0, result.stderr


def test_db_connect_runs_psql_on_the_database(env, local):
    run_script("db-setup", env=env)
    result = run_script("db-connect", "--", "-A", "-t", "-c", "SELECT handle FROM users ORDER BY handle",
                        env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bayko", "chrisfenton"]


def test_db_connect_takes_sql_on_stdin_and_stops_on_error(env, local):
    run_script("db-setup", env=env)
    result = run_script("db-connect", env=env, input="SELECT nope;\nSELECT 1;\n")
    assert result.returncode != 0
    assert 'column "nope" does not exist' in result.stderr
