"""Property-based bad input, sent as raw HTTP to the live API: over a thousand generated requests
across every route and parameter: random bytes, huge numbers, unicode edge cases (NUL, lone
surrogates, RTL marks), malformed cursors and uuids, forged and expired tokens, bodies of any
shape and content type.

For each: no 5xx, every error is a JSON array of codes (["code", ...]), and the database is
unchanged unless the request was a write (create, reply, profile update) that answered 200. The
one exception to JSON: bytes that are not an HTTP request at all, which the server (granian)
refuses itself before Flask sees them, with a 400, 414 or 431, an empty body and the connection
closed.

The requests go through a raw socket, not `requests`, so the bytes on the wire are exactly the
generated ones. Runs are derandomized (the same examples each run): a failure is reproducible.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import socket
import time
from urllib.parse import quote_from_bytes

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import insert_activity, insert_user, record_figure

CODE = re.compile(r"^[a-z0-9_]+$")
FUZZ_SETTINGS = settings(
    deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
GET_EXAMPLES, POST_EXAMPLES, GARBAGE_EXAMPLES = 600, 600, 200


# -- the wire --------------------------------------------------------------------------------------

def raw_request(port: int, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; (status, headers, body) of the answer."""
    head = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    head += [name + b": " + value for name, value in headers]
    if body or method == b"POST":
        head.append(b"Content-Length: %d" % len(body))
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # answered and closed before it read everything (a 413, say): the answer is still there
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, content = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), f"no HTTP answer: {data[:200]!r}"
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, content


def is_server_refusal(status: int, fields: dict[str, str], content: bytes) -> bool:
    """granian's answer to bytes that are not an HTTP request: no Server header (Flask's answers
    all have one), no body, the connection closed."""
    return (status in (400, 414, 431) and not content and "server" not in fields
            and fields.get("connection") == "close")


class Checker:
    """Sends requests, checks every answer, and that the database changed only by a 200 create."""

    def __init__(self, api, db):
        self.port = api.port
        self.db = db
        self.count = 0
        self.statuses: dict[int, int] = {}
        self.codes: dict[str, int] = {}
        self.refusals = 0  # answered by the server itself: not an HTTP request
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> str:
        return self.db.execute(
            "SELECT (SELECT md5(coalesce(string_agg(u::text, '|' ORDER BY u.uuid), '')) FROM users u)"
            " || (SELECT md5(coalesce(string_agg(a::text, '|' ORDER BY a.uuid), '')) FROM activities a)"
        ).fetchone()[0]

    def send(self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]] = (),
             body: bytes = b"") -> tuple[int, object]:
        status, fields, content = raw_request(self.port, method, target, list(headers), body)
        self.count += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        shown = f"{method!r} {target[:300]!r} -> {status} {content[:300]!r}"
        assert status < 500, f"5xx: {shown}"
        if is_server_refusal(status, fields, content):  # not HTTP: granian's own answer
            assert self._fingerprint() == self.fingerprint, f"the database changed: {shown}"
            self.refusals += 1
            return status, None
        is_json = fields.get("content-type") == "application/json"
        # Every error is JSON. Not JSON: the YAML spec, an OPTIONS answer without a body, and
        # werkzeug's 308 to the same path with `//` merged (`/api//activities/home`).
        assert is_json or (status < 300 and (target.startswith(b"/api/openapi.yml") or not content)) or (
            status == 308 and fields.get("location")), f"not JSON: {shown}"
        parsed = json.loads(content) if is_json else None
        if status >= 400:
            codes = parsed
            assert isinstance(codes, list) and codes, shown
            assert all(isinstance(c, str) and CODE.match(c) for c in codes), shown
            for code in codes:
                self.codes[code] = self.codes.get(code, 0) + 1
        now = self._fingerprint()
        if status == 200 and target.startswith(b"/api/profile/update"):
            pass  # a profile update may set what was there already
        elif method == b"POST" and status == 200:
            assert now != self.fingerprint, f"a 200 create stored nothing: {shown}"
        else:
            assert now == self.fingerprint, f"the database changed: {shown}"
        self.fingerprint = now
        return status, parsed


# -- what to send ----------------------------------------------------------------------------------

# Text with the characters that break naive code: NUL and other controls, lone surrogates,
# bidirectional marks, zero-width and combining characters, non-BMP, percent and SQL fragments.
NASTY = ["\x00", "\x01", "\x1f", "\x7f", "\ud800", "\udfff", "\u202e", "\u200f", "\u2066", "\u200b",
         "\ufeff", "\u0301", "\U0001f600", "\uffff", "%", "%00", "%ZZ", "'", '"', "\\", ";", "--", "/*",
         "../", "{", "}", "|", " ", "\n", "\t", "\r", "%(x)s", "%s", "DROP TABLE activities"]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=12).map("".join)
