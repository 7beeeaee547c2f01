"""lambdas/cruddur-post-confirmation.py against a real PostgreSQL, with the events Cognito sends.

Moto never runs Cognito triggers, so the handler is called directly, the way the Lambda runtime
calls it: one loaded module per execution environment, its connection kept between invocations.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psycopg
import psycopg.sql
import pytest

from aws_support import client as aws_client
from support import (
    ROOT,
    TEST_PASSWORD,
    LocalPostgres,
    create_database,
    free_port,
    load_schema,
    run_script,
    script_env,
)

HANDLER = ROOT / "lambdas" / "cruddur-post-confirmation.py"
SIGN_UP = "PostConfirmation_ConfirmSignUp"
FORGOT_PASSWORD = "PostConfirmation_ConfirmForgotPassword"
REQUIRED = ["sub", "email", "name", "preferred_username"]
BUDGET_S = 5  # what Cognito waits


def load_handler():
    """A fresh copy of the handler module: what one Lambda execution environment holds."""
    spec = importlib.util.spec_from_file_location(f"post_confirmation_{uuid.uuid4().hex}", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cognito_event(handle="andrewbrown", *, sub=None, source=SIGN_UP, name=None, drop=(), **extra):
    """A post-confirmation event as Cognito sends it (a pool whose sign-in name is the email)."""
    sub = sub or str(uuid.uuid4())
    attributes = {
        "sub": sub,
        "email_verified": "true",
        "cognito:user_status": "CONFIRMED",
        "name": name or handle.title(),
        "preferred_username": handle,
        "email": f"{handle}@example.com",
        **extra,
    }
    for key in drop:
        attributes.pop(key)
    return {
        "version": "1",
        "region": "us-east-1",
        "userPoolId": "us-east-1_Cruddur01",
        "userName": sub,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown",
                          "clientId": "5p2tbj5kc6b2ahcvq1en6fjqe0"},
        "triggerSource": source,
        "request": {"userAttributes": attributes},
        "response": {},
    }


def invoke(module, event):
    """Invoke like the runtime; check the event comes back as it went in."""
    before = copy.deepcopy(event)
    result = module.lambda_handler(event, None)
    assert result is event and result == before
    return result


def users(url):
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT display_name, email, handle, cognito_user_id, uuid::text, created_at"
            " FROM users ORDER BY handle").fetchall()


@pytest.fixture(scope="module")
def lambda_db(pg):
    url = create_database(pg, "lambda_test")
    load_schema(url)
    assert TEST_PASSWORD in url  # so the checks below mean something
    return url


@pytest.fixture
def db_url(lambda_db):
    with psycopg.connect(lambda_db, autocommit=True) as conn:
        conn.execute("TRUNCATE users CASCADE")
    return lambda_db


@pytest.fixture(autouse=True)
def logs(caplog):
    """The handler's log; it must never hold the password."""
    caplog.set_level(logging.INFO, logger="cruddur.post_confirmation")
    yield caplog
    assert TEST_PASSWORD not in caplog.text


@pytest.fixture
def handler(db_url, monkeypatch):
    monkeypatch.setenv("CONNECTION_URL", db_url)
    module = load_handler()
    yield module
    module._forget_connection()


def test_sign_up_inserts_one_row(handler, db_url, logs):
    event = cognito_event("andrewbrown", name="Andrew Brown")
    sub = event["request"]["userAttributes"]["sub"]

    invoke(handler, event)

    [row] = users(db_url)
    assert row[:4] == ("Andrew Brown", "andrewbrown@example.com", "andrewbrown", sub)
    assert f"added user {sub} (@andrewbrown)" in logs.text
    assert "andrewbrown@example.com" not in logs.text  # no e-mail addresses in the log


