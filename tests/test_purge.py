"""The purge of expired activities (public.purge_expired_activities, bin/db-purge-expired): it
removes exactly what expired before the grace period, keeps the counts the API shows right,
never makes the API wait, and runs as cruddur_purge, a role that can do nothing else."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
import yaml

from support import ROOT, TEST_PASSWORD, insert_activity, insert_user, run_script, script_env

PURGE = "CALL public.purge_expired_activities(%s::interval, %s)"


def purge(url: str, grace: str = "1 day", batch_size: int = 2000) -> tuple[int, int, int]:
    """(cruds, replies, batches) the purge removed, run as the role `url` names."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(PURGE, (grace, batch_size)).fetchone()


def expired(db, user: str, message: str, ago: str, reply_to: str | None = None) -> str:
    """An activity created 30 days ago that expired `ago` (an interval)."""
    return insert_activity(db, user, message, age="30 days", expires_in=f"-{ago}", reply_to=reply_to)


def messages(db) -> set[str]:
    return {message for (message,) in db.execute("SELECT message FROM activities")}


def test_removes_exactly_what_expired_before_the_grace_period(db, purge_role_url):
    alice, bob = insert_user(db, "alice"), insert_user(db, "bob")
    live = insert_activity(db, alice, "live")
    insert_activity(db, bob, "live reply", reply_to=live)
    recent = expired(db, alice, "expired 23 hours ago", "23 hours")
    expired(db, bob, "reply expired 23 hours ago", "23 hours", reply_to=recent)
    old = expired(db, alice, "expired 25 hours ago", "25 hours")
    for n in range(3):
        reply = expired(db, bob, f"reply {n} expired 25 hours ago", "25 hours", reply_to=old)
    expired(db, alice, "reply to a reply expired 25 hours ago", "25 hours", reply_to=reply)
    for n in range(5):
        expired(db, bob, f"crud {n} expired 3 days ago", "3 days")
    # data loaded outside the API: a reply that outlives its parent keeps the parent
    kept_parent = expired(db, alice, "parent expired 3 days ago, its reply still live", "3 days")
    late_reply = insert_activity(db, bob, "reply still live", reply_to=kept_parent)

    # batches of 2: the replies go before their parents, over several batches
    cruds, replies, batches = purge(purge_role_url, batch_size=2)
    assert (cruds, replies) == (6, 4) and batches >= 5
    assert messages(db) == {"live", "live reply", "expired 23 hours ago", "reply expired 23 hours ago",
                            "parent expired 3 days ago, its reply still live", "reply still live"}
    assert purge(purge_role_url) == (0, 0, 0)

    db.execute("UPDATE activities SET expires_at = now() - interval '2 days' WHERE uuid = %s", [late_reply])
    assert purge(purge_role_url) == (1, 1, 2)  # the reply, then its parent
    assert purge(purge_role_url, grace="0 seconds") == (1, 1, 2)
    assert messages(db) == {"live", "live reply"}


def test_the_counts_the_api_shows_stay_right(client, db, cognito, purge_role_url):
    """What the API shows is the same before and after (what the purge removes had expired),
    except a live parent's replies_count, which counts the purged reply no more; past periods
    leave user_crud_expiries, the periods to come (cruds_count) stay."""
    alice = insert_user(db, "alice", cognito_user_id="sub-alice")
    bob = insert_user(db, "bob")
    crud = insert_activity(db, alice, "alice's live crud")
    insert_activity(db, bob, "bob's live reply", reply_to=crud)
    for n in range(4):
        insert_activity(db, alice, f"alice's crud {n}", expires_in=f"{n + 1} days")
        old = expired(db, alice, f"alice's old crud {n}", "2 days")
        expired(db, bob, f"bob's old reply {n}", "2 days", reply_to=old)
        expired(db, bob, f"bob's old reply to the live crud {n}", "2 days", reply_to=crud)  # not API-made
    db.execute("UPDATE activities SET replies_count = 5 WHERE uuid = %s", [crud])
    signed_in = cognito.headers("sub-alice")

    def shown() -> dict:
        return {"home": client.get("/api/activities/home").json(),
                "profile": client.get("/api/activities/@alice").json(),
                "status": client.get(f"/api/activities/@alice/status/{crud}").json(),
                "notifications": client.get("/api/activities/notifications", headers=signed_in).json()}

    def periods(when: str) -> list[tuple]:
        return db.execute(f"SELECT expires_period, cruds FROM user_crud_expiries"  # noqa: S608
                          f" WHERE expires_period {when} expiry_period(now()) ORDER BY 1").fetchall()

    before, future = shown(), periods(">")
    assert before["profile"]["profile"]["cruds_count"] == 5
    assert [n["message"] for n in before["notifications"]] == ["bob's live reply"]
    assert len(periods("<")) == 1

    assert purge(purge_role_url) == (4, 8, 2)  # the replies, then their parents

    after = shown()
    assert after["home"][-1]["replies_count"] == 1 and before["home"][-1]["replies_count"] == 5
    assert without_replies_count(after, crud) == without_replies_count(before, crud)
    assert periods("<") == [] and periods(">") == future


