"""Beyond one machine: reads from a real streaming replica, writes to the primary.

The test run makes the replica itself (pg_basebackup -R from a primary of this module's own,
a second server on another port). The API gets READ_CONNECTION_URL: the read-only routes use
a second pool there; writes, and what a write returns, use the primary.
"""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from support import (
    TEST_PASSWORD,
    LocalPostgres,
    api_server,
    create_database,
    free_port,
    insert_activity,
    insert_user,
    load_schema,
)

READ_ROUTES = ["/api/activities/home", "/api/activities/@alice", "/api/users/@alice/short",
               "/api/activities/search?term=hello"]


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    server = LocalPostgres(tmp_path_factory.mktemp("primary") / "data", free_port(),
                           password=TEST_PASSWORD, ephemeral=True)
    server.start()
    url = create_database(server, "cruddur")
    load_schema(url)
    with psycopg.connect(url, autocommit=True) as conn:
        alice = insert_user(conn, "alice", cognito_user_id="sub-alice")
        insert_activity(conn, alice, "hello from the primary")
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def replica(primary, tmp_path_factory):
    server = LocalPostgres(tmp_path_factory.mktemp("replica") / "data", free_port(),
                           password=TEST_PASSWORD, ephemeral=True)
    server.init_as_replica_of(primary)
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def scaled_api(primary, replica, cognito, tmp_path_factory):
    log = tmp_path_factory.mktemp("scaled-api") / "api.log"
    with api_server(primary.url("cruddur"), log, READ_CONNECTION_URL=replica.url("cruddur"),
                    **cognito.env()) as server:
        yield server


def api_sessions_that_read_feeds(server: LocalPostgres) -> list[str]:
    """The API's sessions on `server` whose last statement read a page of activities, by pool name.

    pg_stat_activity is live, where the transaction counters of pg_stat_database are
    flushed up to seconds late."""
    with psycopg.connect(server.url("cruddur"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity"
            " WHERE datname = 'cruddur' AND application_name LIKE 'cruddur%%-api'"
            "   AND query LIKE '%%activity_page%%'").fetchall()
    return [name for (name,) in rows]


def wait_for(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_replica_is_a_replica(replica):
    with psycopg.connect(replica.url("cruddur")) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_reads_go_to_the_replica(primary, replica, scaled_api):
    for _ in range(5):
        for path in READ_ROUTES:
            assert scaled_api.get(path).status_code == 200
    assert api_sessions_that_read_feeds(replica)
    assert set(api_sessions_that_read_feeds(replica)) == {"cruddur-read-api"}
    assert api_sessions_that_read_feeds(primary) == []


def test_writes_go_to_the_primary_and_reach_the_replica(scaled_api, cognito):
    response = scaled_api.post("/api/activities", headers=cognito.headers("sub-alice"),
                               json={"message": "written to the primary", "ttl": "1-day"})
    assert response.status_code == 200  # the replica would refuse the INSERT
    created = response.json()["uuid"]
    reply = scaled_api.post(f"/api/activities/{created}/reply", json={"message": "and a reply"},
                            headers=cognito.headers("sub-alice"))
    assert reply.status_code == 200  # its parent was read and counted on the primary

    def on_the_home_feed() -> bool:
        feed = scaled_api.get("/api/activities/home").json()
        return any(item["uuid"] == created and item["replies_count"] == 1 for item in feed)

    wait_for(on_the_home_feed)


def test_a_replica_that_is_down_degrades_reads_to_the_primary(replica, scaled_api):
    replica.stop("immediate")
    try:
        for _ in range(3):
            for path in READ_ROUTES:
                started = time.monotonic()
                response = scaled_api.get(path)
                assert response.status_code == 200, response.text
                assert time.monotonic() - started < 3
    finally:
        replica.start()
    assert not re.search(r'" 5\d\d ', scaled_api.log()), "a 5xx in the access log"

    # once it is back (and the API's 5 s of reading from the primary are over), reads return to it
    def reads_on_the_replica() -> bool:
        assert scaled_api.get("/api/activities/home").status_code == 200
        return bool(api_sessions_that_read_feeds(replica))

    wait_for(reads_on_the_replica, timeout=20)


def test_a_user_not_yet_on_the_replica_is_found_on_the_primary(primary, replica, scaled_api, cognito):
    """Notifications read from the replica; a user who signed up a moment ago (replay paused, so
    the replica has not seen the row) is looked up on the primary, not told 401."""
    with psycopg.connect(replica.url("cruddur"), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(primary.url("cruddur"), autocommit=True) as conn:
            insert_user(conn, "newcomer", cognito_user_id="sub-newcomer")
        response = scaled_api.get("/api/activities/notifications", headers=cognito.headers("sub-newcomer"))
        assert response.status_code == 200, response.text
        assert response.json() == []
        unknown = scaled_api.get("/api/activities/notifications", headers=cognito.headers("sub-nobody"))
        assert unknown.status_code == 401
        assert unknown.json() == ["generic_401", "user_unknown"]
    finally:
        with psycopg.connect(replica.url("cruddur"), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