long_text = st.tuples(st.text(min_size=1, max_size=4), st.integers(60, 320)).map(
    lambda t: (t[0] * t[1])[:t[1]])
any_text = st.one_of(nasty_text, st.text(max_size=30), long_text)
huge_numbers = st.one_of(st.integers(), st.integers(min_value=10**18, max_value=10**80),
                         st.integers(max_value=-1)).map(str)
numberish = st.one_of(huge_numbers, st.sampled_from([
    "0", "1", "100", "101", "-0", "1e3", "1.5", "0x10", "\u0663", "\uff11\uff10", " 5", "5 ", "+5", "NaN", "",
    "1" * 400]))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursors = st.one_of(
    any_text,
    st.binary(max_size=120).map(b64),
    st.tuples(any_text, any_text).map(lambda t: b64(f"{t[0]}|{t[1]}".encode("utf-8", "surrogatepass"))),
    st.tuples(st.datetimes(timezones=st.none() | st.timezones()), st.uuids()).map(
        lambda t: b64(f"{t[0].isoformat()}|{t[1]}".encode())),
    st.sampled_from(["infinity", b64(b"infinity|ffffffff-ffff-ffff-ffff-ffffffffffff"),
                     b64(b"-infinity|00000000-0000-0000-0000-000000000000"), "=" * 300, "a" * 201]),
)
uuidish = st.one_of(
    st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"), any_text,
    st.sampled_from(["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
                     "8d4d5c3e-1111-4222-8333-94444444444g", "-" * 36, "0" * 36]))


def encoded(value: str) -> st.SearchStrategy[bytes]:
    """The ways a value reaches the URL: percent-encoded UTF-8 (lone surrogates as their bytes),
    or raw bytes of its own with only the request line's separators escaped."""
    raw = value.encode("utf-8", "surrogatepass")
    escaped = quote_from_bytes(raw, safe="").encode()
    loose = quote_from_bytes(raw, safe="/@?&=%").encode()
    bare = raw.replace(b" ", b"%20").replace(b"\r", b"%0D").replace(b"\n", b"%0A").replace(b"#", b"%23")
    return st.sampled_from([escaped] * 4 + [loose] * 3 + [bare])  # bare bytes: mostly the server's 400


@st.composite
def fuzzed(draw, strategy) -> bytes:
    return draw(encoded(draw(strategy)))


@st.composite
def query(draw, names: list[str], real_cursor: str = "") -> bytes:
    """A query string: the route's parameters (and an unknown one), any values, sometimes raw bytes."""
    params = []
    values = {"limit": numberish, "cursor": st.one_of(cursors, st.just(real_cursor)), "term": any_text}
    for name in draw(st.lists(st.sampled_from([*names, "limit", "cursor", "x"]), max_size=4)):
        value = draw(values.get(name, any_text))
        params.append(draw(fuzzed(st.just(name))) + b"=" + draw(encoded(value)))
    if draw(st.integers(0, 4)) == 0:
        raw = draw(st.binary(max_size=30))
        params.append(raw.replace(b" ", b"+").replace(b"\r", b"").replace(b"\n", b""))
    return b"?" + b"&".join(params) if params else b""


# -- tokens ----------------------------------------------------------------------------------------

def token_headers(cognito) -> list[tuple[bytes, bytes]]:
    """Every kind of bad Authorization header, and two good ones (a known and an unknown user)."""
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = cognito.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"sub": "sub-alice", "iss": cognito.issuer, "client_id": cognito.CLIENT_ID,
              "token_use": "access", "exp": now + 3600, "iat": now}
    unsigned = (b64(json.dumps({"alg": "none", "typ": "JWT", "kid": cognito.kid}).encode()) + "."
                + b64(json.dumps(claims).encode()) + ".")
    # alg confusion: HS256 "signed" with the public key as the HMAC secret
    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": cognito.kid}).encode()) + "."
                     + b64(json.dumps(claims).encode()))
    hs256 = signing_input + "." + b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    no_sub = {k: v for k, v in claims.items() if k != "sub"}
    tokens = [
        cognito.token("sub-alice"), cognito.token("sub-nobody"),
        cognito.token("sub-alice", expires_in=-60), cognito.token("sub-alice", key=other_key),
        cognito.token("sub-alice", token_use="id"), cognito.token("sub-alice", client_id="other"),
        cognito.token("sub-alice", iss="https://evil.test/pool"), cognito.token("sub-alice", kid="nope"),
        cognito.token("sub-alice", kid="\u202e\x00"), cognito.token("\x00"), cognito.token("\ud800"),
        cognito.token("sub-alice", exp="soon"), cognito.token(["a", "b"]), cognito.token(12),
        jwt.encode(no_sub, cognito.key, algorithm="RS256", headers={"kid": cognito.kid}),
        unsigned, hs256, "a" * 9000, "not.a.jwt", "..", "a.b.c.d", b64(b"\xff\xfe") + ".e30.",
    ]
    headers = [(b"Authorization", b"Bearer " + t.encode()) for t in tokens]
    headers += [(b"Authorization", value) for value in (
        b"Bearer", b"Bearer ", b"bearer  x", b"Basic YWxpY2U6cGFzcw==", b"Token abc", b"\xff\xfe\x00",
        b"Bearer \xc3\x28", b"Bearer " + "\u202e".encode())]
    return headers


