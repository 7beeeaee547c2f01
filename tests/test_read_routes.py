"""The read routes: a user's feed, one activity with its replies, a user's short form, search,
notifications. Over real HTTP; every response is checked against openapi.yml by support.ApiServer."""

from __future__ import annotations

import json
import re
import time

import pytest

from support import insert_activity, insert_user


def next_url(response) -> str | None:
    match = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def collect(client, url: str, key: str | None = None, headers=None) -> tuple[list[str], int]:
    """Every item uuid across the pages, and how many pages there were."""
    seen, pages = [], 0
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["uuid"] for item in (body[key] if key else body)]
        url, pages = next_url(response), pages + 1
    return seen, pages


# -- GET /api/activities/@<handle> ---------------------------------------------------------

def test_user_feed_has_the_profile_and_their_live_activities(client, db):
    alice, bob = insert_user(db, "alice", "Alice A"), insert_user(db, "bob")
    old = insert_activity(db, alice, "old", age="2 hours")
    new = insert_activity(db, alice, "new", age="1 hour")
    insert_activity(db, alice, "expired", expires_in="-1 minute")
    insert_activity(db, bob, "not alice's")
    reply = insert_activity(db, bob, "reply to alice", reply_to=new)

    body = client.get("/api/activities/@alice").json()

    assert body["profile"] == {"uuid": alice, "handle": "alice", "display_name": "Alice A",
                               "bio": None, "cruds_count": 2, "cognito_user_uuid": None}
    assert [a["uuid"] for a in body["activities"]] == [new, old]
    assert [r["uuid"] for r in body["activities"][0]["replies"]] == [reply]


def test_user_feed_profile_carries_the_bio(client, db):
    insert_user(db, "alice")
    db.execute("UPDATE users SET bio = 'Crudding since 2023' WHERE handle = 'alice'")
    assert client.get("/api/activities/@alice").json()["profile"]["bio"] == "Crudding since 2023"


def test_user_feed_profile_carries_the_cognito_sub_and_nothing_private(client, db):
    """The frontend builds the avatar's URL from cognito_user_uuid; the email stays private."""
    insert_user(db, "alice", cognito_user_id="8d4d5c3e-1111-4222-8333-944444444444")
    profile = client.get("/api/activities/@alice").json()["profile"]
    assert profile["cognito_user_uuid"] == "8d4d5c3e-1111-4222-8333-944444444444"
    assert set(profile) == {"uuid", "handle", "display_name", "bio", "cruds_count", "cognito_user_uuid"}
    assert "@example.com" not in json.dumps(profile)


def test_user_feed_pages_with_the_cursor(client, db):
    alice = insert_user(db, "alice")
    expected = [insert_activity(db, alice, f"c{i}", age=f"{i} minutes") for i in range(45)]
    seen, pages = collect(client, "/api/activities/@alice?limit=20", key="activities")
    assert seen == expected and pages == 3


def test_user_feed_of_an_unknown_handle_is_404(client, db):
    for handle in ["nobody", "x" * 3000, "a%00b"]:
        response = client.get(f"/api/activities/@{handle}")
        assert response.status_code == 404
        assert response.json() == ["user_not_found"]


def test_cruds_count_follows_expiry_edits_and_deletes(client, db):
    """cruds_count comes from per-period counts a trigger keeps (user_crud_expiries, six hours
    each) plus the current period counted exactly: it is right to the second, and follows edits
    and deletes."""
    alice, bob = insert_user(db, "alice"), insert_user(db, "bob")

    def count():
        return client.get("/api/activities/@alice").json()["profile"]["cruds_count"]

    soon = insert_activity(db, alice, "expires in 2 s", expires_in="2 seconds")
    later = insert_activity(db, alice, "expires in 2 hours", expires_in="2 hours")
    insert_activity(db, alice, "expires in 30 days", expires_in="30 days")
    insert_activity(db, alice, "expired", expires_in="-2 hours")
    insert_activity(db, alice, "a reply", reply_to=later)
    insert_activity(db, bob, "bob's")
    assert count() == 3
    time.sleep(2.5)
    assert count() == 2  # the first one expired meanwhile
    db.execute("UPDATE activities SET expires_at = now() - interval '1 minute' WHERE uuid = %s", [later])
    assert count() == 1
    db.execute("UPDATE activities SET expires_at = now() + interval '3 days' WHERE uuid = %s", [soon])
    assert count() == 2
    db.execute("DELETE FROM activities WHERE uuid = %s", [soon])
    assert count() == 1


def expiry_counts(db) -> dict[tuple[str, str], int]:
    rows = db.execute("SELECT handle, expires_period::text, cruds FROM user_crud_expiries"
                      " JOIN users ON users.uuid = user_uuid").fetchall()
    return {(handle, period): cruds for handle, period, cruds in rows}