def without_replies_count(shown, uuid: str):
    """`shown` (the API's JSON) with the replies_count of activity `uuid` left out, wherever it is."""
    if isinstance(shown, list):
        return [without_replies_count(item, uuid) for item in shown]
    if isinstance(shown, dict):
        return {key: without_replies_count(value, uuid) for key, value in shown.items()
                if not (key == "replies_count" and shown.get("uuid") == uuid)}
    return shown


APP_ONLY = ["CALL public.purge_expired_activities()",
            "SELECT public.purge_expired_activities_batch(now(), 10)"]
PURGE_REFUSED = [
    "SELECT count(*) FROM public.activities",
    "SELECT * FROM public.activity_items",
    "SELECT email FROM public.users",
    "SELECT * FROM public.user_crud_expiries",
    "DELETE FROM public.activities",
    "DELETE FROM public.user_crud_expiries",
    "TRUNCATE public.activities",
    "UPDATE public.activities SET expires_at = now() - interval '2 days'",
    "INSERT INTO public.users (display_name, email, handle) VALUES ('x', 'x', 'x')",
    "DROP TABLE public.activities",
    "ALTER TABLE public.activities DISABLE TRIGGER USER",
    "CREATE TABLE public.stolen (a int)",
    "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER ROLE cruddur_purge SUPERUSER",
]