# -- the properties --------------------------------------------------------------------------------

@pytest.fixture
def seeded(api, db):
    """alice (signed up) with activities and a reply, bob, and a next-page cursor the API issued."""
    alice = insert_user(db, "alice", "Alice \u202eA", cognito_user_id="sub-alice")
    bob = insert_user(db, "bob")
    parent = insert_activity(db, bob, "parent of everything")
    insert_activity(db, alice, "a reply", reply_to=parent)
    for i in range(3):
        insert_activity(db, alice, f"post {i}", age=f"{i} minutes")
    link = api.get("/api/activities/home?limit=1").headers["Link"]
    cursor = re.search(r"cursor=([^&>]+)", link).group(1)
    return {"parent": parent, "handles": ["alice", "bob"], "cursor": cursor}


GET_ROUTES = ["home", "user", "show", "search", "notifications", "short", "health", "openapi"]


def test_get_routes_refuse_bad_input_with_json_and_change_nothing(api, db, seeded, cognito):
    checker = Checker(api, db)
    auth = token_headers(cognito)
    handles = st.one_of(st.sampled_from(seeded["handles"]), any_text)
    uuids = st.one_of(st.just(seeded["parent"]), uuidish)

    @settings(FUZZ_SETTINGS, max_examples=GET_EXAMPLES)
    @given(data=st.data())
    def run(data):
        route = data.draw(st.sampled_from(GET_ROUTES))
        if route == "home":
            path = b"/api/activities/home"
        elif route == "user":
            path = b"/api/activities/@" + data.draw(fuzzed(handles))
        elif route == "show":
            handle, activity = data.draw(fuzzed(handles)), data.draw(fuzzed(uuids))
            path = b"/api/activities/@" + handle + b"/status/" + activity
        elif route == "search":
            path = b"/api/activities/search"
        elif route == "notifications":
            path = b"/api/activities/notifications"
        elif route == "short":
            path = b"/api/users/@" + data.draw(fuzzed(handles)) + b"/short"
        else:
            path = {"health": b"/api/health-check", "openapi": b"/api/openapi.yml"}[route]
        target = path + data.draw(query(["term"] if route == "search" else [], seeded["cursor"]))
        headers = data.draw(st.one_of(st.just(auth[:1]), st.lists(st.sampled_from(auth), max_size=1)))
        checker.send(b"GET", target, headers)

    run()
    assert checker.count >= GET_EXAMPLES
    record_figure(f"fuzz, GET routes: {checker.count} requests, 0 x 5xx, {len(checker.codes)} distinct"
                  f" error codes; statuses {sorted(checker.statuses.items())}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=5)
TTLS = ["30-days", "7-days", "3-days", "1-day", "12-hours", "3-hours", "1-hour"]


# The fields of each write's body: good values, and any other.
CREATE_FIELDS = {"message": st.one_of(any_text, json_values, st.sampled_from(["\u00e9" * 280, " x " * 100])),
                 "ttl": st.one_of(st.sampled_from(TTLS), json_values)}
PROFILE_FIELDS = {"display_name": st.one_of(any_text, json_values,
                                            st.sampled_from(["\u00e9" * 50, " x " * 20])),
                  "bio": st.one_of(any_text, json_values, st.just("\u00e9" * 160))}


@st.composite
def bodies(draw, fields: dict) -> tuple[bytes, bytes]:
    """(content type, body): JSON objects with good and bad `fields`, other JSON, or random bytes."""
    kind = draw(st.sampled_from(["object", "object", "object", "json", "bytes"]))
    if kind == "object":
        body = {name: draw(values) for name, values in fields.items() if draw(st.booleans())}
        body.update(draw(st.dictionaries(any_text, json_values, max_size=2)))
        raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    elif kind == "json":
        raw = json.dumps(draw(json_values)).encode()
    else:
        raw = draw(st.one_of(st.binary(max_size=200), st.just(b"x" * 17000),
                             st.just(b'{"message": "\\ud800')))
    content_type = draw(st.sampled_from([
        b"application/json", b"application/json", b"application/json; charset=utf-8", b"text/plain",
        b"application/x-www-form-urlencoded", b"application/JSON", b"multipart/form-data; boundary=x",
        b"\xff\x00"]))
    return content_type, raw


def test_writes_refuse_bad_input_with_json_and_store_nothing(api, db, seeded, cognito):
    """Create, reply and the profile update (PUT or POST)."""
    checker = Checker(api, db)
    auth = token_headers(cognito)
    uuids = st.one_of(st.just(seeded["parent"]), uuidish)
    created = 0

    @settings(FUZZ_SETTINGS, max_examples=POST_EXAMPLES)
    @given(data=st.data())
    def run(data):
        nonlocal created
        method, fields = b"POST", CREATE_FIELDS
        route = data.draw(st.sampled_from(["create", "reply", "profile"]))
        if route == "create":
            target = b"/api/activities"
        elif route == "reply":
            target = b"/api/activities/" + data.draw(fuzzed(uuids)) + b"/reply"
        else:
            target, fields = b"/api/profile/update", PROFILE_FIELDS
            method = data.draw(st.sampled_from([b"PUT", b"POST"]))
        target += data.draw(query([]))
        content_type, body = data.draw(bodies(fields))
        headers = data.draw(st.one_of(st.just(auth[:1]), st.lists(st.sampled_from(auth), max_size=1)))
        headers.append((b"Content-Type", content_type))
        status, _ = checker.send(method, target, headers, body)
        created += status == 200

    run()
    assert checker.count >= POST_EXAMPLES
    record_figure(f"fuzz, writes: {checker.count} requests ({created} valid ones stored), 0 x 5xx,"
                  f" {len(checker.codes)} distinct error codes; statuses {sorted(checker.statuses.items())}")


def test_garbage_requests_get_clean_refusals(api, db, seeded):
    """Methods, paths and headers of any bytes: an error from Flask is JSON, one from the server
    is a bare refusal, neither is a 5xx."""
    checker = Checker(api, db)
    methods = st.one_of(
        st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD", b"TRACE",
                         b"CONNECT", b"PROPFIND", b"get"]),
        st.binary(min_size=1, max_size=12).filter(lambda m: not set(m) & set(b" \r\n")))
    paths = st.one_of(
        st.sampled_from([b"/", b"/api", b"/api/", b"//api/activities/home", b"/api/activities",
                         b"/api/activities/home/", b"/api/activities/@", b"/api/users/@/short", b"*",
                         b"http://evil.test/api/activities/home", b"/%", b"/%zz", b"/\x00"]),
        st.binary(max_size=60).map(lambda b: b"/" + re.sub(rb"[ \r\n]", b"", b)))
    header_values = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))

    @settings(FUZZ_SETTINGS, max_examples=GARBAGE_EXAMPLES)
    @given(method=methods, path=paths, extra=st.lists(st.tuples(st.sampled_from(
        [b"X-Thing", b"Origin", b"Accept", b"Content-Type", b"Expect", b"Range",
         b"Accept-Encoding", b"Cookie"]), header_values), max_size=3))
    def run(method, path, extra):
        if method == b"HEAD":  # an answer without a body
            status, _, _ = raw_request(api.port, method, path, extra)
            assert status < 500
            return
        checker.send(method, path, extra)

    run()
    record_figure(f"fuzz, garbage requests: {checker.count} requests, 0 x 5xx, {checker.refusals}"
                  f" refused by the server as not HTTP; statuses {sorted(checker.statuses.items())}")
    assert not re.search(r'" 5\d\d ', api.log()), "the access log shows a 5xx"


@pytest.mark.parametrize("sub", ["\x00", "a\x00b", "\ud800", "", "x" * 300, 12, ["sub-alice"]],
                         ids=["nul", "nul inside", "lone surrogate", "empty", "too long", "number", "list"])
def test_a_validly_signed_token_with_an_unusable_sub_is_401(api, db, seeded, cognito, sub):
    """Found by the fuzzing above: a signed token whose sub Postgres cannot take (a NUL, a lone
    surrogate) made every signed-in route answer 500."""
    for method, path in [("GET", "/api/activities/notifications"), ("POST", "/api/activities"),
                         ("POST", f"/api/activities/{seeded['parent']}/reply")]:
        response = api.request(method, path, headers=cognito.headers(sub),
                               json={"message": "hi", "ttl": "1-day"})
        assert response.status_code == 401, response.text
        assert response.json() == ["generic_401", "token_invalid"]
