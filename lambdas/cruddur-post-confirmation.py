"""Cognito post-confirmation trigger: copy a user who just confirmed their sign-up into `users`.

Deployed by bin/lambda-deploy as the Lambda `cruddur-post-confirmation` (handler
`cruddur-post-confirmation.lambda_handler`), packaged with psycopg2-binary by bin/lambda-package.
bin/cognito-sync-users imports this file to backfill users with the same rules.

- Only `PostConfirmation_ConfirmSignUp` inserts; any other trigger source (a confirmed password
  reset, `PostConfirmation_ConfirmForgotPassword`) touches nothing. The event is returned unchanged.
- Idempotent: Cognito retries a trigger that failed or took longer than 5 seconds, so a user whose
  `sub` is already in `users` is success, never a second row. A handle already taken by another
  user is an error that says so.
- Errors are logged and raised, never swallowed: Cognito then fails the confirmation call, where a
  swallowed error would leave a confirmed user with no row.
- One connection per execution environment, made on first use, reused by warm invocations and
  remade when closed. Connect, statement and lock timeouts keep a call inside Cognito's 5 seconds.
- Nothing here logs the connection string or its password: messages name user@host:port/db.
"""

from __future__ import annotations

import logging
import os
import time
from urllib.parse import unquote, urlsplit

import psycopg2
import psycopg2.errors
import psycopg2.extensions

LOG = logging.getLogger("cruddur.post_confirmation")
LOG.setLevel(logging.INFO)

SIGN_UP = "PostConfirmation_ConfirmSignUp"

# users column <- Cognito user attribute
ATTRIBUTES = {
    "cognito_user_id": "sub",
    "email": "email",
    "handle": "preferred_username",
    "display_name": "name",
}

# Cognito waits 5 seconds for the function. One attempt takes at most a connect plus two
# statements; a second attempt (after a warm connection turned out dead) only starts if it fits.
CONNECT_TIMEOUT_S = 2  # libpq's minimum; per address the host name resolves to
STATEMENT_TIMEOUT_MS = 1000  # also the lock timeout: a blocked insert fails instead of waiting
TCP_USER_TIMEOUT_MS = 2000  # a warm connection whose peer vanished fails instead of hanging
BUDGET_S = 4.5
ATTEMPT_MAX_S = CONNECT_TIMEOUT_S + 2 * STATEMENT_TIMEOUT_MS / 1000

INSERT_USER = """
INSERT INTO public.users (display_name, email, handle, cognito_user_id)
VALUES (%(display_name)s, %(email)s, %(handle)s, %(cognito_user_id)s)
ON CONFLICT (cognito_user_id) DO NOTHING
RETURNING uuid
"""
FIND_USER = "SELECT 1 FROM public.users WHERE cognito_user_id = %(cognito_user_id)s"
HANDLE_CONSTRAINT = "users_handle_key"


class PostConfirmationError(Exception):
    """A user could not be saved; the message is safe to show (Cognito passes it to the client)."""


class MissingAttributeError(PostConfirmationError):
    def __init__(self, attribute: str):
        super().__init__(f"the user attribute '{attribute}' is missing or empty")
        self.attribute = attribute


class HandleTakenError(PostConfirmationError):
    def __init__(self, handle: str):
        super().__init__(f"the handle '{handle}' is already taken by another user")
        self.handle = handle


class DatabaseError(PostConfirmationError):
    """The database failed. str() is for the client; `detail` (never a password) is for the log."""

    def __init__(self, detail: str):
        super().__init__("the user could not be saved: database error (see the function's log)")
        self.detail = detail


class ConfigurationError(PostConfirmationError):
    pass


# --- the rules, shared with bin/cognito-sync-users -------------------------------------------


def user_from_attributes(attributes) -> dict[str, str]:
    """The users row for Cognito `attributes`; MissingAttributeError names what is absent."""
    if not isinstance(attributes, dict):
        raise MissingAttributeError("userAttributes")
    user = {}
    for column, name in ATTRIBUTES.items():
        value = attributes.get(name)
        if not isinstance(value, str) or not value.strip():
            raise MissingAttributeError(name)
        user[column] = value
    return user


