"""bin/cognito-sync-users: moto's cognito-idp (more than one page of users) into a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from aws_support import client
from support import ROOT, TEST_PASSWORD, create_database, free_port, load_schema, run_script, script_env

PASSWORD = "Cruddur-Pa55word!"  # the Cognito users' (moto's): not a secret of ours


@pytest.fixture(scope="module")
def sync_db(pg):
    url = create_database(pg, "cognito_sync_test")
    load_schema(url)
    return url


@pytest.fixture
def db_url(sync_db):
    with psycopg.connect(sync_db, autocommit=True) as conn:
        conn.execute("TRUNCATE users CASCADE")
    return sync_db


@pytest.fixture
def pool(moto):
    """A user pool of the test's own (so no reset of moto is needed)."""
    cognito = client(moto, "cognito-idp")
    pool_id = cognito.create_user_pool(PoolName="cruddur-user-pool", AutoVerifiedAttributes=["email"])
    pool_id = pool_id["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="web")
    client_id = client_id["UserPoolClient"]["ClientId"]
    return {"cognito": cognito, "id": pool_id, "client": client_id, "aws": moto}


def attributes(handle, drop=()):
    values = {"name": handle.title(), "email": f"{handle}@example.com", "preferred_username": handle}
    return [{"Name": k, "Value": v} for k, v in values.items() if k not in drop]


def sub_of(user_attributes):
    return next(a["Value"] for a in user_attributes if a["Name"] == "sub")


def admin_created(pool, handle, drop=()):
    """A user an administrator made (FORCE_CHANGE_PASSWORD): the trigger never runs for these."""
    user = pool["cognito"].admin_create_user(UserPoolId=pool["id"], Username=handle, MessageAction="SUPPRESS",
                                             UserAttributes=attributes(handle, drop))["User"]
    return sub_of(user["Attributes"])


def signed_up(pool, handle, confirm=True):
    """A user who signed up (UNCONFIRMED), and confirmed (CONFIRMED) unless told otherwise."""
    cognito = pool["cognito"]
    cognito.sign_up(ClientId=pool["client"], Username=handle, Password=PASSWORD,
                    UserAttributes=attributes(handle))
    if confirm:
        cognito.admin_confirm_sign_up(UserPoolId=pool["id"], Username=handle)
    return sub_of(cognito.admin_get_user(UserPoolId=pool["id"], Username=handle)["UserAttributes"])


def sync(pool, *args, **env):
    settings = {**pool["aws"], "AWS_COGNITO_USER_POOL_ID": pool["id"], **env}
    return run_script("cognito-sync-users", *args, env=script_env(**settings), timeout=120)


def rows(url):
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT cognito_user_id, handle FROM users").fetchall())


def test_backfills_every_page_of_users_and_is_idempotent(pool, db_url):
    expected = {admin_created(pool, f"user{i:03d}"): f"user{i:03d}" for i in range(130)}  # 3 pages
    expected |= {signed_up(pool, handle): handle for handle in ("alice", "bob", "carol")}
    signed_up(pool, "dave", confirm=False)
    signed_up(pool, "erin", confirm=False)
    with psycopg.connect(db_url) as conn:  # carol is there already (the trigger ran for her)
        conn.execute("INSERT INTO users (display_name, email, handle, cognito_user_id)"
                     " VALUES ('Carol', 'carol@example.com', 'carol', %s)",
                     (next(s for s, h in expected.items() if h == "carol"),))

    first = sync(pool, CONNECTION_URL=db_url)

    assert first.returncode == 0, first.stderr
    assert "added 132, skipped 3 (1 already in users, 2 unconfirmed), failed 0" in first.stdout
    assert rows(db_url) == expected

    again = sync(pool, "local", CONNECTION_URL=db_url)
    assert again.returncode == 0, again.stderr
    assert "added 0, skipped 135 (133 already in users, 2 unconfirmed), failed 0" in again.stdout
    assert rows(db_url) == expected


def test_users_that_cannot_be_added_are_named_and_fail_the_run(pool, db_url):
    good = {admin_created(pool, "alice"): "alice", admin_created(pool, "bob"): "bob"}
    admin_created(pool, "nohandle", drop=["preferred_username"])
    admin_created(pool, "seeded")
    with psycopg.connect(db_url) as conn:  # a seed user holds the handle
        conn.execute("INSERT INTO users (display_name, email, handle) VALUES ('S', 's@x.test', 'seeded')")

    result = sync(pool, CONNECTION_URL=db_url)

    assert result.returncode == 1
    assert "not added: nohandle: the user attribute 'preferred_username' is missing or empty" in result.stderr
    assert "not added: seeded: the handle 'seeded' is already taken by another user" in result.stderr
    assert "added 2, skipped 0 (0 already in users, 0 unconfirmed), failed 2" in result.stdout
    assert {k: v for k, v in rows(db_url).items() if k} == good


def test_prod_uses_prod_connection_url(pool, db_url):
    sub = admin_created(pool, "alice")
    dead = f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:{free_port()}/cruddur"

    result = sync(pool, "prod", CONNECTION_URL=dead, PROD_CONNECTION_URL=db_url)

    assert result.returncode == 0, result.stderr
    assert "== cognito-sync-users prod: pool " in result.stdout
    assert rows(db_url) == {sub: "alice"}


def test_user_pool_id_option_wins_over_the_environment(pool, db_url):
    admin_created(pool, "alice")
    result = sync(pool, "--user-pool-id", pool["id"], CONNECTION_URL=db_url, AWS_COGNITO_USER_POOL_ID=None)
    assert result.returncode == 0, result.stderr
    assert "added 1," in result.stdout


@pytest.mark.parametrize(("args", "env", "message"), [
    ([], {"CONNECTION_URL": None}, "CONNECTION_URL is not set"),
    (["prod"], {"PROD_CONNECTION_URL": None}, "PROD_CONNECTION_URL is not set"),
    ([], {"AWS_COGNITO_USER_POOL_ID": None}, "no user pool: set AWS_COGNITO_USER_POOL_ID"),
    (["--user-pool-id", "us-east-1_Nope"], {}, "cannot list the users of pool us-east-1_Nope"),
    ([], {"CONNECTION_URL": "dead"}, "cannot connect to postgres@127.0.0.1:"),
    (["staging"], {}, "invalid choice: 'staging'"),
])
def test_bad_input_is_a_clear_error(pool, db_url, args, env, message):
    if env.get("CONNECTION_URL") == "dead":
        env = {"CONNECTION_URL": f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:{free_port()}/cruddur"}
    result = sync(pool, *args, **{"CONNECTION_URL": db_url, **env})
    assert result.returncode != 0
    assert message in result.stderr


def test_runs_itself_under_the_venv_from_a_python_without_boto3(pool, db_url):
    bare = [python for python in ("/usr/bin/python3", str(Path(sys.base_prefix) / "bin" / "python3"))
            if Path(python).exists()
            and subprocess.run([python, "-c", "import boto3, psycopg2"], capture_output=True).returncode]
    if not bare:
        pytest.skip("every python3 here has boto3 and psycopg2: nothing to prove")
    base = bare[0]
    admin_created(pool, "alice")
    env = script_env(**pool["aws"], AWS_COGNITO_USER_POOL_ID=pool["id"], CONNECTION_URL=db_url)
    result = subprocess.run([base, str(ROOT / "bin" / "cognito-sync-users")], env=env,
                            capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "added 1," in result.stdout
