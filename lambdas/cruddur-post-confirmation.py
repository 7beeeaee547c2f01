"""Cognito post-confirmation trigger: save a user who just confirmed their sign-up in `users`.

Deployed by bin/lambda-deploy as the Lambda `cruddur-post-confirmation` (handler
`cruddur-post-confirmation.lambda_handler`), packaged with psycopg2-binary by bin/lambda-package.
bin/cognito-sync-users imports this file to backfill users with the same rules.

- Only `PostConfirmation_ConfirmSignUp` saves; any other trigger source (a confirmed password
  reset, `PostConfirmation_ConfirmForgotPassword`) touches nothing. The event is returned unchanged.
- The user's row is added, or, when a row with the same handle has no Cognito user yet (a seed
  user: bin/db-seed makes `chrisfenton` and `bayko`), that row is linked to this Cognito user: its
  cognito_user_id, email and display_name set from Cognito's attributes. One statement does either.
- The display name is Cognito's `name`, trimmed and cut to 50 characters, the most `users` holds
  (users_display_name_length; the user can change it in their profile).
- Handles are case-insensitive (`ChrisFenton` is `chrisfenton`): compared as lower(handle) in the
  database, the rule of its unique index users_handle_lower_key; the stored spelling is kept.
- Idempotent: Cognito retries a trigger that failed or took longer than 5 seconds, so a user whose
  `sub` is already in `users` is success, never a second row or a second link. A handle held by
  another Cognito user is an error that says so, and changes nothing.
- Errors are logged and raised, never swallowed: Cognito then fails the confirmation call, where a
  swallowed error would leave a confirmed user with no row.
- The database: with DB_SECRET_ARN set, the credentials are a Secrets Manager secret in the shape
  RDS uses (`username`, `password`, and `host`, `port`, `dbname` unless DB_HOST, DB_PORT, DB_NAME
  give them), read with boto3 (the Lambda runtime's own) on first use, kept for the execution
  environment, and read again once when the database refuses them (the secret was rotated).
  Without it, CONNECTION_URL (local runs, tests).
- One connection per execution environment, made on first use, reused by warm invocations and
  remade when closed. Connect, statement and lock timeouts keep a call inside Cognito's 5 seconds.
- No password in any log line or error: messages name user@host:port/db and the secret's ARN.
"""

from __future__ import annotations

import json
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

MAX_DISPLAY_NAME_CHARS = 50  # the users_display_name_length constraint

# What add_user did.
ADDED, LINKED, ALREADY = "added", "linked", "already"  # as ADD_USER and FIND_USER say it

# Cognito waits 5 seconds for the function. One attempt takes at most a connect and two
# statements (and, on first use, a read of the secret); a second attempt (after a warm connection
# turned out dead, or the database refused the credentials kept) only starts if it fits.
CONNECT_TIMEOUT_S = 2  # libpq's minimum; per address the host name resolves to
STATEMENT_TIMEOUT_MS = 1000  # also the lock timeout: a blocked statement fails instead of waiting
TCP_USER_TIMEOUT_MS = 2000  # a warm connection whose peer vanished fails instead of hanging
SECRET_CONNECT_TIMEOUT_S = 1  # Secrets Manager; one attempt (Cognito retries the whole call)
SECRET_READ_TIMEOUT_S = 2  # it answers in tens of milliseconds: this is for a bad day
BUDGET_S = 4.5
ATTEMPT_MAX_S = CONNECT_TIMEOUT_S + 2 * STATEMENT_TIMEOUT_MS / 1000
# Credentials the database refuses are read again only when the refusal came this early: a
# refusal, a read of the secret and a connect each take milliseconds; a refusal later than this
# means the budget is mostly spent on something slow, and a second read would outlast it.
REREAD_BY_S = 1.0

# Link the row that holds the handle and no Cognito user, or else add one; ON CONFLICT leaves
# a handle or sub that is already there alone (a retry, a taken handle: FIND_USER tells which).
# A concurrent delivery that links or adds the same row first makes this one do neither.
ADD_USER = """
WITH linked AS (
  UPDATE public.users
  SET cognito_user_id = %(cognito_user_id)s, email = %(email)s, display_name = %(display_name)s
  WHERE lower(handle) = lower(%(handle)s) AND cognito_user_id IS NULL
    AND NOT EXISTS (SELECT FROM public.users WHERE cognito_user_id = %(cognito_user_id)s)
  RETURNING handle
), added AS (
  INSERT INTO public.users (display_name, email, handle, cognito_user_id)
  SELECT %(display_name)s, %(email)s, %(handle)s, %(cognito_user_id)s
  WHERE NOT EXISTS (SELECT FROM linked)
  ON CONFLICT DO NOTHING
  RETURNING handle
)
SELECT 'linked', handle FROM linked
UNION ALL
SELECT 'added', handle FROM added
"""
FIND_USER = "SELECT 'already', handle FROM public.users WHERE cognito_user_id = %(cognito_user_id)s"


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

    def __init__(self, detail: str, *, auth_failed: bool = False):
        super().__init__("the user could not be saved: database error (see the function's log)")
        self.detail = detail
        self.auth_failed = auth_failed  # the server refused the credentials


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
    user["display_name"] = user["display_name"].strip()[:MAX_DISPLAY_NAME_CHARS]
    return user