def insert_user(conn, user: dict[str, str]) -> bool:
    """Insert `user`; True if added, False if its cognito_user_id was already there.

    `conn` must be in autocommit mode (as connect() makes it). HandleTakenError when another
    user has the handle.
    """
    with conn.cursor() as cur:
        try:
            cur.execute(INSERT_USER, user)
            return cur.fetchone() is not None
        except psycopg2.errors.UniqueViolation as err:
            if err.diag.constraint_name != HANDLE_CONSTRAINT:
                raise
        # The handle is taken: by this very user (a retry that raced the first call) or another.
        cur.execute(FIND_USER, user)
        if cur.fetchone() is not None:
            return False
        raise HandleTakenError(user["handle"])


# --- the connection --------------------------------------------------------------------------


def describe(url: str) -> str:
    """user@host:port/dbname of a PostgreSQL URL, never its password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the database"
    if parts.scheme not in ("postgres", "postgresql"):
        return "the database"
    user = f"{unquote(parts.username)}@" if parts.username else ""
    return f"{user}{host}{port}{parts.path or '/'}"


def scrub(text: str, url: str) -> str:
    """`text` without the URL or its password, in either spelling."""
    secrets = [url]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        secrets += [password, unquote(password)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text.strip()


def connect(url: str | None = None):
    """A new autocommit connection to `url` (default: $CONNECTION_URL) with this file's timeouts."""
    if url is None:
        url = os.environ.get("CONNECTION_URL", "")
    if not url:
        raise ConfigurationError("CONNECTION_URL is not set")
    where = describe(url)
    try:
        params = psycopg2.extensions.parse_dsn(url)
    except psycopg2.ProgrammingError:
        # libpq's message quotes the offending text, which may be the password
        raise DatabaseError("CONNECTION_URL is not a valid PostgreSQL URL "
                            "(postgresql://user:password@host:5432/cruddur)") from None
    timeouts = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={STATEMENT_TIMEOUT_MS}"
    params["options"] = f"{params.get('options', '')} {timeouts}".strip()
    params["connect_timeout"] = str(CONNECT_TIMEOUT_S)
    if psycopg2.extensions.libpq_version() >= 120000:  # an older libpq refuses the option
        params["tcp_user_timeout"] = str(TCP_USER_TIMEOUT_MS)
    params.setdefault("application_name", "cruddur-post-confirmation")
    try:
        conn = psycopg2.connect(**params)
    except psycopg2.Error as err:
        raise DatabaseError(f"cannot connect to {where}: {scrub(str(err), url)}") from None
    conn.autocommit = True
    return conn


_connection = None  # this execution environment's connection, made on first use


def get_connection():
    """The warm connection, made now if there is none or it was closed."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = connect()
    return _connection


def _forget_connection() -> None:
    global _connection
    if _connection is not None:
        _connection.close()
    _connection = None


def save_user(user: dict[str, str]) -> bool:
    """insert_user on the warm connection; a warm connection found dead is remade once if time allows."""
    started = time.monotonic()
    while True:
        reused = _connection is not None and not _connection.closed
        conn = get_connection()
        try:
            return insert_user(conn, user)
        except psycopg2.Error as err:
            detail = scrub(f"{type(err).__name__}: {err}", os.environ.get("CONNECTION_URL", ""))
            if not conn.closed:
                raise DatabaseError(detail) from None
            _forget_connection()
            if not reused or time.monotonic() - started + ATTEMPT_MAX_S > BUDGET_S:
                raise DatabaseError(f"the connection failed: {detail}") from None
            # a fresh connection is not `reused`: this retries at most once
            LOG.warning("the warm database connection was closed (%s); reconnecting", detail)


# --- the handler -----------------------------------------------------------------------------


def lambda_handler(event, context):
    """Cognito's entry point: insert the user on a confirmed sign-up; return the event unchanged."""
    source = event.get("triggerSource")
    who = event.get("userName")
    if source != SIGN_UP:
        LOG.info("%s for %s: nothing to do", source, who)
        return event
    try:
        user = user_from_attributes((event.get("request") or {}).get("userAttributes"))
        added = save_user(user)
    except PostConfirmationError as err:
        LOG.error("%s for %s failed: %s", source, who, getattr(err, "detail", err))
        raise
    if added:
        LOG.info("%s for %s: added user %s (@%s)", source, who, user["cognito_user_id"], user["handle"])
    else:
        LOG.info("%s for %s: user %s was already in users", source, who, user["cognito_user_id"])
    return event
