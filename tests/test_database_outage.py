"""The API with its database stopped and restarted: fast 503 JSON, then recovery by itself."""

from __future__ import annotations

import time

import pytest

from support import TEST_PASSWORD, LocalPostgres, api_server, create_database, free_port, load_schema

ROUTES = ["/api/health-check", "/api/activities/home"]


@pytest.fixture(scope="module")
def own_pg(tmp_path_factory):
    """A server of this module's own: the tests stop and start it."""
    server = LocalPostgres(tmp_path_factory.mktemp("outage") / "data", free_port(),
                           password=TEST_PASSWORD, ephemeral=True)
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def outage_api(own_pg, tmp_path_factory):
    url = create_database(own_pg, "cruddur")
    load_schema(url)
    with api_server(url, tmp_path_factory.mktemp("outage-api") / "api.log") as server:
        yield server


def assert_unavailable(api, path):
    started = time.monotonic()
    response = api.get(path, timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == ["database_unavailable"]
    assert response.headers["Retry-After"] == "1"
    assert elapsed < 3, f"{path} took {elapsed:.1f}s to answer 503"


def wait_until_ok(api, path, timeout: float = 10) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if api.get(path, timeout=5).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"{path} did not recover within {timeout}s")


def test_stopped_database_gives_fast_503_then_recovers(own_pg, outage_api):
    for path in ROUTES:
        assert outage_api.get(path).status_code == 200

    own_pg.stop("fast")
    try:
        for _ in range(2):
            for path in ROUTES:
                assert_unavailable(outage_api, path)
    finally:
        own_pg.start()
        back = time.monotonic()

    for path in ROUTES:
        wait_until_ok(outage_api, path)
    # Each worker finds the database again on its own, the last within 2 s of its return: from
    # then on every request succeeds.
    time.sleep(max(0.0, back + 2 - time.monotonic()))
    for _ in range(10):
        for path in ROUTES:
            assert outage_api.get(path).status_code == 200, path
    assert outage_api.get("/api/activities/home").json() == []
    assert outage_api.process.poll() is None  # never restarted
    assert TEST_PASSWORD not in outage_api.log()


def test_api_started_while_the_database_is_down_serves_503_then_recovers(own_pg, tmp_path):
    url = own_pg.url("cruddur")
    own_pg.stop("fast")
    try:
        with api_server(url, tmp_path / "api.log") as api:
            assert_unavailable(api, "/api/health-check")
            own_pg.start()
            wait_until_ok(api, "/api/health-check")
            assert "database not reachable at start" in api.log()
            assert TEST_PASSWORD not in api.log()
    finally:
        own_pg.start()