def test_a_long_name_is_trimmed_and_cut_to_what_users_holds(handler, db_url):
    """Cognito's name may be longer than a display name may be (users_display_name_length): the
    user is saved with its first 50 characters, not refused."""
    invoke(handler, cognito_event("longname", name="  " + "\u00c4" * 60 + " "))
    [row] = users(db_url)
    assert row[0] == "\u00c4" * 50


def test_repeated_event_inserts_nothing(handler, db_url, logs):
    event = cognito_event("andrewbrown")
    invoke(handler, event)
    first = users(db_url)

    for _ in range(3):  # Cognito retries a slow or failed trigger up to 3 times
        invoke(handler, copy.deepcopy(event))
    invoke(load_handler(), copy.deepcopy(event))  # a retry may land in another environment

    assert users(db_url) == first
    assert logs.text.count("was already in users") == 4


def test_same_user_with_another_handle_is_already_there(handler, db_url):
    event = cognito_event("andrewbrown")
    invoke(handler, event)
    renamed = copy.deepcopy(event)
    renamed["request"]["userAttributes"]["preferred_username"] = "andrew2"

    invoke(handler, renamed)

    assert [row[2] for row in users(db_url)] == ["andrewbrown"]


def test_forgot_password_touches_nothing(handler, db_url, monkeypatch):
    event = cognito_event("andrewbrown")
    invoke(handler, event)
    before = users(db_url)
    reset = copy.deepcopy(event)
    reset["triggerSource"] = FORGOT_PASSWORD
    reset["request"]["userAttributes"]["name"] = "Someone Else"

    invoke(handler, reset)
    invoke(handler, cognito_event("newcomer", source=FORGOT_PASSWORD))

    assert users(db_url) == before