def add_user(conn, user: dict[str, str]) -> tuple[str, str]:
    """Save `user`: (what happened, the handle as stored). ADDED: a new row; LINKED: the row of
    its handle had no Cognito user; ALREADY: its cognito_user_id is in users. HandleTakenError,
    with nothing changed, when another Cognito user holds the handle. Runs in `conn`'s
    transaction, or its own (autocommit).
    """
    with conn.cursor() as cur:
        try:
            cur.execute(ADD_USER, user)
            row = cur.fetchone()
        except psycopg2.errors.UniqueViolation:
            # Another delivery of this user saved it between this statement's snapshot and its
            # write (FIND_USER sees it); anything else is a real error.
            if not conn.autocommit:  # the transaction is aborted: FIND_USER could not run
                raise
            row = None
        if row is None:
            cur.execute(FIND_USER, user)
            row = cur.fetchone()
        if row is None:
            raise HandleTakenError(user["handle"])
        return row[0], row[1]


# --- where the database is -------------------------------------------------------------------


class Target:
    """A database to connect to: libpq keywords (the password among them) and safe names."""

    def __init__(self, params: dict[str, str], where: str, origin: str, secrets: tuple[str, ...] = ()):
        self.params = params
        self.where = where  # user@host:port/dbname
        self.origin = origin  # where the credentials came from: "CONNECTION_URL", "secret arn:..."
        self.secrets = secrets

    def __repr__(self) -> str:
        return f"Target({self.where} from {self.origin})"  # never the password

    def scrub(self, text: str) -> str:
        """`text` without the password (or the URL holding it)."""
        return blank(text, self.secrets)