@pytest.mark.parametrize("statement", APP_ONLY)
def test_the_api_role_cannot_purge(app_role_url, db, statement):
    insert_activity(db, insert_user(db, "alice"), "expired", expires_in="-2 days")
    with psycopg.connect(app_role_url, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    assert messages(db) == {"expired"}


@pytest.mark.parametrize("statement", PURGE_REFUSED)
def test_the_purge_role_can_do_nothing_else(purge_role_url, db, statement):
    insert_activity(db, insert_user(db, "alice"), "live")
    with psycopg.connect(purge_role_url, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    assert messages(db) == {"live"}


def test_the_purge_role_removes_no_live_activity_whatever_it_asks(purge_role_url, db):
    """The batch function runs with its owner's rights: it is what stands between cruddur_purge
    and the table, so it takes no cutoff later than now, and no grace under 0."""
    alice = insert_user(db, "alice")
    insert_activity(db, alice, "live", expires_in="1 second")
    with psycopg.connect(purge_role_url, autocommit=True) as conn:
        assert conn.execute("SELECT * FROM public.purge_expired_activities_batch("
                            "now() + interval '1 year', 100000)").fetchone() == (0, 0)
        with pytest.raises(psycopg.errors.RaiseException, match="grace must be a period of 0 or more"):
            conn.execute(PURGE, ("-1 year", 10))
        with pytest.raises(psycopg.errors.RaiseException, match="batch_size must be between 1 and 100000"):
            conn.execute(PURGE, ("1 day", 0))
        attributes = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles"
                                  " WHERE rolname = current_user").fetchone()
        assert attributes == (False, False, False, False)
        owned = conn.execute("SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole")
        assert owned.fetchone() == (0,)
    assert messages(db) == {"live"}


def test_it_runs_while_the_api_serves_and_the_api_never_waits(api, db, app_db_url, cognito, purge_role_url):
    """Thousands of expired activities purged by bin/db-purge-expired in batches of 500 while
    the API reads and writes: every request answers, none slower than the statement timeout, and
    no API session is ever seen waiting for a lock."""
    alice = insert_user(db, "alice", cognito_user_id="sub-alice")
    bob = insert_user(db, "bob", cognito_user_id="sub-bob")
    live = insert_activity(db, alice, "live")
    db.execute("""
        INSERT INTO activities (user_uuid, message, expires_at, created_at)
        SELECT CASE WHEN g %% 2 = 0 THEN %(alice)s::uuid ELSE %(bob)s::uuid END, 'old ' || g,
               now() - interval '2 days' - g * interval '1 second', now() - interval '40 days'
        FROM generate_series(1, 4000) g""", {"alice": alice, "bob": bob})
    db.execute("""
        INSERT INTO activities (user_uuid, message, reply_to_activity_uuid, expires_at, created_at)
        SELECT %(bob)s::uuid, 'old reply', uuid, expires_at, created_at FROM activities
        WHERE message LIKE 'old %%' AND right(message, 1) = '7'""", {"bob": bob})
    requests_done, slowest, failures, lock_waits, lock_samples = [0], [0.0], [], [], [0]
    stop = threading.Event()

    def client(path: str, method: str = "GET", body: dict | None = None, sub: str | None = None):
        headers = cognito.headers(sub) if sub else {}
        while not stop.is_set():
            started = time.monotonic()
            response = requests.request(method, api.base + path, json=body, headers=headers, timeout=10)
            slowest[0] = max(slowest[0], time.monotonic() - started)
            requests_done[0] += 1
            if response.status_code != 200:
                failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")

    def watch_locks():
        with psycopg.connect(app_db_url, autocommit=True) as conn:
            while not stop.is_set():
                lock_waits.extend(conn.execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'cruddur-api' AND wait_event_type = 'Lock'").fetchall())
                lock_samples[0] += 1
                time.sleep(0.005)

    threads = [threading.Thread(target=watch_locks),
               threading.Thread(target=client, args=("/api/activities/home",)),
               threading.Thread(target=client, args=("/api/activities/@alice",)),
               threading.Thread(target=client, args=("/api/activities", "POST",
                                                     {"message": "posted meanwhile", "ttl": "1-hour"},
                                                     "sub-alice")),
               threading.Thread(target=client, args=(f"/api/activities/{live}/reply", "POST",
                                                     {"message": "replied meanwhile"}, "sub-bob"))]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        database = urlsplit(purge_role_url).path.lstrip("/")
        result = run_script("db-purge-expired", env=script_env(CONNECTION_URL=purge_role_url,
                                                              PURGE_BATCH_SIZE="500"), timeout=120)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"db-purge-expired local: activities of {database} expired more than 1 day ago" in result.stdout
    assert re.search(r"^removed 4400 expired activities \(4000 cruds, 400 replies\) in \d+ batch\(es\)$",
                     result.stdout, re.MULTILINE), result.stdout
    assert failures == [] and requests_done[0] > 20
    assert slowest[0] < 5.0, f"a request took {slowest[0]:.2f}s, over the API's statement timeout"
    assert lock_waits == [] and lock_samples[0] > 20
    assert db.execute("SELECT count(*) FROM activities WHERE message LIKE 'old%'").fetchone() == (0,)
    replied = db.execute("SELECT count(*) FROM activities WHERE reply_to_activity_uuid = %s", [live])
    assert db.execute("SELECT replies_count FROM activities WHERE uuid = %s", [live]).fetchone() == \
        replied.fetchone()


@pytest.mark.e2e
def test_the_compose_purge_service_purges_and_ends_on_sigterm(pg, db, app_db_url):
    """docker-compose.yml's purge service: its command, run by sh as the image would run it (psql
    on PATH, the service's PGOPTIONS), against this worker's database."""
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["purge"]
    script = service["command"][0].replace("$$", "$")  # compose's escape of a literal $
    insert_activity(db, insert_user(db, "alice"), "expired", expires_in="-2 days")
    env = {"PATH": f"{pg.bindir}:/usr/bin:/bin", "PGHOST": "127.0.0.1", "PGPORT": str(pg.port),
           "PGUSER": "postgres", "PGPASSWORD": TEST_PASSWORD, "PGDATABASE": urlsplit(app_db_url).path[1:],
           "PGOPTIONS": service["environment"]["PGOPTIONS"], "PURGE_INTERVAL_SECONDS": "1"}
    process = subprocess.Popen([*service["entrypoint"], script], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while messages(db):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "cruds|replies|batches\n1|0|1\n" in out and err == ""
    assert service["environment"]["PGOPTIONS"] == "-c role=cruddur_purge"