def test_forgot_password_does_not_even_connect(db_url, monkeypatch):
    monkeypatch.setenv("CONNECTION_URL", f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:1/cruddur")
    module = load_handler()
    invoke(module, cognito_event("newcomer", source=FORGOT_PASSWORD))
    assert module._connection is None


@pytest.mark.parametrize("how", ["absent", "empty"])
@pytest.mark.parametrize("attribute", REQUIRED)
def test_missing_attribute_is_an_error_naming_it(handler, db_url, logs, attribute, how):
    if how == "absent":
        event = cognito_event("andrewbrown", drop=[attribute])
    else:
        event = cognito_event("andrewbrown", **{attribute: " "})

    with pytest.raises(handler.MissingAttributeError) as raised:
        handler.lambda_handler(event, None)

    assert f"'{attribute}'" in str(raised.value)
    assert raised.value.attribute == attribute
    assert f"'{attribute}' is missing or empty" in logs.text
    assert users(db_url) == []
    assert handler._connection is None  # checked before touching the database


def test_event_without_user_attributes_is_an_error(handler):
    event = cognito_event("andrewbrown")
    del event["request"]["userAttributes"]
    with pytest.raises(handler.MissingAttributeError, match="userAttributes"):
        handler.lambda_handler(event, None)


def test_handle_taken_by_another_user_is_a_clear_error(handler, db_url, logs):
    invoke(handler, cognito_event("andrewbrown"))
    before = users(db_url)

    with pytest.raises(handler.HandleTakenError) as raised:
        handler.lambda_handler(cognito_event("andrewbrown"), None)

    assert str(raised.value) == "the handle 'andrewbrown' is already taken by another user"
    assert "already taken" in logs.text
    assert users(db_url) == before
    invoke(handler, cognito_event("bayko"))  # the connection is still good


def seed_user(url, handle="chrisfenton", cognito_user_id=None):
    """A users row as db/seed.sql makes them (no Cognito user) and one activity of it: its uuid."""
    with psycopg.connect(url) as conn:
        user = conn.execute("INSERT INTO users (display_name, email, handle, cognito_user_id)"
                            " VALUES ('Seeded Name', 'seed@example.com', %s, %s) RETURNING uuid::text",
                            (handle, cognito_user_id)).fetchone()[0]
        conn.execute("INSERT INTO activities (user_uuid, message, expires_at)"
                     " VALUES (%s, 'seeded crud', now() + interval '1 day')", (user,))
    return user


def test_sign_up_with_the_handle_of_a_seed_user_links_its_row(handler, db_url, logs):
    seeded = seed_user(db_url)
    [before] = users(db_url)
    event = cognito_event("chrisfenton", name="Chris Fenton")
    sub = event["request"]["userAttributes"]["sub"]

    invoke(handler, event)

    [row] = users(db_url)
    assert row[:4] == ("Chris Fenton", "chrisfenton@example.com", "chrisfenton", sub)
    assert row[4:] == before[4:] == (seeded, before[5])  # the same row: uuid, created_at kept
    with psycopg.connect(db_url) as conn:  # its activities are the signed-up user's now
        assert conn.execute("SELECT u.cognito_user_id FROM activities a JOIN users u ON u.uuid = a.user_uuid"
                            ).fetchall() == [(sub,)]
    assert f"linked user {sub} to the existing @chrisfenton" in logs.text


def test_a_linked_user_delivered_again_changes_nothing(handler, db_url, logs):
    seed_user(db_url)
    event = cognito_event("chrisfenton")
    invoke(handler, event)
    first = users(db_url)

    invoke(handler, copy.deepcopy(event))
    invoke(load_handler(), copy.deepcopy(event))  # a retry may land in another environment

    assert users(db_url) == first
    assert logs.text.count("linked user") == 1
    assert logs.text.count("was already in users") == 2


def test_a_seed_row_linked_to_another_user_is_taken_and_unchanged(handler, db_url, logs):
    seed_user(db_url, cognito_user_id="sub-of-the-first-chris")
    before = users(db_url)

    with pytest.raises(handler.HandleTakenError) as raised:
        handler.lambda_handler(cognito_event("chrisfenton"), None)

    assert str(raised.value) == "the handle 'chrisfenton' is already taken by another user"
    assert users(db_url) == before
    assert "linked user" not in logs.text


def test_handles_are_case_insensitive(handler, db_url):
    """`ChrisFenton` is `chrisfenton`: it links the seed row (whose spelling stays), and a second
    Cognito user cannot take the handle in any case."""
    seed_user(db_url, "chrisfenton")
    event = cognito_event("ChrisFenton")
    sub = event["request"]["userAttributes"]["sub"]

    invoke(handler, event)
    assert [(row[2], row[3]) for row in users(db_url)] == [("chrisfenton", sub)]

    for spelling in ("CHRISFENTON", "chrisfenton"):
        with pytest.raises(handler.HandleTakenError):
            handler.lambda_handler(cognito_event(spelling), None)
    invoke(handler, cognito_event("Bayko"))
    with pytest.raises(handler.HandleTakenError, match="'bayko'"):
        handler.lambda_handler(cognito_event("bayko"), None)
    assert [row[2] for row in users(db_url)] == ["Bayko", "chrisfenton"]


def test_a_user_already_saved_under_another_handle_links_nothing(handler, db_url):
    event = cognito_event("andrewbrown")
    invoke(handler, event)
    seed_user(db_url, "bayko")
    renamed = copy.deepcopy(event)  # the same Cognito user, now with the seed user's handle
    renamed["request"]["userAttributes"]["preferred_username"] = "bayko"

    invoke(handler, renamed)

    rows = {row[2]: row[3] for row in users(db_url)}
    assert rows == {"andrewbrown": event["userName"], "bayko": None}


def race(db_url, monkeypatch, events):
    """Each event in an execution environment of its own, all at once: [(event, error or None)]."""
    monkeypatch.setenv("CONNECTION_URL", db_url)
    environments = [load_handler() for _ in events]
    start = threading.Barrier(len(events))

    def run(module, event):
        start.wait()
        try:
            invoke(module, event)
        except Exception as err:  # the test counts them
            return event, err
        finally:
            module._forget_connection()
        return event, None

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(run, environments, events))