def counted_from_the_rows(db) -> dict[tuple[str, str], int]:
    rows = db.execute("SELECT handle, expiry_period(expires_at)::text, count(*) FROM activities"
                      " JOIN users ON users.uuid = user_uuid WHERE reply_to_activity_uuid IS NULL"
                      " GROUP BY 1, 2").fetchall()
    return {(handle, period): cruds for handle, period, cruds in rows}


def test_bulk_statements_count_each_crud_once_and_empty_past_periods_go(client, db):
    """Inserts and deletes are counted per statement (transition tables): a statement of many
    cruds, replies among them, leaves the same counts as the rows themselves; a past period whose
    cruds are all deleted leaves user_crud_expiries, a current or future one stays at 0."""
    alice, bob = insert_user(db, "alice"), insert_user(db, "bob")
    parent = insert_activity(db, bob, "parent")
    db.execute("""
        INSERT INTO activities (user_uuid, message, reply_to_activity_uuid, expires_at)
        SELECT CASE WHEN g %% 3 = 0 THEN %(bob)s::uuid ELSE %(alice)s::uuid END, 'bulk ' || g,
               CASE WHEN g %% 5 = 0 THEN %(parent)s::uuid END,
               now() + (g %% 4 - 1) * interval '1 day'
        FROM generate_series(1, 300) g""", {"alice": alice, "bob": bob, "parent": parent})
    assert expiry_counts(db) == counted_from_the_rows(db)
    assert sum(expiry_counts(db).values()) == 1 + 240  # replies are not cruds
    assert client.get("/api/activities/@alice").json()["profile"]["cruds_count"] == \
        db.execute("SELECT count(*) FROM activities WHERE user_uuid = %s AND expires_at > now()"
                   " AND reply_to_activity_uuid IS NULL", [alice]).fetchone()[0]

    def alice_periods(when: str) -> list[int]:
        return [n for (n,) in db.execute(
            f"SELECT cruds FROM user_crud_expiries WHERE user_uuid = %s"  # noqa: S608
            f" AND expires_period {when} expiry_period(now()) ORDER BY expires_period", [alice])]

    assert len(alice_periods("<")) == 1 and len(alice_periods(">=")) == 3
    # the even ones: all of yesterday's (g % 4 = 0) and tomorrow's (g % 4 = 2)
    db.execute("DELETE FROM activities WHERE right(message, 1) IN ('0', '2', '4', '6', '8')")
    assert {key: n for key, n in expiry_counts(db).items() if n} == counted_from_the_rows(db)
    assert alice_periods("<") == []
    assert alice_periods(">=")[1] == 0  # tomorrow's stays, at 0, until it is past


def test_user_feed_with_no_activities(client, db):
    insert_user(db, "quiet")
    body = client.get("/api/activities/@quiet").json()
    assert body["activities"] == [] and body["profile"]["cruds_count"] == 0


# -- GET /api/activities/@<handle>/status/<uuid> --------------------------------------------

def test_status_shows_the_activity_and_its_replies_oldest_first(client, db):
    alice, bob = insert_user(db, "alice"), insert_user(db, "bob")
    activity = insert_activity(db, alice, "the crud", age="3 hours")
    first = insert_activity(db, bob, "first", age="2 hours", reply_to=activity)
    second = insert_activity(db, alice, "second", age="1 hour", reply_to=activity)
    insert_activity(db, bob, "expired", expires_in="-1 minute", reply_to=activity)

    body = client.get(f"/api/activities/@alice/status/{activity}").json()

    assert body["activity"]["uuid"] == activity and body["activity"]["message"] == "the crud"
    assert [r["uuid"] for r in body["replies"]] == [first, second]


def test_status_replies_page_oldest_first(client, db):
    alice = insert_user(db, "alice")
    activity = insert_activity(db, alice, "the crud", age="3 hours")
    expected = [insert_activity(db, alice, f"r{i}", age=f"{100 - i} minutes", reply_to=activity)
                for i in range(25)]
    seen, pages = collect(client, f"/api/activities/@alice/status/{activity}?limit=10", key="replies")
    assert seen == expected and pages == 3


def test_status_of_someone_elses_activity_is_404(client, db):
    insert_user(db, "alice")
    bobs = insert_activity(db, insert_user(db, "bob"), "bob's")
    response = client.get(f"/api/activities/@alice/status/{bobs}")
    assert response.status_code == 404
    assert response.json() == ["activity_not_found"]


def test_status_of_an_expired_or_unknown_activity_is_404(client, db):
    alice = insert_user(db, "alice")
    expired = insert_activity(db, alice, "gone", expires_in="-1 second")
    for target in [expired, "8d4d5c3e-1111-4222-8333-944444444444"]:
        assert client.get(f"/api/activities/@alice/status/{target}").status_code == 404


def test_status_with_a_malformed_uuid_is_400(client, db):
    response = client.get("/api/activities/@alice/status/not-a-uuid")
    assert response.status_code == 400
    assert response.json() == ["uuid_invalid"]


