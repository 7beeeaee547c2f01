"""Errors are JSON everywhere; CORS answers only the configured origins. In-process where the app
decides; through the real server for a real CORS exchange and what granian decides itself."""

from __future__ import annotations

import socket
import statistics
import time

import pytest


@pytest.mark.parametrize("path", ["/", "/api/nope", "/api/activities/nope/deeper"])
def test_unknown_route_is_a_404_json_error(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == ["not_found"]


def test_wrong_method_is_a_405_json_error(client):
    response = client.request("DELETE", "/api/activities/home")
    assert response.status_code == 405
    assert response.json() == ["method_not_allowed"]
    assert "GET" in response.headers["Allow"]


def test_health_check(client, db):
    response = client.get("/api/health-check")
    assert response.status_code == 200
    assert response.json() == {"success": True, "ver": 1}


def test_cors_allows_the_frontend_origin(api, db):
    response = api.get("/api/activities/home", headers={"Origin": "http://frontend.test:3000"})
    assert response.headers["Access-Control-Allow-Origin"] == "http://frontend.test:3000"
    assert "Link" in response.headers["Access-Control-Expose-Headers"]


def test_cors_preflight_for_the_frontend(api):
    response = api.request("OPTIONS", "/api/activities/home", headers={
        "Origin": "http://frontend.test:3000", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://frontend.test:3000"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_a_preflight_costs_no_more_than_the_health_check(client, db):
    """A preflight is answered without a view, so without the database: it costs what the health
    check costs or less (both through Flask's test client, interleaved, medians compared)."""
    preflight = {"method": "OPTIONS", "headers": {
        "Origin": "http://frontend.test:3000", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,content-type"}}
    timings: dict[str, list[float]] = {"preflight": [], "health": []}
    for _ in range(200):
        for name, path, kwargs in (("preflight", "/api/profile/update", preflight),
                                   ("health", "/api/health-check", {})):
            started = time.perf_counter()
            response = client.client.open(path, **kwargs)
            timings[name].append(time.perf_counter() - started)
            assert response.status_code == 200
    medians = {name: statistics.median(times) for name, times in timings.items()}
    assert medians["preflight"] <= medians["health"], medians


def test_an_unexpected_failure_is_a_500_generic_500(caplog):
    """Whatever fails unexpectedly answers ["generic_500"] (the frontend's code for it), and is logged."""
    from flask import Flask, abort

    from lib import errors

    app = Flask("failing")
    errors.init_app(app)
    app.add_url_rule("/raise", "raise", lambda: 1 / 0)
    app.add_url_rule("/abort", "abort", lambda: abort(500))
    for path in ("/raise", "/abort"):
        response = app.test_client().get(path)
        assert (response.status_code, response.get_json()) == (500, ["generic_500"])
    assert "ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "http://frontend.test:3000.evil.test"])
def test_cors_refuses_other_origins(client, db, origin):
    response = client.get("/api/activities/home", headers={"Origin": origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_10000_character_handle_is_a_json_404(api, db):
    """Long paths reach Flask (the server takes request heads up to 64 KiB) and get its answer."""
    response = api.get("/api/activities/@" + "h" * 10_000)
    assert response.status_code == 404
    assert response.json() == ["user_not_found"]


def server_refusal(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), fields, body


def raw_exchange(api, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("data,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /api/activities/" + b"h" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    (b"GET /api/activities/home HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),
    (b"GET /api/activities/home HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400),
], ids=["malformed request line", "request line over 64 KiB", "headers over 64 KiB", "bad length"])
def test_requests_that_are_not_http_are_refused_by_the_server(api, data, status):
    """What is not a valid HTTP request never reaches Flask: granian answers it itself, with the
    status that says why, no body, and closes the connection (README: Troubleshooting)."""
    code, fields, body = server_refusal(raw_exchange(api, data))
    assert (code, body) == (status, b"")
    assert fields["connection"] == "close"


@pytest.mark.parametrize("path", ["/api//activities/home", "/api/activities//home"])
def test_double_slashes_are_a_json_404_not_a_redirect(client, path):
    response = client.get(path, allow_redirects=False)
    assert response.status_code == 404
    assert response.json() == ["not_found"]


def test_a_request_head_just_under_64_kib_is_served(api, db):
    response = api.get("/api/activities/home", headers={"X-Big": "b" * 60_000})
    assert response.status_code == 200
    assert response.json() == []
