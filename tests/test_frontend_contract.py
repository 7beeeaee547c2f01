"""The Cruddur React frontend's calls, replayed as its pages make them, against the real server.

The frontend sends `Content-Type: application/json` and `Authorization: Bearer <token>` on every
call, GETs included, and `Bearer null` before it has a token. Neither is a simple CORS header, so
the browser sends a preflight (OPTIONS) first unless it holds a cached answer for that URL. `Page`
does what the browser does: the preflight, its cache (Access-Control-Max-Age), the CORS check on
the answer. Each test asserts every field the page reads, with its type.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest

from support import ApiServer, free_port, insert_activity, insert_user, record_figure

FRONTEND = "http://frontend.test:3000"  # the API's FRONTEND_URL in the tests (conftest.API_ENV)
OTHER_ORIGIN = "http://evil.test"
DEFAULT_MAX_AGE = 5  # seconds a browser keeps a preflight's answer without Access-Control-Max-Age (Fetch)


class Page:
    """A page served from `origin` calling the API as a browser runs its fetches. `now` is the
    page's clock in seconds, which a test moves to space its calls as page views are spaced.
    `ignore_max_age`: the page as it was before the API sent Access-Control-Max-Age."""

    def __init__(self, api, origin: str, token: str | None = None, ignore_max_age: bool = False):
        self.api, self.origin, self.token = api, origin, token
        self.ignore_max_age = ignore_max_age
        self.now = 0.0
        self.cached_until: dict[tuple[str, str], float] = {}  # (method, path) -> when it expires
        self.preflight = None  # the last preflight's answer
        self.sent = 0  # HTTP requests the page made

    def fetch(self, method: str, path: str, body: dict | None = None):
        """The answer as the page can read it; None when the browser's CORS checks stop it."""
        if self.cached_until.get((method, path), float("-inf")) <= self.now:
            self.preflight = self.api.request("OPTIONS", path, headers={
                "Origin": self.origin, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type"})
            self.sent += 1
            if not preflight_allows(self.preflight, self.origin, method):
                return None
            max_age = None if self.ignore_max_age else self.preflight.headers.get("Access-Control-Max-Age")
            self.cached_until[(method, path)] = self.now + int(max_age or DEFAULT_MAX_AGE)
        headers = {"Origin": self.origin, "Accept": "application/json", "Content-Type": "application/json",
                   "Authorization": f"Bearer {self.token or 'null'}"}  # `Bearer ${token}` in JavaScript
        response = self.api.request(method, path, headers=headers,
                                    data=None if body is None else json.dumps(body))
        self.sent += 1
        return response if response.headers.get("Access-Control-Allow-Origin") == self.origin else None


def header_list(response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(name, "").split(",") if item.strip()}


def preflight_allows(response, origin: str, method: str) -> bool:
    return (response.status_code == 200 and response.headers.get("Access-Control-Allow-Origin") == origin
            and method.lower() in header_list(response, "Access-Control-Allow-Methods")
            and {"authorization", "content-type"} <= header_list(response, "Access-Control-Allow-Headers"))


def assert_preflight(page: Page, method: str) -> None:
    """The preflight allowed the call, for two hours."""
    assert page.preflight is not None, "no preflight was sent"
    assert preflight_allows(page.preflight, FRONTEND, method), page.preflight.headers
    assert page.preflight.headers["Access-Control-Max-Age"] == "7200"


# -- what each page reads ------------------------------------------------------------------------

TIMESTAMP, NULLABLE_TEXT = "timestamp", (str, type(None))
FEED_ITEM = {"uuid": str, "handle": str, "display_name": str, "message": str, "created_at": TIMESTAMP,
             "expires_at": TIMESTAMP, "replies_count": int, "reposts_count": int, "likes_count": int}
PROFILE = {"display_name": str, "handle": str, "bio": NULLABLE_TEXT, "cruds_count": int,
           "cognito_user_uuid": NULLABLE_TEXT}
USER_SHORT = {"uuid": str, "handle": str, "display_name": str}


def assert_fields(value: dict, fields: dict) -> None:
    for name, kind in fields.items():
        assert name in value, f"{name} missing from {value}"
        if kind == TIMESTAMP:
            assert datetime.fromisoformat(value[name]).utcoffset() is not None, (name, value[name])
        else:  # type(), not isinstance(): a bool is not a count
            assert type(value[name]) in (kind if isinstance(kind, tuple) else (kind,)), (name, value[name])


def assert_feed(items: list) -> None:
    assert isinstance(items, list) and items, items
    for item in items:
        assert_fields(item, FEED_ITEM)
        for reply in item.get("replies", []):
            assert_fields(reply, FEED_ITEM)


@pytest.fixture
def world(api, db):
    """alice (signed up) with a crud, and bob's reply to it: a feed, a status page, a notification."""
    alice = insert_user(db, "alice", "Alice A", cognito_user_id="sub-alice")
    bob = insert_user(db, "bob", "Bob B", cognito_user_id="sub-bob")
    crud = insert_activity(db, alice, "the frontend reads this", age="1 minute")
    insert_activity(db, bob, "bob replies", reply_to=crud)
    db.execute("UPDATE activities SET replies_count = 1 WHERE uuid = %s", (crud,))
    return {"crud": crud}


def calls(world) -> dict[str, tuple[str, str, dict | None]]:
    """Every call the frontend makes: (method, path, body), as its pages and forms send them."""
    crud = world["crud"]
    return {
        "home": ("GET", "/api/activities/home", None),
        "user page": ("GET", "/api/activities/@alice", None),
        "status page": ("GET", f"/api/activities/@alice/status/{crud}", None),
        "users short": ("GET", "/api/users/@alice/short", None),
        "notifications": ("GET", "/api/activities/notifications", None),
        "create": ("POST", "/api/activities", {"message": "from the ActivityForm", "ttl": "7-days"}),
        # the ReplyForm also sends activity_uuid: the path says which activity, the body's is ignored
        "reply": ("POST", f"/api/activities/{crud}/reply",
                  {"activity_uuid": "00000000-0000-4000-8000-000000000000", "message": "from the ReplyForm"}),
        "profile update": ("PUT", "/api/profile/update", {"bio": "Down the rabbit hole.",
                                                          "display_name": "Alice Liddell"}),
    }


PUBLIC = ["home", "user page", "status page", "users short"]
SIGNED_IN = ["notifications", "create", "reply", "profile update"]


def assert_what_the_page_reads(name: str, body, world) -> None:
    if name in ("home", "notifications"):
        assert_feed(body)
    elif name == "user page":
        assert_fields(body["profile"], PROFILE)
        assert_feed(body["activities"])
    elif name == "status page":
        assert_fields(body["activity"], FEED_ITEM)
        assert_feed(body["replies"])
    elif name == "users short":
        assert_fields(body, USER_SHORT)
    elif name in ("create", "reply"):  # the form puts the answer in the feed
        assert_fields(body, FEED_ITEM)
        assert body["reply_to_activity_uuid"] == (world["crud"] if name == "reply" else None)
    else:
        assert_fields(body, PROFILE)
        assert (body["display_name"], body["bio"]) == ("Alice Liddell", "Down the rabbit hole.")


@pytest.mark.parametrize("name", PUBLIC + SIGNED_IN)
def test_each_call_of_a_signed_in_page_answers_what_the_page_reads(api, world, cognito, name):
    method, path, body = calls(world)[name]
    page = Page(api, FRONTEND, token=cognito.token("sub-alice"))

    response = page.fetch(method, path, body)

    assert_preflight(page, method)
    assert response is not None, "the browser would not hand the answer to the page"
    assert response.status_code == 200, response.text
    assert_what_the_page_reads(name, response.json(), world)


@pytest.mark.parametrize("name", PUBLIC)
def test_before_sign_in_public_pages_answer_200_to_bearer_null(api, world, name):
    method, path, body = calls(world)[name]
    page = Page(api, FRONTEND, token=None)

    response = page.fetch(method, path, body)

    assert_preflight(page, method)
    assert response is not None and response.status_code == 200, response
    assert_what_the_page_reads(name, response.json(), world)


@pytest.mark.parametrize("name", SIGNED_IN)
def test_before_sign_in_signed_in_calls_answer_401_with_a_json_array(api, db, world, name):
    method, path, body = calls(world)[name]
    before = db.execute("SELECT (SELECT array_agg(u::text ORDER BY u.uuid) FROM users u),"
                        " (SELECT count(*) FROM activities)").fetchone()
    page = Page(api, FRONTEND, token=None)

    response = page.fetch(method, path, body)

    assert_preflight(page, method)
    assert response is not None, "the page could not read the error"
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == ["generic_401", "token_invalid"]
    assert db.execute("SELECT (SELECT array_agg(u::text ORDER BY u.uuid) FROM users u),"
                      " (SELECT count(*) FROM activities)").fetchone() == before


def test_the_frontend_updates_the_profile_and_then_reads_the_new_name(api, db, world, cognito):
    page = Page(api, FRONTEND, token=cognito.token("sub-alice"))
    _, path, body = calls(world)["profile update"]

    updated = page.fetch("PUT", path, body)

    assert updated is not None and updated.status_code == 200, updated
    user_page = page.fetch("GET", "/api/activities/@alice").json()
    assert user_page["profile"] == updated.json()
    assert user_page["profile"]["display_name"] == "Alice Liddell"
    assert {item["display_name"] for item in user_page["activities"]} == {"Alice Liddell"}
    assert db.execute("SELECT display_name, bio FROM users WHERE handle = 'alice'").fetchone() == (
        "Alice Liddell", "Down the rabbit hole.")


def test_a_page_from_another_origin_cannot_update_the_profile(api, db, world, cognito):
    """The preflight carries no CORS allow header, so the browser never sends the PUT; nor can
    that page read anything the API answers."""
    page = Page(api, OTHER_ORIGIN, token=cognito.token("sub-alice"))
    _, path, body = calls(world)["profile update"]

    assert page.fetch("PUT", path, body) is None

    assert page.sent == 1  # the preflight only
    assert not [name for name in page.preflight.headers if name.lower().startswith("access-control-")]
    assert db.execute("SELECT display_name, bio FROM users WHERE handle = 'alice'").fetchone() == (
        "Alice A", None)
    read = api.get("/api/activities/home", headers={"Origin": OTHER_ORIGIN})
    assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers


# -- preflight once ------------------------------------------------------------------------------

HOME_IN_ACCESS_LOG = re.compile(r'"(?:OPTIONS|GET) /api/activities/home" ')


def home_feed_requests(api, page: Page, views: int = 10) -> int:
    """The HTTP requests the server logged while `page` showed the home feed `views` times, a
    minute apart (a person browsing, not a burst within a default preflight cache's 5 s)."""
    offset = len(api.log())
    for view in range(views):
        page.now = view * 60.0
        assert page.fetch("GET", "/api/activities/home") is not None
    deadline = time.monotonic() + 5
    while True:  # the workers write the access log as they answer
        logged = len(HOME_IN_ACCESS_LOG.findall(api.log()[offset:]))
        if logged >= page.sent or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


def test_ten_home_feed_views_cost_eleven_requests_not_twenty(api, world, cognito):
    token = cognito.token("sub-alice")
    before = home_feed_requests(api, Page(api, FRONTEND, token=token, ignore_max_age=True))
    after = home_feed_requests(api, Page(api, FRONTEND, token=token))
    record_figure(f"frontend contract: 10 home feed views a minute apart from {FRONTEND}: "
                  f"{before} HTTP requests without Access-Control-Max-Age, {after} with it")
    assert (before, after) == (20, 11)


@pytest.mark.e2e
def test_a_preflight_is_answered_without_the_database(tmp_path):
    """With no database to reach, the health check answers 503; a preflight still answers, at once."""
    api = ApiServer(f"postgresql://cruddur_app@127.0.0.1:{free_port()}/cruddur", workers=1,
                    DB_POOL_TIMEOUT="0.5", DB_CONNECT_TIMEOUT="1").start(tmp_path / "api.log")
    try:
        assert api.get("/api/health-check").status_code == 503
        page = Page(api, FRONTEND)
        page.fetch("GET", "/api/activities/home")
        assert_preflight(page, "GET")
        assert page.preflight.elapsed.total_seconds() < 0.5  # not a wait for a connection
    finally:
        api.stop()
