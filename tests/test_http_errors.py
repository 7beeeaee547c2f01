"""Errors are JSON everywhere; CORS answers only the configured origins."""

from __future__ import annotations

import socket

import pytest
import requests


@pytest.mark.parametrize("path", ["/", "/api/nope", "/api/activities/nope/deeper"])
def test_unknown_route_is_a_404_json_error(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"errors": ["not_found"]}


def test_wrong_method_is_a_405_json_error(api):
    response = api.request("DELETE", "/api/activities/home")
    assert response.status_code == 405
    assert response.json() == {"errors": ["method_not_allowed"]}
    assert "GET" in response.headers["Allow"]


def test_health_check(api, db):
    response = api.get("/api/health-check")
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


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "http://frontend.test:3000.evil.test"])
def test_cors_refuses_other_origins(api, db, origin):
    response = api.get("/api/activities/home", headers={"Origin": origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("headers,path,status,code", [
    ({}, "/api/activities/@" + "h" * 10_000, 414, "uri_too_long"),
    ({"X-Big": "b" * 9000}, "/api/activities/home", 431, "request_header_fields_too_large"),
])
def test_errors_gunicorn_answers_itself_are_json_too(api, headers, path, status, code):
    """Requests refused before they reach Flask still get a JSON error."""
    response = requests.get(api.base + path, headers=headers, timeout=10)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"errors": [code]}


def test_a_malformed_request_line_gets_a_json_400(api):
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        reply = sock.recv(4096).decode("latin1")
    assert reply.startswith("HTTP/1.1 400")
    assert "Content-Type: application/json" in reply
    assert reply.endswith('{"errors": ["bad_request"]}')


@pytest.mark.parametrize("path", ["/api//activities/home", "/api/activities//home"])
def test_double_slashes_are_a_json_404_not_a_redirect(api, path):
    response = api.get(path, allow_redirects=False)
    assert response.status_code == 404
    assert response.json() == {"errors": ["not_found"]}