def test_concurrent_deliveries_of_one_sign_up_link_the_seed_row_once(db_url, monkeypatch):
    seeded = seed_user(db_url)
    event = cognito_event("chrisfenton")

    results = race(db_url, monkeypatch, [copy.deepcopy(event) for _ in range(6)])

    assert [error for _, error in results] == [None] * 6
    [row] = users(db_url)
    assert (row[3], row[4]) == (event["userName"], seeded)


def test_concurrent_sign_ups_for_one_seeded_handle_link_it_to_one_user(db_url, monkeypatch):
    seed_user(db_url)
    events = [cognito_event("chrisfenton" if i % 2 else "ChrisFenton") for i in range(6)]

    results = race(db_url, monkeypatch, events)

    winners = [event["userName"] for event, error in results if error is None]
    assert len(winners) == 1
    assert all(type(error).__name__ == "HandleTakenError" for _, error in results if error is not None)
    [row] = users(db_url)
    assert row[3] == winners[0]


def test_connection_is_reused_and_remade_when_closed(handler, db_url):
    invoke(handler, cognito_event("first"))
    conn = handler._connection
    pid = conn.get_backend_pid()

    invoke(handler, cognito_event("second"))
    assert handler._connection is conn  # warm invocation, same connection

    conn.close()
    invoke(handler, cognito_event("third"))
    assert handler._connection is not conn and not handler._connection.closed
    assert handler._connection.get_backend_pid() != pid
    assert [row[2] for row in users(db_url)] == ["first", "second", "third"]


def test_connection_killed_by_the_server_is_remade(handler, db_url, logs):
    invoke(handler, cognito_event("first"))
    pid = handler._connection.get_backend_pid()
    with psycopg.connect(db_url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    invoke(handler, cognito_event("second"))  # RDS restarted, or closed an idle connection

    assert handler._connection.get_backend_pid() != pid
    assert "reconnecting" in logs.text
    assert [row[2] for row in users(db_url)] == ["first", "second"]


def test_timeouts_are_set_on_the_connection(handler):
    invoke(handler, cognito_event("first"))
    with handler._connection.cursor() as cur:
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),"
                    " current_setting('application_name')")
        assert cur.fetchone() == ("1s", "1s", "cruddur-post-confirmation")


def assert_fails_fast(module, event, started):
    with pytest.raises(module.DatabaseError) as raised:
        module.lambda_handler(event, None)
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_S - 0.5, f"took {elapsed:.1f}s"
    for text in (str(raised.value), raised.value.detail):
        assert TEST_PASSWORD not in text
    return raised.value


