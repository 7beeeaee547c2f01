"""POST /api/activities and POST /api/activities/<uuid>/reply over real HTTP."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
import requests

from support import insert_activity, insert_user


@pytest.fixture
def alice(db):
    insert_user(db, "alice", "Alice A", cognito_user_id="sub-alice")
    return "sub-alice"


def count_activities(db) -> int:
    return db.execute("SELECT count(*) FROM activities").fetchone()[0]


def test_create_returns_the_activity_in_the_feeds_shape_and_stores_it(client, db, cognito, alice):
    response = client.post("/api/activities", json={"message": "  hello cruddur  ", "ttl": "3-hours"},
                           headers=cognito.headers(alice))
    assert response.status_code == 200, response.text
    item = response.json()
    assert item["message"] == "hello cruddur"  # trimmed
    assert item["handle"] == "alice" and item["display_name"] == "Alice A"
    assert item["replies"] == [] and item["replies_count"] == 0
    lifetime = datetime.fromisoformat(item["expires_at"]) - datetime.fromisoformat(item["created_at"])
    assert lifetime == timedelta(hours=3)
    stored = db.execute("SELECT message FROM activities WHERE uuid = %s", (item["uuid"],)).fetchone()
    assert stored == ("hello cruddur",)
    assert client.get("/api/activities/home").json()[0]["uuid"] == item["uuid"]


@pytest.mark.parametrize("ttl,hours", [("30-days", 720), ("7-days", 168), ("3-days", 72),
                                       ("1-day", 24), ("12-hours", 12), ("1-hour", 1)])
def test_every_ttl(client, db, cognito, alice, ttl, hours):
    item = client.post("/api/activities", json={"message": "m", "ttl": ttl},
                       headers=cognito.headers(alice)).json()
    lifetime = datetime.fromisoformat(item["expires_at"]) - datetime.fromisoformat(item["created_at"])
    assert lifetime == timedelta(hours=hours)


def test_message_of_exactly_280_characters(client, db, cognito, alice):
    response = client.post("/api/activities", json={"message": "é" * 280, "ttl": "1-day"},
                           headers=cognito.headers(alice))
    assert response.status_code == 200


@pytest.mark.parametrize("body,errors", [
    ({}, ["message_blank", "ttl_blank"]),
    ({"message": "   ", "ttl": ""}, ["message_blank", "ttl_blank"]),
    ({"message": "x" * 281, "ttl": "2-days"}, ["message_exceed_max_chars", "ttl_invalid"]),
    ({"message": "ok", "ttl": "2-days"}, ["ttl_invalid"]),
    ({"message": "ok", "ttl": 7}, ["ttl_invalid"]),
    ({"message": 5, "ttl": "1-day"}, ["message_invalid"]),
    ({"message": "nul \u0000 inside", "ttl": "1-day"}, ["message_invalid_characters"]),
    ({"message": "x" * 281}, ["message_exceed_max_chars", "ttl_blank"]),
])
def test_invalid_input_lists_every_problem(client, db, cognito, alice, body, errors):
    response = client.post("/api/activities", json=body, headers=cognito.headers(alice))
    assert response.status_code == 422
    assert response.json() == errors
    assert count_activities(db) == 0


def test_lone_surrogate_is_refused(client, db, cognito, alice):
    body = b'{"message": "bad \\ud800 half", "ttl": "1-day"}'
    response = client.post("/api/activities", data=body, headers={
        **cognito.headers(alice), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == ["message_invalid_characters"]
    assert count_activities(db) == 0


def test_reply_is_created_counted_and_nested(client, db, cognito, alice):
    bob = insert_user(db, "bob")
    parent = insert_activity(db, bob, "parent")
    response = client.post(f"/api/activities/{parent}/reply", json={"message": "a reply"},
                           headers=cognito.headers(alice))
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["reply_to_activity_uuid"] == parent
    assert reply["handle"] == "alice" and reply["replies"] == []
    parent_row = db.execute("SELECT replies_count, expires_at FROM activities WHERE uuid = %s",
                            (parent,)).fetchone()
    assert parent_row[0] == 1
    assert datetime.fromisoformat(reply["expires_at"]) == parent_row[1]  # expires with its parent
    feed = client.get("/api/activities/home").json()
    assert [item["uuid"] for item in feed] == [parent]
    assert feed[0]["replies_count"] == 1
    assert [r["uuid"] for r in feed[0]["replies"]] == [reply["uuid"]]


def test_concurrent_replies_lose_no_count(api, db, cognito, alice):
    """24 replies at once through the real server's workers: the parent's count loses none."""
    parent = insert_activity(db, insert_user(db, "bob"), "parent")
    headers = cognito.headers(alice)
    statuses = []

    def reply(i):
        response = requests.post(f"{api.base}/api/activities/{parent}/reply",
                                 json={"message": f"reply {i}"}, headers=headers, timeout=20)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=reply, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 24
    assert db.execute("SELECT replies_count FROM activities WHERE uuid = %s", (parent,)).fetchone() == (24,)
    assert db.execute("SELECT count(*) FROM activities WHERE reply_to_activity_uuid = %s",
                      (parent,)).fetchone() == (24,)


def test_reply_to_an_unknown_or_expired_activity_is_404(client, db, cognito, alice):
    expired = insert_activity(db, insert_user(db, "bob"), "old", expires_in="-1 minute")
    for target in [expired, "8d4d5c3e-1111-4222-8333-944444444444"]:
        response = client.post(f"/api/activities/{target}/reply", json={"message": "hi"},
                               headers=cognito.headers(alice))
        assert response.status_code == 404
        assert response.json() == ["activity_not_found"]
    assert count_activities(db) == 1
    assert db.execute("SELECT replies_count FROM activities").fetchone() == (0,)


@pytest.mark.parametrize("bad_uuid", ["not-a-uuid", "123", "8d4d5c3e11114222833394444444444X",
                                      "{8d4d5c3e-1111-4222-8333-944444444444}"])
def test_reply_to_a_malformed_uuid_is_400(client, db, cognito, alice, bad_uuid):
    response = client.post(f"/api/activities/{bad_uuid}/reply", json={"message": "hi"},
                           headers=cognito.headers(alice))
    assert response.status_code == 400
    assert response.json() == ["uuid_invalid"]


def test_reply_with_a_blank_message_is_422(client, db, cognito, alice):
    parent = insert_activity(db, insert_user(db, "bob"), "parent")
    response = client.post(f"/api/activities/{parent}/reply", json={"message": " "},
                           headers=cognito.headers(alice))
    assert response.status_code == 422
    assert response.json() == ["message_blank"]
    assert count_activities(db) == 1


UNKNOWN_PARENT = "8d4d5c3e-1111-4222-8333-944444444444"


@pytest.mark.parametrize("path", ["/api/activities", f"/api/activities/{UNKNOWN_PARENT}/reply"])
@pytest.mark.parametrize("data,content_type,status,code", [
    ("{not json", "application/json", 400, "body_invalid_json"),
    ('["a list"]', "application/json", 400, "body_not_object"),
    ('"a string"', "application/json", 400, "body_not_object"),
    ("message=hi&ttl=1-day", "application/x-www-form-urlencoded", 415, "content_type_unsupported"),
    ('{"message": "hi", "ttl": "1-day"}', "text/plain", 415, "content_type_unsupported"),
    (b'{"message": "\xff\xfe", "ttl": "1-day"}', "application/json", 400, "body_invalid_json"),
])
def test_bad_bodies_are_4xx_and_change_nothing(client, db, cognito, alice, path, data, content_type,
                                               status, code):
    response = client.post(path, data=data, headers={**cognito.headers(alice), "Content-Type": content_type})
    assert response.status_code == status
    assert response.json() == [code]
    assert count_activities(db) == 0


def test_body_over_16_kib_is_413(client, db, cognito, alice):
    body = json.dumps({"message": "x" * (17 * 1024), "ttl": "1-day"})
    response = client.post("/api/activities", data=body,
                           headers={**cognito.headers(alice), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == ["request_entity_too_large"]
    assert count_activities(db) == 0


@pytest.mark.parametrize("message", ["'); DROP TABLE activities; --", "%s %(message)s {}", "\\x00"])
def test_sql_fragments_are_just_text(client, db, cognito, alice, message):
    response = client.post("/api/activities", json={"message": message, "ttl": "1-day"},
                           headers=cognito.headers(alice))
    assert response.status_code == 200
    assert response.json()["message"] == message
    assert count_activities(db) == 1
