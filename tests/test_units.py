"""The API's pure functions, called directly: cursors, the search pattern, input validation, the
query loader, the server's settings. No database, no server."""

from __future__ import annotations

import pytest

from lib import paging, queries, validation
from lib.errors import ApiError
from lib.queries import load_query, sql_text
from lib.settings import Settings, SettingsError
from services.search_activities import like_pattern


def codes(call, *args) -> tuple[int, list[str]]:
    with pytest.raises(ApiError) as raised:
        call(*args)
    return raised.value.status, raised.value.codes


# -- cursors ---------------------------------------------------------------------------------------

def test_a_cursor_decodes_to_what_it_encodes_in_canonical_form():
    cursor = paging.encode_cursor("2026-12-04 03:04:27.368328+00", "2ACC6EE9-57CE-42E3-87C4-AA5655F85D92")
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe as it is
    assert paging.decode_cursor(cursor) == ("2026-12-04T03:04:27.368328+00:00",
                                            "2acc6ee9-57ce-42e3-87c4-aa5655f85d92")


@pytest.mark.parametrize("cursor", [
    "", "not base64!", paging.encode_cursor("2026-12-04 03:04:27", "2acc6ee9-57ce-42e3-87c4-aa5655f85d92"),
    paging.encode_cursor("yesterday+00", "2acc6ee9-57ce-42e3-87c4-aa5655f85d92"),
    paging.encode_cursor("2026-12-04 03:04:27+00", "not-a-uuid"), "QQ" * 101,
], ids=["empty", "not base64", "no offset", "not a time", "not a uuid", "too long"])
def test_a_bad_cursor_is_a_400(cursor):
    assert codes(paging.decode_cursor, cursor) == (400, ["cursor_invalid"])


# -- search ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("term,pattern", [
    ("cat", "%cat%"), ("100%", "%100\\%%"), ("a_b", "%a\\_b%"), ("c:\\dir", "%c:\\\\dir%"),
])
def test_like_pattern_takes_the_term_literally(term, pattern):
    assert like_pattern(term) == pattern


# -- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body,text,errors", [
    ({"message": "  hi  "}, "hi", []),
    ({"message": "é" * 280}, "é" * 280, []),
    ({"message": "x" * 281}, "x" * 281, ["message_exceed_max_chars"]),
    ({"message": " \n "}, "", ["message_blank"]),
    ({}, "", ["message_blank"]),
    ({"message": 12}, "", ["message_invalid"]),
    ({"message": "nul \x00 inside"}, "nul \x00 inside", ["message_invalid_characters"]),
    ({"message": "lone \ud800"}, "lone \ud800", ["message_invalid_characters"]),
])
def test_message_is_trimmed_and_its_problems_listed(body, text, errors):
    found: list[str] = []
    assert validation.message(body, found) == text
    assert found == errors


@pytest.mark.parametrize("text,storable", [
    ("line\nand\ttab", True), ("bell\x07", False), ("nul\x00", False), ("\ud83d", False), ("😀", True),
])
def test_storable_text(text, storable):
    assert validation.is_storable_text(text) is storable


def test_uuid_param_is_canonical_or_a_400():
    canonical = "2acc6ee9-57ce-42e3-87c4-aa5655f85d92"
    assert validation.uuid_param(canonical.upper()) == canonical
    for bad in ("2acc6ee957ce42e387c4aa5655f85d92", "{2acc6ee9-57ce-42e3-87c4-aa5655f85d9}", "x" * 36):
        assert codes(validation.uuid_param, bad) == (400, ["uuid_invalid"])


@pytest.mark.parametrize("handle", ["", "h" * 257, "nul\x00"])
def test_a_handle_that_cannot_exist_is_not_found(handle):
    assert codes(validation.handle_param, handle) == (404, ["user_not_found"])


# -- the query loader ------------------------------------------------------------------------------

def test_named_parameters_become_positional_once_each_and_a_literal_percent_stays():
    query = load_query("activities/home")
    assert query.param_names == ("cursor_created_at", "cursor_uuid", "limit")
    assert b"%(" not in query.wire_text and b"$3 + 1" in query.wire_text
    assert not query.plan_every_call
    assert load_query("activities/search").plan_every_call


def test_a_query_name_outside_the_sql_folder_is_refused():
    with pytest.raises(ValueError, match="outside"):
        load_query("../../../etc/passwd")


