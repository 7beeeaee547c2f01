"""What the migration tests share: the scripts run against a database and a migrations folder (the
fixtures `database` and `folder`, in conftest.py), what they recorded, schema dumps, and the
repository's migrations."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg

from support import ROOT, run_script, script_env

REPO_MIGRATIONS = ROOT / "db" / "migrations"
FILE_RE = re.compile(r"([0-9]{14})_([a-z0-9_]+)\.(up|down)\.sql")


def write(folder: Path, version: str, name: str, up: str, down: str = "SELECT 1;\n") -> Path:
    """A migration pair; returns the up file."""
    up_path = folder / f"{version}_{name}.up.sql"
    up_path.write_text(up)
    (folder / f"{version}_{name}.down.sql").write_text(down)
    return up_path


def env_for(url: str, folder: Path | None = None, **extra: str) -> dict[str, str]:
    return script_env(CONNECTION_URL=url, MIGRATIONS_DIR=str(folder) if folder else None, **extra)


def run(name: str, *args: str, url: str, folder: Path | None = None, expect: int = 0, **extra: str):
    result = run_script(name, *args, env=env_for(url, folder, **extra))
    assert result.returncode == expect, f"bin/{name} {args}: exit {result.returncode}\n" \
                                        f"{result.stdout}\n{result.stderr}"
    return result


def query(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def recorded(url: str) -> list[tuple]:
    """schema_migrations, whole rows, in version order ([] when there is no such table)."""
    if not exists(url, "public.schema_migrations"):
        return []
    return query(url, "SELECT version, name, checksum, applied_at"
                      " FROM public.schema_migrations ORDER BY version")


def versions(url: str) -> list[str]:
    return [row[0] for row in recorded(url)]


def exists(url: str, table: str) -> bool:
    return query(url, "SELECT to_regclass(%s) IS NOT NULL", table)[0][0]


def schema_dump(pg, url: str) -> str:
    """pg_dump --schema-only of the database at `url` (with its GRANTs, so a migration that only
    grants is seen), without comments and session settings."""
    dbname = url.rsplit("/", 1)[1]
    env = {**os.environ, "PGPASSWORD": pg.password or ""}
    result = subprocess.run(
        [str(pg.bindir / "pg_dump"), "--schema-only", "--no-owner",
         "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", dbname],
        env=env, capture_output=True, text=True, check=True,
    )
    lines = [line for line in result.stdout.splitlines()
             if line.strip() and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config",
                                                      "\\restrict", "\\unrestrict"))]
    return "\n".join(lines)


def repo_migrations() -> list[tuple[str, str]]:
    """(version, name) of every migration in db/migrations, oldest first."""
    found = {FILE_RE.fullmatch(p.name).group(1, 2) for p in REPO_MIGRATIONS.glob("*.sql")}
    return sorted(found)


def copy_migration(version: str, name: str, folder: Path) -> None:
    for part in ("up", "down"):
        shutil.copy(REPO_MIGRATIONS / f"{version}_{name}.{part}.sql", folder)
