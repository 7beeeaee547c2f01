"""PUT (and POST) /api/profile/update: the signed-in user's display name and bio, validated here
and held to the same limits by the database. In-process, on the real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from support import insert_user

PATH = "/api/profile/update"


@pytest.fixture
def alice(db):
    insert_user(db, "alice", "Alice A", cognito_user_id="sub-alice")
    return "sub-alice"


def stored(db) -> list[tuple]:
    return db.execute("SELECT handle, display_name, bio FROM users ORDER BY handle").fetchall()


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_the_update_answers_the_profile_as_the_user_page_shows_it(client, db, cognito, alice, method):
    response = client.request(method, PATH, json={"display_name": "  Alice Liddell ", "bio": " Curious. "},
                              headers=cognito.headers(alice))
    assert response.status_code == 200, response.text
    profile = response.json()
    assert (profile["display_name"], profile["bio"]) == ("Alice Liddell", "Curious.")  # trimmed
    assert profile == client.get("/api/activities/@alice").json()["profile"]
    assert profile["cognito_user_uuid"] == alice
    assert stored(db) == [("alice", "Alice Liddell", "Curious.")]


@pytest.mark.parametrize("bio", [None, "", "   "], ids=["null", "empty", "blank"])
def test_an_empty_or_null_bio_clears_it(client, db, cognito, alice, bio):
    db.execute("UPDATE users SET bio = 'old bio'")
    body = {"display_name": "Alice", "bio": bio}
    response = client.request("PUT", PATH, json=body, headers=cognito.headers(alice))
    assert response.status_code == 200, response.text
    assert response.json()["bio"] is None
    assert stored(db) == [("alice", "Alice", None)]


def test_a_missing_bio_clears_it_too(client, db, cognito, alice):
    db.execute("UPDATE users SET bio = 'old bio'")
    response = client.request("PUT", PATH, json={"display_name": "Alice"}, headers=cognito.headers(alice))
    assert (response.status_code, response.json()["bio"]) == (200, None)


def test_the_longest_allowed_display_name_and_bio(client, db, cognito, alice):
    body = {"display_name": "é" * 50, "bio": "\U0001f600" * 160}  # characters, not bytes
    response = client.request("PUT", PATH, json=body, headers=cognito.headers(alice))
    assert response.status_code == 200, response.text
    assert stored(db) == [("alice", "é" * 50, "\U0001f600" * 160)]


@pytest.mark.parametrize("body,errors", [
    ({}, ["display_name_blank"]),
    ({"display_name": "", "bio": "hi"}, ["display_name_blank"]),
    ({"display_name": " \n\t "}, ["display_name_blank"]),
    ({"display_name": None}, ["display_name_blank"]),
    ({"display_name": "x" * 51}, ["display_name_exceed_max_chars"]),
    ({"display_name": "Alice", "bio": "x" * 161}, ["bio_exceed_max_chars"]),
    ({"display_name": "x" * 51, "bio": "x" * 161}, ["display_name_exceed_max_chars", "bio_exceed_max_chars"]),
    ({"display_name": "", "bio": "x" * 161}, ["display_name_blank", "bio_exceed_max_chars"]),
    ({"display_name": 5, "bio": ["x"]}, ["display_name_invalid", "bio_invalid"]),
    ({"display_name": "nul \u0000 inside"}, ["display_name_invalid_characters"]),
    ({"display_name": "lone \ud800 surrogate"}, ["display_name_invalid_characters"]),
    ({"display_name": "Alice", "bio": "nul \u0000"}, ["bio_invalid_characters"]),
    ({"display_name": "\ud800", "bio": "\udfff"},
     ["display_name_invalid_characters", "bio_invalid_characters"]),
])
def test_invalid_input_lists_every_problem_and_changes_nothing(client, db, cognito, alice, body, errors):
    import json

    raw = json.dumps(body).encode()  # lone surrogates as JSON escapes, as a browser would send them
    response = client.request("PUT", PATH, data=raw, headers={**cognito.headers(alice),
                                                              "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json() == errors
    assert stored(db) == [("alice", "Alice A", None)]


@pytest.mark.parametrize("headers,body,status,codes", [
    ({"Content-Type": "text/plain"}, b"display_name=x", 415, ["content_type_unsupported"]),
    ({"Content-Type": "application/json"}, b"{not json", 400, ["body_invalid_json"]),
    ({"Content-Type": "application/json"}, b'["Alice"]', 400, ["body_not_object"]),
])
def test_a_body_that_is_not_a_json_object_is_refused(client, db, cognito, alice, headers, body, status,
                                                     codes):
    response = client.request("PUT", PATH, data=body, headers={**cognito.headers(alice), **headers})
    assert (response.status_code, response.json()) == (status, codes)
    assert stored(db) == [("alice", "Alice A", None)]


def test_signed_out_and_unknown_users_get_401_and_change_nothing(client, db, cognito, alice):
    body = {"display_name": "Mallory", "bio": "took over"}
    for headers, code in [({}, "token_missing"), ({"Authorization": "Bearer null"}, "token_invalid"),
                          (cognito.headers("sub-nobody"), "user_unknown")]:
        response = client.request("PUT", PATH, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json() == ["generic_401", code]
    assert stored(db) == [("alice", "Alice A", None)]


def test_only_the_callers_row_changes(client, db, cognito, alice):
    insert_user(db, "bob", "Bob B", cognito_user_id="sub-bob")
    response = client.request("PUT", PATH, json={"display_name": "Bobby", "bio": "me"},
                              headers=cognito.headers("sub-bob"))
    assert response.json()["handle"] == "bob"
    assert stored(db) == [("alice", "Alice A", None), ("bob", "Bobby", "me")]


def test_other_methods_are_a_405(client, db, cognito, alice):
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, PATH, headers=cognito.headers(alice))
        assert (response.status_code, response.json()) == (405, ["method_not_allowed"])


@pytest.mark.parametrize("change", [
    "display_name = ''", "display_name = repeat('x', 51)", "bio = repeat('x', 161)",
])
def test_the_database_holds_the_same_limits(app_role_url, db, alice, change):
    """What reaches the table by any path, the API's role or the owner, keeps to the limits."""
    statement = f"UPDATE public.users SET {change}"  # noqa: S608 - the parameters above
    with psycopg.connect(app_role_url, autocommit=True) as as_app, \
            pytest.raises(psycopg.errors.CheckViolation):
        as_app.execute(statement)
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(statement)
    assert stored(db) == [("alice", "Alice A", None)]