# -- GET /api/users/@<handle>/short -----------------------------------------------------------

def test_user_short(client, db):
    alice = insert_user(db, "alice", "Alice A")
    assert client.get("/api/users/@alice/short").json() == {
        "uuid": alice, "handle": "alice", "display_name": "Alice A"}


def test_user_short_unknown_is_404(client, db):
    response = client.get("/api/users/@nobody/short")
    assert response.status_code == 404
    assert response.json() == ["user_not_found"]


# -- GET /api/activities/search ---------------------------------------------------------------

def test_search_is_case_insensitive_newest_first_and_live_only(client, db):
    alice = insert_user(db, "alice")
    older = insert_activity(db, alice, "I love CRUDDUR", age="2 hours")
    newer = insert_activity(db, alice, "cruddur is great", age="1 hour")
    insert_activity(db, alice, "cruddur expired", expires_in="-1 minute")
    insert_activity(db, alice, "unrelated")
    response = client.get("/api/activities/search", params={"term": "CrUdDuR"})
    assert [a["uuid"] for a in response.json()] == [newer, older]


@pytest.mark.parametrize("term,matches", [
    ("100%", ["got 100% right"]),
    ("a_b", ["a_b literal"]),
    ("c\\d", ["back c\\d slash"]),
])
def test_search_takes_wildcards_literally(client, db, term, matches):
    alice = insert_user(db, "alice")
    for message in ["got 100% right", "got 1000 wrong", "a_b literal", "axb not", "back c\\d slash",
                    "back cd not"]:
        insert_activity(db, alice, message)
    found = [a["message"] for a in client.get("/api/activities/search", params={"term": term}).json()]
    assert found == matches


def test_search_pages_with_the_cursor(client, db):
    alice = insert_user(db, "alice")
    expected = [insert_activity(db, alice, f"needle {i}", age=f"{i} minutes") for i in range(30)]
    insert_activity(db, alice, "hay")
    seen, pages = collect(client, "/api/activities/search?term=needle&limit=12")
    assert seen == expected and pages == 3


@pytest.mark.parametrize("params,code", [
    ({}, "search_term_blank"), ({"term": ""}, "search_term_blank"), ({"term": "   "}, "search_term_blank"),
    ({"term": "ab"}, "search_term_too_short"), ({"term": "x" * 101}, "search_term_too_long"),
    ({"term": "abc\u0000"}, "search_term_invalid_characters"),
])
def test_search_term_problems_are_422(client, db, params, code):
    response = client.get("/api/activities/search", params=params)
    assert response.status_code == 422
    assert response.json() == [code]


def test_search_with_sql_fragments_finds_nothing_and_breaks_nothing(client, db):
    insert_activity(db, insert_user(db, "alice"), "hello")
    for term in ["' OR 1=1 --", "%' OR '1'='1", "); DROP TABLE users; --"]:
        response = client.get("/api/activities/search", params={"term": term})
        assert response.status_code == 200 and response.json() == []
    assert db.execute("SELECT count(*) FROM users").fetchone() == (1,)


# -- GET /api/activities/notifications ----------------------------------------------------------

def test_notifications_are_replies_by_others_to_my_activities(client, db, cognito):
    alice = insert_user(db, "alice", cognito_user_id="sub-alice")
    bob, carol = insert_user(db, "bob"), insert_user(db, "carol")
    mine = insert_activity(db, alice, "mine", age="5 hours")
    theirs = insert_activity(db, bob, "bob's", age="5 hours")
    from_bob = insert_activity(db, bob, "nice", age="2 hours", reply_to=mine)
    from_carol = insert_activity(db, carol, "agreed", age="1 hour", reply_to=mine)
    insert_activity(db, alice, "my own reply", reply_to=mine)
    insert_activity(db, carol, "to bob", reply_to=theirs)
    insert_activity(db, bob, "expired", expires_in="-1 minute", reply_to=mine)

    response = client.get("/api/activities/notifications", headers=cognito.headers("sub-alice"))

    assert [a["uuid"] for a in response.json()] == [from_carol, from_bob]


def test_notifications_page_with_the_cursor(client, db, cognito):
    alice = insert_user(db, "alice", cognito_user_id="sub-alice")
    bob = insert_user(db, "bob")
    mine = insert_activity(db, alice, "mine", age="5 hours")
    expected = [insert_activity(db, bob, f"r{i}", age=f"{i} minutes", reply_to=mine) for i in range(25)]
    seen, pages = collect(client, "/api/activities/notifications?limit=10",
                          headers=cognito.headers("sub-alice"))
    assert seen == expected and pages == 3


# -- the contract itself -----------------------------------------------------------------------

def test_openapi_document_is_served(client):
    import yaml

    response = client.get("/api/openapi.yml")
    assert response.status_code == 200
    spec = yaml.safe_load(response.text)
    assert spec["openapi"].startswith("3.1")
    assert "/api/activities/home" in spec["paths"]
