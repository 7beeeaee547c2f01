"""Turn a PostgreSQL URL into libpq environment variables for the bin/db-* scripts.

Reads the URL from $DB_URL (not argv, so it never shows in `ps`) and prints
shell `export` lines: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and any
libpq option in the query string, plus CRUDDUR_DB_NAME (the database the URL
names) and CRUDDUR_DB_DISPLAY (the URL without its password, for messages).

Parsing the URL properly is what lets a script reach the maintenance database
by setting PGDATABASE=postgres, where text surgery on the URL would also cut
into a user called `cruddurroot`. Standard library only: the scripts run
before any virtualenv exists.
"""

from __future__ import annotations

import os
import shlex
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

# libpq URI query parameters and the environment variables that carry them.
QUERY_PARAMS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "host": "PGHOST",  # a Unix socket folder, given as ?host=/path
    "port": "PGPORT",
}
# Every variable this sets, cleared first so nothing leaks in from the caller's shell.
ALL_VARS = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE",
            "PGPASSFILE", *sorted(set(QUERY_PARAMS.values()) - {"PGHOST", "PGPORT"})]
DEFAULT_CONNECT_TIMEOUT = "5"  # an unreachable server fails the script fast


class UrlError(ValueError):
    pass


def parse(url: str) -> dict[str, str]:
    """libpq environment for `url`; raises UrlError with a message that omits secrets."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed [ of an IPv6 host; the message would not help more
        raise UrlError("is not a valid URL (e.g. postgresql://user:pass@host:5432/cruddur)") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise UrlError("must start with postgresql:// (e.g. postgresql://user:pass@host:5432/cruddur)")
    netloc = parts.netloc.rpartition("@")[2]
    if "," in netloc:
        raise UrlError("several hosts in one URL are not supported here")
    try:
        port = parts.port
    except ValueError:
        raise UrlError("the port is not a number") from None
    env = {}
    if parts.hostname:
        env["PGHOST"] = unquote(parts.hostname)
    if port:
        env["PGPORT"] = str(port)
    if parts.username:
        env["PGUSER"] = unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise UrlError("names no database (add /cruddur at the end)")
    env["PGDATABASE"] = dbname
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in QUERY_PARAMS:
            raise UrlError(f"has an unsupported parameter '{key}'")
        env[QUERY_PARAMS[key]] = value
    env.setdefault("PGCONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
    return env


def display(env: dict[str, str]) -> str:
    """user@host:port/dbname, never the password."""
    user = f"{env['PGUSER']}@" if "PGUSER" in env else ""
    port = f":{env['PGPORT']}" if "PGPORT" in env else ""
    return f"{user}{env.get('PGHOST', 'localhost')}{port}/{env['PGDATABASE']}"


def main() -> int:
    url = os.environ.get("DB_URL", "")
    name = os.environ.get("DB_URL_NAME", "the URL")
    try:
        env = parse(url)
    except UrlError as err:
        print(f"error: {name} {err}", file=sys.stderr)
        return 1
    print("unset " + " ".join(ALL_VARS))
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    print(f"export CRUDDUR_DB_NAME={shlex.quote(env['PGDATABASE'])}")
    print(f"export CRUDDUR_DB_DISPLAY={shlex.quote(display(env))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