def test_database_refusing_connections_raises_fast(db_url, monkeypatch, logs):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("CONNECTION_URL", f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:{port}/cruddur")
    module = load_handler()

    error = assert_fails_fast(module, cognito_event("andrewbrown"), time.monotonic())

    assert f"cannot connect to postgres@127.0.0.1:{port}/cruddur" in error.detail
    assert "127.0.0.1" not in str(error)  # what Cognito shows the client names no host
    assert "failed: cannot connect" in logs.text


def test_database_that_never_answers_raises_within_the_budget(db_url, monkeypatch):
    with socket.socket() as silent:  # accepts connections (the kernel does) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        monkeypatch.setenv("CONNECTION_URL", f"postgresql://postgres:{TEST_PASSWORD}@127.0.0.1:{port}/x")
        module = load_handler()

        started = time.monotonic()
        error = assert_fails_fast(module, cognito_event("andrewbrown"), started)

    assert time.monotonic() - started >= 1.5  # it did wait for the connect timeout
    assert "timeout" in error.detail


def test_blocked_insert_times_out_within_the_budget(handler, db_url):
    invoke(handler, cognito_event("first"))  # warm
    with psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        error = assert_fails_fast(handler, cognito_event("blocked"), time.monotonic())
        locker.rollback()

    assert "statement timeout" in error.detail
    invoke(handler, cognito_event("blocked"))  # Cognito's retry goes through on the same connection
    assert [row[2] for row in users(db_url)] == ["blocked", "first"]


def test_database_going_down_raises_fast_and_recovers(tmp_path, monkeypatch, logs):
    server = LocalPostgres(tmp_path / "data", free_port(), password=TEST_PASSWORD, ephemeral=True)
    server.start()
    try:
        url = create_database(server, "cruddur")
        load_schema(url)
        monkeypatch.setenv("CONNECTION_URL", url)
        module = load_handler()
        invoke(module, cognito_event("first"))  # a warm connection

        server.stop()
        assert_fails_fast(module, cognito_event("second"), time.monotonic())
        assert_fails_fast(module, cognito_event("second"), time.monotonic())  # cold path too

        server.start()
        invoke(module, cognito_event("second"))
        assert [row[2] for row in users(url)] == ["first", "second"]
        module._forget_connection()
    finally:
        server.destroy()


def test_missing_connection_url_is_a_clear_error(db_url, monkeypatch):
    monkeypatch.delenv("CONNECTION_URL", raising=False)
    module = load_handler()
    with pytest.raises(module.ConfigurationError, match="CONNECTION_URL is not set"):
        module.lambda_handler(cognito_event("andrewbrown"), None)


def test_malformed_url_never_echoes_the_password(db_url, monkeypatch):
    monkeypatch.setenv("CONNECTION_URL", f"postgresql://postgres:{TEST_PASSWORD}%zz@127.0.0.1/cruddur")
    module = load_handler()
    with pytest.raises(module.DatabaseError) as raised:
        module.lambda_handler(cognito_event("andrewbrown"), None)
    assert "not a valid PostgreSQL URL" in raised.value.detail
    assert TEST_PASSWORD not in raised.value.detail


def test_twenty_concurrent_sign_ups_all_land(db_url, monkeypatch):
    monkeypatch.setenv("CONNECTION_URL", db_url)
    environments = [load_handler() for _ in range(20)]  # Lambda runs each in its own environment
    events = [cognito_event(f"user{i:02d}") for i in range(20)]
    start = threading.Barrier(20)

    def run(module, event):
        start.wait()
        return invoke(module, event)

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(run, environments, events))

    rows = users(db_url)
    assert [row[2] for row in rows] == [f"user{i:02d}" for i in range(20)]
    assert {row[3] for row in rows} == {e["request"]["userAttributes"]["sub"] for e in events}
    for module in environments:
        module._forget_connection()


def test_a_retry_racing_the_first_call_is_still_one_row(db_url, monkeypatch):
    monkeypatch.setenv("CONNECTION_URL", db_url)
    environments = [load_handler() for _ in range(6)]
    event = cognito_event("racer")
    start = threading.Barrier(len(environments))

    def run(module):
        start.wait()
        return invoke(module, copy.deepcopy(event))

    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        list(pool.map(run, environments))  # none raises

    assert len(users(db_url)) == 1
    for module in environments:
        module._forget_connection()


# --- a seeded chrisfenton signs up: the documented flow, end to end --------------------------


