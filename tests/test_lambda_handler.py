"""lambdas/cruddur-post-confirmation.py against a real PostgreSQL, with the events Cognito sends.

Moto never runs Cognito triggers, so the handler is called directly, the way the Lambda runtime
calls it: one loaded module per execution environment, its connection kept between invocations.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from support import ROOT, TEST_PASSWORD, LocalPostgres, create_database, free_port, load_schema

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


def test_handle_of_a_seed_user_is_taken_too(handler, db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO users (display_name, email, handle) VALUES ('A', 'a@x.test', 'seeded')")
    with pytest.raises(handler.HandleTakenError):
        handler.lambda_handler(cognito_event("seeded"), None)


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
