"""Cognito access tokens: verified signature and claims, the caller looked up by `sub`."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support import insert_user

SIGNED_IN_ROUTES = [("POST", "/api/activities"), ("GET", "/api/activities/notifications")]


@pytest.fixture
def alice(db):
    insert_user(db, "alice", cognito_user_id="sub-alice")
    return "sub-alice"


def call(client, method, path, headers):
    return client.request(method, path, headers=headers, json={"message": "hi", "ttl": "1-day"})


@pytest.mark.parametrize("method,path", SIGNED_IN_ROUTES)
def test_valid_token_is_accepted(client, cognito, alice, method, path):
    assert call(client, method, path, cognito.headers(alice)).status_code == 200


@pytest.mark.parametrize("method,path", SIGNED_IN_ROUTES)
def test_missing_token_is_401(client, db, method, path):
    response = call(client, method, path, {})
    assert response.status_code == 401
    assert response.json() == ["generic_401", "token_missing"]


def forged_headers(cognito, sub):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "expired": cognito.headers(sub, expires_in=-60),
        "signed by another key": cognito.headers(sub, key=other_key),
        "id token": cognito.headers(sub, token_use="id"),
        "other client": cognito.headers(sub, client_id="someone-else"),
        "other issuer": cognito.headers(sub, iss="https://cognito-idp.us-east-1.amazonaws.com/other"),
        "unknown kid": cognito.headers(sub, kid="no-such-kid"),
        "not a jwt": {"Authorization": "Bearer not.a.jwt"},
        "garbage": {"Authorization": "Bearer \u00e9\u00e9"},
        "basic scheme": {"Authorization": "Basic YWxpY2U6cGFzcw=="},
        "empty bearer": {"Authorization": "Bearer "},
        "huge": {"Authorization": "Bearer " + "a" * 8000},
    }


@pytest.mark.parametrize("case", ["expired", "signed by another key", "id token", "other client",
                                  "other issuer", "unknown kid", "not a jwt", "garbage", "basic scheme",
                                  "empty bearer", "huge"])
@pytest.mark.parametrize("method,path", SIGNED_IN_ROUTES)
def test_bad_tokens_are_401_and_change_nothing(client, db, cognito, alice, method, path, case):
    response = call(client, method, path, forged_headers(cognito, alice)[case])
    assert response.status_code == 401
    generic, specific = response.json()
    assert generic == "generic_401" and specific in {"token_invalid", "token_expired"}
    assert db.execute("SELECT count(*) FROM activities").fetchone() == (0,)


def test_expired_token_says_so(client, db, cognito, alice):
    response = call(client, "POST", "/api/activities", cognito.headers(alice, expires_in=-60))
    assert response.json() == ["generic_401", "token_expired"]


def test_token_of_a_user_unknown_to_the_api_is_401(client, db, cognito, alice):
    """Each signed-in route finds the caller in its own statement: an unknown sub is a 401 and
    that statement changes nothing (no activity, no reply, no count)."""
    parent = call(client, "POST", "/api/activities", cognito.headers(alice)).json()["uuid"]
    before = db.execute("SELECT count(*), sum(replies_count) FROM activities").fetchone()
    for method, path in [("POST", "/api/activities"), ("POST", f"/api/activities/{parent}/reply"),
                         ("GET", "/api/activities/notifications")]:
        response = call(client, method, path, cognito.headers("sub-nobody"))
        assert response.status_code == 401, (path, response.text)
        assert response.json() == ["generic_401", "user_unknown"]
    assert db.execute("SELECT count(*), sum(replies_count) FROM activities").fetchone() == before


def test_a_remembered_token_still_expires(client, db, cognito, alice):
    """A verified token is remembered, but only until its exp: then it is refused as expired."""
    headers = cognito.headers(alice, expires_in=2)
    for _ in range(4):  # whichever worker answers, it has verified the token by now
        assert call(client, "GET", "/api/activities/notifications", headers).status_code == 200
    time.sleep(2.5)
    response = call(client, "GET", "/api/activities/notifications", headers)
    assert response.status_code == 401
    assert response.json() == ["generic_401", "token_expired"]


def test_home_works_with_and_without_a_token(client, cognito, alice):
    assert client.get("/api/activities/home").status_code == 200
    assert client.get("/api/activities/home", headers=cognito.headers(alice)).status_code == 200


def test_keys_are_cached_not_fetched_per_request(client, cognito, alice):
    for _ in range(5):
        assert call(client, "GET", "/api/activities/notifications", cognito.headers(alice)).status_code == 200
    fetches = cognito.fetches
    for _ in range(5):
        call(client, "GET", "/api/activities/notifications", cognito.headers(alice))
    assert cognito.fetches == fetches


def test_rotated_key_is_fetched_on_an_unknown_kid(client, cognito, alice):
    import json

    import jwt

    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(new_key.public_key()))
    cognito.jwks["keys"].append({**new_jwk, "kid": "rotated-kid", "alg": "RS256", "use": "sig"})
    try:
        headers = cognito.headers(alice, key=new_key, kid="rotated-kid")
        for _ in range(4):  # whichever worker answers
            assert call(client, "GET", "/api/activities/notifications", headers).status_code == 200
    finally:
        cognito.jwks["keys"].pop()


@pytest.mark.e2e
def test_unknown_kids_cannot_make_the_api_hammer_the_jwks_endpoint(app_db_url, cognito, alice, tmp_path):
    """With the default throttle, a flood of forged kids costs one fetch per worker."""
    from support import api_server

    with api_server(app_db_url, tmp_path / "api.log", **cognito.env()) as api:
        before = cognito.fetches
        for i in range(10):
            headers = cognito.headers(alice, kid=f"forged-{i}")
            assert call(api, "GET", "/api/activities/notifications", headers).status_code == 401
        assert cognito.fetches - before <= 2  # two workers