@pytest.mark.parametrize(("name", "condition"), [
    ("activities/home", "(a.reply_to_activity_uuid IS NULL)"),
    ("activities/user", "(a.user_uuid = (SELECT uuid FROM profile) AND a.reply_to_activity_uuid IS NULL)"),
    ("activities/notifications", "(a.reply_to_user_uuid = caller.uuid AND a.user_uuid <> caller.uuid)"),
])
def test_a_shared_part_is_written_into_the_query_with_its_condition(name, condition):
    text = sql_text(name)
    assert "{{" not in text and "}}" not in text
    assert "_live_per_lifetime_class.sql:" not in text  # the part's comments stay in the part
    walk = [line.strip() for line in text.splitlines()
            if line.strip().startswith(("SELECT c.uuid", "CROSS JOIN LATERAL", "AND (a.", "LIMIT"))]
    cursor = "AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)"
    assert walk == ["SELECT c.uuid", "CROSS JOIN LATERAL (", f"AND {condition}", cursor,
                    "LIMIT %(limit)s + 1", "LIMIT %(limit)s + 1"]


def test_a_part_without_a_place_for_the_condition_is_refused(tmp_path, monkeypatch):
    (tmp_path / "_part.sql").write_text("-- a part\nSELECT 1\n")
    (tmp_path / "query.sql").write_text("SELECT * FROM ({{ _part | true }}) t\n")
    monkeypatch.setattr(queries, "SQL_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"has no \{\{ where \}\}"):
        sql_text("query")


# -- the server's settings -------------------------------------------------------------------------

def test_settings_from_the_environment():
    settings = Settings.from_env({"BIND": "[::1]:8080", "WEB_CONCURRENCY": "3", "ACCESS_LOG": "1",
                                  "DB_POOL_TIMEOUT": "0.5", "READ_CONNECTION_URL": "postgresql://replica",
                                  "DB_POOLER": "", "FRONTEND_URL": ""})
    assert (settings.host, settings.port, settings.web_concurrency, settings.web_threads) == (
        "::1", 8080, 3, 1)
    assert settings.access_log is True and settings.db_pool_timeout == 0.5
    assert settings.frontend_url is None  # empty is unset
    assert settings.connection_budget() == (
        "3 workers x 1 = 3 connections to the primary, 3 x 1 = 3 to the replica")
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(("environ", "message"), [
    ({"BIND": "8080"}, "BIND must be host:port, not '8080'"),
    ({"BIND": "host:port"}, "BIND must be host:port"),
    ({"BIND": "host:70000"}, "BIND must be host:port"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be at least 1, not 0"),
    ({"WEB_THREADS": "x"}, "WEB_THREADS must be a whole number, not 'x'"),
    ({"DB_POOL_SIZE": "2.5"}, "DB_POOL_SIZE must be a whole number, not '2.5'"),
    ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT must be a number, not 'soon'"),
    ({"DB_POOL_TIMEOUT": "nan"}, "DB_POOL_TIMEOUT must be a number, not 'nan'"),
    ({"DB_STATEMENT_TIMEOUT_MS": "0"}, "DB_STATEMENT_TIMEOUT_MS must be more than 0"),
    ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG must be 1 or 0"),
    ({"DB_POOLER": "session"}, "DB_POOLER must be empty (direct) or 'transaction', not 'session'"),
    ({"DB_PLAN_CACHE_MODE": "fast"}, "DB_PLAN_CACHE_MODE must be one of auto, force_generic_plan"),
])
def test_a_setting_that_cannot_be_used_is_named(environ, message):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    assert message in str(refused.value)


# -- the tests' own contract check -----------------------------------------------------------------

def test_the_in_process_contract_check_refuses_a_response_openapi_yml_does_not_allow():
    """InProcessApi checks every response against openapi.yml: a check that could not fail would
    make every in-process test's contract assertion hollow."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request, Response

    from support import assert_werkzeug_response_matches_spec

    def check(body: str, path: str = "/api/health-check") -> None:
        request = Request(EnvironBuilder(path).get_environ())
        assert_werkzeug_response_matches_spec(request, Response(body, mimetype="application/json"))

    check('{"success": true, "ver": 1}')
    with pytest.raises(AssertionError, match=r"breaks openapi\.yml"):
        check('{"success": "yes", "ver": 1}')
    check('{"anything": "goes"}', path="/not/in/the/spec")  # routes outside it are not checked