def test_seeded_chrisfenton_signs_up_and_replies_as_chrisfenton(client, db, cognito, app_db_url, monkeypatch):
    """bin/db-seed, then Cognito confirms `ChrisFenton`'s sign-up: the Lambda links the seed row,
    and a token with the new user's sub posts as @chrisfenton, on the seed crud."""
    seeded = run_script("db-seed", env=script_env(CONNECTION_URL=app_db_url))
    assert seeded.returncode == 0, seeded.stderr
    [(crud,)] = db.execute("SELECT a.uuid::text FROM activities a JOIN users u ON u.uuid = a.user_uuid"
                           " WHERE u.handle = 'chrisfenton'").fetchall()
    monkeypatch.setenv("CONNECTION_URL", app_db_url)
    module = load_handler()
    event = cognito_event("ChrisFenton", name="Chris Fenton")
    sub = event["request"]["userAttributes"]["sub"]
    records = []
    handler_log = logging.getLogger("cruddur.post_confirmation")
    keep = logging.Handler()
    keep.emit = lambda record: records.append(record.getMessage())
    handler_log.addHandler(keep)
    try:
        invoke(module, event)
    finally:
        handler_log.removeHandler(keep)
        module._forget_connection()

    reply = client.post(f"/api/activities/{crud}/reply", json={"message": "I signed up!"},
                        headers=cognito.headers(sub))
    assert reply.status_code == 200, reply.text
    assert (reply.json()["handle"], reply.json()["display_name"]) == ("chrisfenton", "Chris Fenton")
    profile = client.get("/api/activities/@ChrisFenton")  # the API, too: one handle in any case
    assert profile.status_code == 200, profile.text
    assert [item["uuid"] for item in profile.json()["activities"]] == [crud]
    short = client.get("/api/users/@CHRISFENTON/short")
    assert (short.status_code, short.json()["handle"]) == (200, "chrisfenton")
    status = client.get(f"/api/activities/@chrisFenton/status/{crud}")
    assert (status.status_code, status.json()["activity"]["handle"]) == (200, "chrisfenton")
    assert db.execute("SELECT count(*), count(cognito_user_id) FROM users WHERE lower(handle) = 'chrisfenton'"
                      ).fetchone() == (1, 1)
    print("\n".join(["", f"$ bin/db-seed  -> {seeded.stdout.strip().splitlines()[-1]}",
                     *[f"lambda: {line}" for line in records],
                     f"POST /api/activities/{crud}/reply as sub {sub} -> {reply.status_code}"
                     f" @{reply.json()['handle']}: {reply.json()['message']!r}",
                     f"GET /api/activities/@ChrisFenton -> {profile.status_code}, "
                     f"{profile.json()['profile']['handle']}'s {len(profile.json()['activities'])} crud"]))


# --- credentials from Secrets Manager ----------------------------------------------------------


@pytest.fixture
def lambda_role(lambda_db):
    """A login role of the Lambda's own, whose password the tests change (rotate): (name, password)."""
    name = f"cruddur_lambda_{uuid.uuid4().hex[:8]}"
    password = f"{TEST_PASSWORD}-first"  # holds the session's password: the leak checks see it
    with psycopg.connect(lambda_db, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            psycopg.sql.Identifier(name), password))
        conn.execute(psycopg.sql.SQL("GRANT SELECT, INSERT, UPDATE ON users TO {}").format(
            psycopg.sql.Identifier(name)))
    yield name, password
    with psycopg.connect(lambda_db, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(name)))
        conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(name)))


def set_password(url, role, password):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            psycopg.sql.Identifier(role), password))


class Secrets:
    """Secrets Manager on moto, and the handler's environment pointed at it."""

    def __init__(self, moto, db_url, monkeypatch):
        self.client = aws_client(moto, "secretsmanager")
        self.moto, self.monkeypatch = moto, monkeypatch
        parts = urlsplit(db_url)
        self.location = {"host": parts.hostname, "port": parts.port, "dbname": parts.path.lstrip("/")}
        for key, value in moto.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("CONNECTION_URL", raising=False)
        self.modules = []
        # moto is slow to answer its first GetSecretValue (it loads what it needs): not what the
        # tests measure
        self.client.get_secret_value(SecretId=self.make({"warm": "up"}))

    def make(self, values) -> str:
        """A secret holding `values` (a JSON object, or a string as it is); its ARN."""
        text = values if isinstance(values, str) else json.dumps(values)
        name = f"cruddur/test-{uuid.uuid4().hex[:8]}"
        return self.client.create_secret(Name=name, SecretString=text)["ARN"]

    def rds_shaped(self, role, password, **extra) -> str:
        """A secret as RDS writes one for rotation: engine, host, port, dbname, username, password."""
        return self.make({"engine": "postgres", **self.location, "username": role, "password": password,
                          **extra})

    def handler(self, arn, **env):
        """A fresh execution environment with DB_SECRET_ARN=arn."""
        self.monkeypatch.setenv("DB_SECRET_ARN", arn)
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        module = load_handler()
        self.modules.append(module)
        return module