def blank(text: str, secrets) -> str:
    """`text` with each of `secrets` (longest first) replaced by ***."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text.strip()


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


def url_secrets(url: str) -> tuple[str, ...]:
    """The URL and its password, in either spelling: what must never be shown."""
    secrets = [url]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        secrets += [password, unquote(password)]
    return tuple(secrets)


def target_from_url(url: str, variable: str = "CONNECTION_URL") -> Target:
    """The Target of a PostgreSQL URL (or libpq key=value string) held in `variable`."""
    if not url:
        raise ConfigurationError(f"{variable} is not set")
    try:
        params = psycopg2.extensions.parse_dsn(url)
    except psycopg2.ProgrammingError:
        # libpq's message quotes the offending text, which may be the password
        raise DatabaseError(f"{variable} is not a valid PostgreSQL URL "
                            "(postgresql://user:password@host:5432/cruddur)") from None
    return Target(params, describe(url), variable, url_secrets(url))


def target_from_secret(arn: str, values: dict) -> Target:
    """The Target of an RDS-shaped secret's `values`: username and password from the secret;
    host, port and dbname from it too, else from DB_HOST, DB_PORT (5432) and DB_NAME."""

    def wanted(key: str, variable: str, default: str | None = None) -> str:
        value = values.get(key)
        if value is None or value == "":
            value = os.environ.get(variable) or default
            if value is None:
                raise DatabaseError(f"secret {arn} has no '{key}' and {variable} is not set")
        return str(value)

    for key in ("username", "password"):
        if not isinstance(values.get(key), str) or not values[key]:
            raise DatabaseError(f"secret {arn} has no '{key}' (it needs the JSON keys username and "
                                "password, as RDS writes them)")
    port = wanted("port", "DB_PORT", "5432")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DatabaseError(f"the port of secret {arn} (or DB_PORT) is not a TCP port")
    params = {"host": wanted("host", "DB_HOST"), "port": port, "dbname": wanted("dbname", "DB_NAME"),
              "user": values["username"], "password": values["password"]}
    where = f"{params['user']}@{params['host']}:{port}/{params['dbname']}"
    return Target(params, where, f"secret {arn}", (values["password"],))


_secret: tuple[str, dict] | None = None  # (ARN, its values): read once per execution environment
_secrets_client = None


def read_secret(arn: str) -> dict:
    """The JSON object of secret `arn`, read from Secrets Manager (in the ARN's region; a name is
    looked up in the function's own) now."""
    global _secrets_client
    import boto3  # the Lambda runtime has it; only this path needs it
    import botocore.config
    import botocore.exceptions

    region = arn.split(":")[3] if arn.startswith("arn:") and arn.count(":") >= 6 else None
    try:
        if _secrets_client is None or (region and _secrets_client.meta.region_name != region):
            config = botocore.config.Config(connect_timeout=SECRET_CONNECT_TIMEOUT_S,
                                            read_timeout=SECRET_READ_TIMEOUT_S,
                                            retries={"total_max_attempts": 1})
            _secrets_client = boto3.client("secretsmanager", region_name=region, config=config)
        text = _secrets_client.get_secret_value(SecretId=arn).get("SecretString")
    except botocore.exceptions.ClientError as err:
        error = err.response.get("Error", {})
        raise DatabaseError(f"cannot read secret {arn}: {error.get('Code')}: {error.get('Message')}") \
            from None
    except botocore.exceptions.BotoCoreError as err:
        raise DatabaseError(f"cannot read secret {arn}: {err}") from None
    try:
        values = json.loads(text or "")
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise DatabaseError(f"secret {arn} is not a JSON object (SecretString, as RDS writes it)")
    return values


def current_target(refresh: bool = False) -> tuple[Target, bool]:
    """Where to connect, and whether its credentials were read just now (so are the newest)."""
    global _secret
    arn = os.environ.get("DB_SECRET_ARN", "")
    if not arn:
        return target_from_url(os.environ.get("CONNECTION_URL", "")), True
    fresh = refresh or _secret is None or _secret[0] != arn
    if fresh:
        _secret = None
        values = read_secret(arn)
        target = target_from_secret(arn, values)  # checked before it is kept
        _secret = (arn, values)
        LOG.info("read the database credentials for %s from secret %s", target.where, arn)
        return target, True
    return target_from_secret(arn, _secret[1]), False


# --- the connection --------------------------------------------------------------------------


def connect(target: Target | str):
    """A new autocommit connection to `target` (or a URL) with this file's timeouts."""
    if isinstance(target, str):
        target = target_from_url(target)
    params = dict(target.params)
    timeouts = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={STATEMENT_TIMEOUT_MS}"
    params["options"] = f"{params.get('options', '')} {timeouts}".strip()
    params["connect_timeout"] = str(CONNECT_TIMEOUT_S)
    if psycopg2.extensions.libpq_version() >= 120000:  # an older libpq refuses the option
        params["tcp_user_timeout"] = str(TCP_USER_TIMEOUT_MS)
    params.setdefault("application_name", "cruddur-post-confirmation")
    try:
        conn = psycopg2.connect(**params)
    except psycopg2.Error as err:
        message = target.scrub(str(err))
        via = "" if target.origin.endswith("CONNECTION_URL") else f" with the credentials of {target.origin}"
        raise DatabaseError(f"cannot connect to {target.where}{via}: {message}",
                            auth_failed="authentication failed" in message) from None
    conn.autocommit = True
    return conn


_connection = None  # this execution environment's connection, made on first use


def get_connection(started: float | None = None):
    """The warm connection, made now if there is none or it was closed.

    Credentials kept from an earlier invocation that the database refuses are read again from
    the secret, once, when the refusal came within REREAD_BY_S of `started`.
    """
    global _connection
    if _connection is not None and not _connection.closed:
        return _connection
    started = time.monotonic() if started is None else started
    target, fresh = current_target()
    try:
        _connection = connect(target)
    except DatabaseError as err:
        late = time.monotonic() - started > REREAD_BY_S
        if fresh or not err.auth_failed or late:
            raise
        LOG.warning("the database refused the credentials kept from %s (rotated?): reading it again",
                    target.origin)
        _connection = connect(current_target(refresh=True)[0])
    return _connection


def _forget_connection() -> None:
    global _connection
    if _connection is not None:
        _connection.close()
    _connection = None


def save_user(user: dict[str, str]) -> tuple[str, str]:
    """add_user on the warm connection; a warm connection found dead is remade once if time allows."""
    started = time.monotonic()
    while True:
        reused = _connection is not None and not _connection.closed
        conn = get_connection(started)
        try:
            return add_user(conn, user)
        except psycopg2.Error as err:
            detail = _scrub_any(f"{type(err).__name__}: {err}")
            if not conn.closed:
                raise DatabaseError(detail) from None
            _forget_connection()
            if not reused or time.monotonic() - started + ATTEMPT_MAX_S > BUDGET_S:
                raise DatabaseError(f"the connection failed: {detail}") from None
            # a fresh connection is not `reused`: this retries at most once
            LOG.warning("the warm database connection was closed (%s); reconnecting", detail)


def _scrub_any(text: str) -> str:
    """`text` without CONNECTION_URL's password nor the kept secret's."""
    secrets = url_secrets(os.environ.get("CONNECTION_URL", ""))
    if _secret is not None:
        secrets += (str(_secret[1].get("password", "")),)
    return blank(text, secrets)


# --- the handler -----------------------------------------------------------------------------

SAID = {ADDED: "added user {sub} (@{handle})",
        LINKED: "linked user {sub} to the existing @{handle}",
        ALREADY: "user {sub} was already in users (@{handle})"}


def lambda_handler(event, context):
    """Cognito's entry point: save the user on a confirmed sign-up; return the event unchanged."""
    source = event.get("triggerSource")
    who = event.get("userName")
    if source != SIGN_UP:
        LOG.info("%s for %s: nothing to do", source, who)
        return event
    try:
        user = user_from_attributes((event.get("request") or {}).get("userAttributes"))
        outcome, handle = save_user(user)
    except PostConfirmationError as err:
        LOG.error("%s for %s failed: %s", source, who, getattr(err, "detail", err))
        raise
    LOG.info("%s for %s: %s", source, who, SAID[outcome].format(sub=user["cognito_user_id"], handle=handle))
    return event
