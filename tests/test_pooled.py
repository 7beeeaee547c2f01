"""The API behind PgBouncer in transaction mode (DB_POOLER=transaction), as behind RDS Proxy: its two
workers share one server connection, so nothing may live in a session (no prepared statements, no
startup options). Every read and write path runs here once, over real HTTP; what each route
answers is tested in-process by the other modules."""

from __future__ import annotations

import pytest

from support import insert_activity, insert_user

SUB = "sub-pooled"


@pytest.fixture
def seeded(db):
    alice = insert_user(db, "alice", "Alice A", cognito_user_id=SUB)
    bob = insert_user(db, "bob", "Bob B", cognito_user_id="sub-bob")
    parent = insert_activity(db, alice, "a pooled crud", age="1 hour")
    insert_activity(db, bob, "a pooled reply", age="30 minutes", reply_to=parent)
    return {"alice": alice, "bob": bob, "parent": parent}


def test_every_read_path_answers_through_the_pooler(pooled_api, seeded):
    parent = seeded["parent"]
    # each path twice, so both workers' statements meet on the one server connection
    for _ in range(2):
        home = pooled_api.get("/api/activities/home?limit=1")
        assert home.status_code == 200
        assert [item["uuid"] for item in home.json()] == [parent]
        assert home.json()[0]["replies"][0]["message"] == "a pooled reply"

        user = pooled_api.get("/api/activities/@alice")
        assert user.status_code == 200
        assert user.json()["profile"]["cruds_count"] == 1

        show = pooled_api.get(f"/api/activities/@alice/status/{parent}")
        assert show.status_code == 200
        assert [reply["handle"] for reply in show.json()["replies"]] == ["bob"]

        search = pooled_api.get("/api/activities/search", params={"term": "pooled cr"})  # planned per call
        assert search.status_code == 200
        assert [item["uuid"] for item in search.json()] == [parent]

        assert pooled_api.get("/api/users/@bob/short").json()["handle"] == "bob"
        assert pooled_api.get("/api/health-check").status_code == 200


def test_every_write_path_and_the_signed_in_read_answer_through_the_pooler(pooled_api, seeded, cognito,
                                                                           db):
    headers = cognito.headers("sub-bob")
    created = pooled_api.post("/api/activities", json={"message": "via pgbouncer", "ttl": "1-day"},
                              headers=headers)
    assert created.status_code == 200, created.text
    reply = pooled_api.post(f"/api/activities/{seeded['parent']}/reply",
                            json={"message": "another reply"}, headers=headers)
    assert reply.status_code == 200, reply.text

    notifications = pooled_api.get("/api/activities/notifications", headers=cognito.headers(SUB))
    assert notifications.status_code == 200
    assert [item["message"] for item in notifications.json()] == ["another reply", "a pooled reply"]
    assert db.execute("SELECT replies_count FROM activities WHERE uuid = %s",
                      (seeded["parent"],)).fetchone() == (1,)  # the seeded reply was not counted
    assert db.execute("SELECT count(*) FROM activities WHERE message = 'via pgbouncer'").fetchone() == (1,)
