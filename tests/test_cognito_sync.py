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
    assert "inserted 132, linked 0, skipped 3 (1 already in users, 2 unconfirmed), failed 0" in first.stdout
    assert rows(db_url) == expected

    again = sync(pool, "local", CONNECTION_URL=db_url)
    assert again.returncode == 0, again.stderr
    assert "inserted 0, linked 0, skipped 135 (133 already in users, 2 unconfirmed), failed 0" in again.stdout
    assert rows(db_url) == expected


def test_users_that_cannot_be_saved_are_named_and_fail_the_run(pool, db_url):
    good = {admin_created(pool, "alice"): "alice", admin_created(pool, "bob"): "bob"}
    admin_created(pool, "nohandle", drop=["preferred_username"])
    admin_created(pool, "taken")
    with psycopg.connect(db_url) as conn:  # another Cognito user (of another pool) holds the handle
        conn.execute("INSERT INTO users (display_name, email, handle, cognito_user_id)"
                     " VALUES ('T', 't@x.test', 'Taken', 'sub-from-elsewhere')")

    result = sync(pool, CONNECTION_URL=db_url)

    assert result.returncode == 1
    assert "not saved: nohandle: the user attribute 'preferred_username' is missing or empty" in result.stderr
    assert "not saved: taken: the handle 'taken' is already taken by another user" in result.stderr
    assert "inserted 2, linked 0, skipped 0 (0 already in users, 0 unconfirmed), failed 2" in result.stdout
    assert rows(db_url) == {**good, "sub-from-elsewhere": "Taken"}


def seed(url):
    """bin/db-seed: chrisfenton and bayko, no Cognito user, and chrisfenton's crud."""
    result = run_script("db-seed", env=script_env(CONNECTION_URL=url))
    assert result.returncode == 0, result.stderr


def full_rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT u.*, (SELECT array_agg(a.uuid) FROM activities a"
                            "               WHERE a.user_uuid = u.uuid)"
                            " FROM users u ORDER BY handle").fetchall()


def test_seeded_users_are_linked_by_preferred_username(pool, db_url):
    seed(db_url)
    seeded = {row[3]: row for row in full_rows(db_url)}  # by handle
    chris = admin_created(pool, "chrisfenton")
    bayko = signed_up(pool, "Bayko")  # handles are case-insensitive: this is bayko
    alice = admin_created(pool, "alice")

    result = sync(pool, CONNECTION_URL=db_url)

    assert result.returncode == 0, result.stderr
    assert "linked: chrisfenton to the existing @chrisfenton" in result.stdout
    assert "linked: Bayko to the existing @bayko" in result.stdout
    assert "inserted 1, linked 2, skipped 0 (0 already in users, 0 unconfirmed), failed 0" in result.stdout
    assert rows(db_url) == {chris: "chrisfenton", bayko: "bayko", alice: "alice"}
    after = {row[3]: row for row in full_rows(db_url)}
    for handle in ("chrisfenton", "bayko"):  # the same rows, their cruds still theirs
        assert (after[handle][0], after[handle][-1]) == (seeded[handle][0], seeded[handle][-1])
    assert after["chrisfenton"][1:3] == ("Chrisfenton", "chrisfenton@example.com")  # Cognito's now

    again = sync(pool, CONNECTION_URL=db_url)
    assert "inserted 0, linked 0, skipped 3 (3 already in users, 0 unconfirmed), failed 0" in again.stdout


def test_dry_run_prints_what_it_would_insert_and_link_and_changes_nothing(pool, db_url):
    seed(db_url)
    admin_created(pool, "chrisfenton")
    admin_created(pool, "ChrisFenton2")
    admin_created(pool, "alice")
    signed_up(pool, "dave", confirm=False)
    impostor = [*attributes("impostor", drop=["preferred_username"]),  # chrisfenton's handle, spelt
                {"Name": "preferred_username", "Value": "CHRISFENTON"}]  # otherwise
    pool["cognito"].admin_create_user(UserPoolId=pool["id"], Username="impostor", MessageAction="SUPPRESS",
                                      UserAttributes=impostor)
    before = full_rows(db_url)

    dry = sync(pool, "--dry-run", CONNECTION_URL=db_url)

    assert full_rows(db_url) == before
    assert "(dry run: nothing is changed)" in dry.stdout
    assert "would link: chrisfenton (@chrisfenton)" in dry.stdout
    assert "would insert: alice (@alice)" in dry.stdout
    assert "would insert: ChrisFenton2 (@ChrisFenton2)" in dry.stdout
    assert "would fail: impostor: the handle 'CHRISFENTON' is already taken by another user" in dry.stderr
    assert "dry run: would insert 2, link 1, skip 1 (0 already in users, 1 unconfirmed), fail 1;" \
           " nothing was changed" in dry.stdout
    assert dry.returncode == 1  # as the real run will: a user cannot be saved

    real = sync(pool, CONNECTION_URL=db_url)
    assert "inserted 2, linked 1, skipped 1 (0 already in users, 1 unconfirmed), failed 1" in real.stdout
    assert "not saved: impostor" in real.stderr
    assert sorted(rows(db_url).values()) == ["ChrisFenton2", "alice", "bayko", "chrisfenton"]


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
    assert "inserted 1," in result.stdout


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
    assert "inserted 1," in result.stdout