@pytest.fixture
def secrets(moto, db_url, monkeypatch):
    helper = Secrets(moto, db_url, monkeypatch)
    yield helper
    for module in helper.modules:
        module._forget_connection()


def reads(logs) -> int:
    """How many times the handler read the secret."""
    return logs.text.count("read the database credentials")


def current_user(module) -> str:
    with module._connection.cursor() as cur:
        cur.execute("SELECT current_user")
        return cur.fetchone()[0]


def test_credentials_from_a_secret_save_the_user(secrets, lambda_role, db_url, logs):
    role, password = lambda_role
    arn = secrets.rds_shaped(role, password)
    module = secrets.handler(arn)

    invoke(module, cognito_event("andrewbrown"))

    assert [row[2] for row in users(db_url)] == ["andrewbrown"]
    assert current_user(module) == role
    assert f"from secret {arn}" in logs.text and reads(logs) == 1
    assert password not in logs.text


def test_a_secret_rds_manages_holds_only_the_user_the_rest_comes_from_the_environment(
        secrets, lambda_role, db_url):
    role, password = lambda_role
    arn = secrets.make({"username": role, "password": password})  # the shape of RDS's master secret
    location = secrets.location
    module = secrets.handler(arn, DB_HOST=location["host"], DB_PORT=str(location["port"]),
                             DB_NAME=location["dbname"])

    invoke(module, cognito_event("andrewbrown"))

    assert [row[2] for row in users(db_url)] == ["andrewbrown"]
    assert current_user(module) == role


def test_the_secret_is_read_once_per_execution_environment(secrets, lambda_role, db_url, logs):
    arn = secrets.rds_shaped(*lambda_role)
    module = secrets.handler(arn)
    invoke(module, cognito_event("first"))
    with psycopg.connect(db_url) as admin:  # the warm connection dies; its remake uses what was read
        admin.execute("SELECT pg_terminate_backend(%s)", (module._connection.get_backend_pid(),))

    invoke(module, cognito_event("second"))
    invoke(module, cognito_event("third"))

    assert reads(logs) == 1
    assert len(users(db_url)) == 3


def test_after_a_rotation_the_next_invocation_reads_the_secret_again(secrets, lambda_role, db_url, logs):
    role, password = lambda_role
    arn = secrets.rds_shaped(role, password)
    module = secrets.handler(arn)
    invoke(module, cognito_event("first"))
    assert reads(logs) == 1

    # what a rotation does: a new password in the database and as the secret's current version
    rotated = f"{TEST_PASSWORD}-rotated"
    set_password(db_url, role, rotated)
    secrets.client.put_secret_value(SecretId=arn, SecretString=json.dumps(
        {"engine": "postgres", **secrets.location, "username": role, "password": rotated}))
    invoke(module, cognito_event("second"))  # the warm connection outlives the rotation
    assert reads(logs) == 1
    with psycopg.connect(db_url) as admin:  # until it closes (an idle timeout, a restart)
        admin.execute("SELECT pg_terminate_backend(%s)", (module._connection.get_backend_pid(),))

    started = time.monotonic()
    invoke(module, cognito_event("third"))

    assert time.monotonic() - started < BUDGET_S - 0.5
    assert reads(logs) == 2
    assert "refused the credentials kept from secret" in logs.text
    assert [row[2] for row in users(db_url)] == ["first", "second", "third"]
    assert rotated not in logs.text and password not in logs.text


def test_a_wrong_password_in_the_secret_fails_fast_naming_the_secret(secrets, lambda_role, db_url, logs):
    role, _ = lambda_role
    wrong = f"{TEST_PASSWORD}-wrong"
    arn = secrets.rds_shaped(role, wrong)
    module = secrets.handler(arn)

    error = assert_fails_fast(module, cognito_event("andrewbrown"), time.monotonic())

    assert f"with the credentials of secret {arn}" in error.detail
    assert "password authentication failed" in error.detail
    assert wrong not in error.detail and wrong not in logs.text
    assert arn not in str(error)  # what Cognito shows the client
    assert reads(logs) == 1  # just read: reading it again would not help
    assert users(db_url) == []


def test_a_rotation_the_secret_missed_fails_after_one_more_read(secrets, lambda_role, db_url, logs):
    role, password = lambda_role
    module = secrets.handler(secrets.rds_shaped(role, password))
    invoke(module, cognito_event("first"))
    set_password(db_url, role, f"{TEST_PASSWORD}-elsewhere")  # changed by hand, not in the secret
    with psycopg.connect(db_url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (module._connection.get_backend_pid(),))

    error = assert_fails_fast(module, cognito_event("second"), time.monotonic())

    assert "password authentication failed" in error.detail
    assert reads(logs) == 2


@pytest.mark.parametrize(("values", "env", "message"), [
    ("not json", {}, "is not a JSON object"),
    ('["a", "list"]', {}, "is not a JSON object"),
    ({"username": "u"}, {}, "has no 'password'"),
    ({"password": "PASSWORD"}, {}, "has no 'username'"),
    ({"username": "u", "password": "PASSWORD", "dbname": "d"}, {}, "has no 'host' and DB_HOST is not set"),
    ({"username": "u", "password": "PASSWORD", "host": "h"}, {}, "has no 'dbname' and DB_NAME is not set"),
    ({"username": "u", "password": "PASSWORD", "host": "h", "dbname": "d", "port": "54x"}, {},
     "is not a TCP port"),
    ({"username": "u", "password": "PASSWORD", "host": "h", "dbname": "d"}, {"DB_PORT": "0"},
     "is not a TCP port"),
])
def test_a_secret_of_the_wrong_shape_is_a_clear_error(secrets, values, env, message, logs):
    if isinstance(values, dict) and "password" in values:
        values = {**values, "password": f"{TEST_PASSWORD}-shape"}
    arn = secrets.make(values)
    module = secrets.handler(arn, **env)

    with pytest.raises(module.DatabaseError) as raised:
        module.lambda_handler(cognito_event("andrewbrown"), None)

    assert f"secret {arn}" in raised.value.detail and message in raised.value.detail
    assert module._secret is None  # not kept: the next invocation reads it again


def test_a_missing_secret_is_a_clear_error(secrets, moto):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cruddur/nope-AbCdEf"
    module = secrets.handler(arn)
    with pytest.raises(module.DatabaseError) as raised:
        module.lambda_handler(cognito_event("andrewbrown"), None)
    assert f"cannot read secret {arn}: ResourceNotFoundException" in raised.value.detail


def test_secrets_manager_not_answering_fails_within_the_budget(secrets, lambda_role, monkeypatch):
    arn = secrets.rds_shaped(*lambda_role)
    with socket.socket() as silent:  # a VPC with no route to Secrets Manager: nothing answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        module = secrets.handler(arn)

        error = assert_fails_fast(module, cognito_event("andrewbrown"), time.monotonic())

    assert f"cannot read secret {arn}" in error.detail and "timeout" in error.detail.lower()


def test_connection_url_is_used_when_no_secret_is_set(handler, db_url, monkeypatch):
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    invoke(handler, cognito_event("andrewbrown"))
    assert handler._secret is None and handler._secrets_client is None
    assert [row[2] for row in users(db_url)] == ["andrewbrown"]
