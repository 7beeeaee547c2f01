"""bin/bench, so the benchmark itself cannot rot: it stops with an install hint when wrk is
missing, and, where wrk is installed, a tiny run (1,000 and 1,500 activities, 1 s per
measurement) writes a well-formed results table, the mostly expired table beside it, the plan
check and the query plans, the latest run only. Speed is not asserted. The two tiny runs share
the routes (--routes): every route is measured by one of them, and every plan by the direct one."""

from __future__ import annotations

import re
import shutil

import pytest

from support import PGBOUNCER_INSTALL_HINT, find_pgbouncer, run_script, script_env

COLUMNS = ["activities", "request", "items", "body B", "req/s", "p50 ms", "p99 ms", "conns/worker",
           "p50 ms, 1 conn", "pgbench tps", "% of pgbench", "HTTP stack req/s", "% of HTTP",
           "peak MB/worker"]
# wrk's and pgbench's connections in the tiny runs: one, so that a measurement keeps one core busy,
# not both, while the rest of the suite runs beside it
CONNECTIONS = 1
REQUESTS = {"home": ["home (first)", "home (deep)"], "user": ["user (first)", "user (deep)"],
            "search": ["search (first)", "search (deep)", "search (rare)"],
            "notifications": ["notifications (first)", "notifications (deep)"],
            "status": ["status (first)"],
            "create": ["POST /api/activities"]}
DIRECT_ROUTES, POOLED_ROUTES = ("home", "create"), ("user", "search", "notifications", "status")
WITH_CEILINGS = {"home (first)", "user (first)", "search (first)", "POST /api/activities"}


def test_without_wrk_it_says_how_to_install_it_and_stops(tmp_path):
    result = run_script("bench", "--output", str(tmp_path / "results.md"),
                        env=script_env(BENCH_WRK="wrk-not-installed-here"), timeout=120)
    assert result.returncode == 2
    assert "wrk is not installed" in result.stderr
    assert "apt-get install -y wrk" in result.stderr
    assert not (tmp_path / "results.md").exists()


@pytest.mark.parametrize("args", [["--activities", "10"], ["--routes", "home,timeline"],
                                  ["--against", "/nowhere"], ["--expired-size", "10"],
                                  ["--connections", "0"]])
def test_rejects_a_bad_argument(args):
    result = run_script("bench", *args, env=script_env(), timeout=120)
    assert result.returncode == 2
    assert args[0] in result.stderr


def cells(line: str) -> list[str]:
    assert line.startswith("|") and line.endswith("|"), line
    return [cell.strip() for cell in line[1:-1].split("|")]


def number(text: str) -> float:
    return float(text.replace(",", ""))


def assert_well_formed(text: str, sizes: tuple[str, ...], routes: tuple[str, ...]) -> None:
    """The results table: its columns, a row per size and request, each cell where it belongs."""
    main_table = text.split("## A mostly expired table", 1)[0]
    lines = [line for line in main_table.splitlines() if line.startswith("|")]
    assert cells(lines[0]) == COLUMNS
    assert set(lines[1]) <= set("|-:")
    rows = [cells(line) for line in lines[2:]]
    assert all(len(row) == len(COLUMNS) for row in rows)
    assert [(row[0], row[1]) for row in rows] == [
        (size, request) for size in sizes for route in routes for request in REQUESTS[route]]
    for row in rows:
        assert number(row[4]) > 0 and number(row[5]) > 0 and number(row[6]) >= number(row[5])
        # the split the sampler saw; a 1 s measurement on a busy machine may end before it sees any
        if row[7]:
            assert re.fullmatch(r"\d+(\+\d+)*", row[7]), row[7]
            assert 0 < sum(int(n) for n in row[7].split("+")) <= CONNECTIONS
        assert number(row[13]) > 0
        if row[1] == "POST /api/activities":
            assert row[8] == ""
        else:
            assert number(row[8]) > 0
        if row[1] in WITH_CEILINGS:
            assert number(row[9]) > 0 and number(row[11]) > 0
            assert number(row[10]) == pytest.approx(100 * number(row[4]) / number(row[9]), abs=1)
        else:
            assert row[9] == row[10] == row[11] == row[12] == ""


needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None,
                               reason="wrk is not installed (apt-get install wrk)")


@needs_wrk
def test_a_tiny_run_writes_a_well_formed_table_and_the_plans(tmp_path):
    results, plans = tmp_path / "results.md", tmp_path / "PLANS.md"
    result = run_script("bench", "--activities", "1500", "--duration", "1", "--connections", str(CONNECTIONS),
                        "--routes", ",".join(DIRECT_ROUTES), "--datadir", str(tmp_path / "pgdata"),
                        "--output", str(results),
                        "--plans", str(plans), env=script_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    text = results.read_text()
    assert text in result.stdout  # printed as well as written
    assert_well_formed(text, ("1,000", "1,500"), DIRECT_ROUTES)
    targets = text.split("## Targets", 1)[1]
    assert re.search(r"Home page at 1,500: \d+% of the pgbench ceiling", targets)
    # the latency ceilings beside the API's p99, from pgbench's per-transaction log and wrk
    assert re.search(r"the database alone \(pgbench\) had p99 \d+\.\d\d ms, and the HTTP stack"
                     r" alone \d+\.\d\d ms", targets)
    assert len(re.findall(r"page latency \(p50, 1 connection\) at 1,500 vs 1,000", targets)) == 2
    assert "POST /api/activities at 1,500" in targets

    # the list routes on the mostly expired table (1,500 activities, 5 cruds live), beside the live one's
    expired = text.split("## A mostly expired table", 1)[1].split("\n## ", 1)[0]
    assert "1,500 activities, all expired but 5 cruds" in expired and "the live table of 1,500" in expired
    rows = [cells(line) for line in expired.splitlines() if line.startswith("| ") and "request" not in line]
    measured = [row[0] for row in rows]
    lists = [request for route in DIRECT_ROUTES if route != "create" for request in REQUESTS[route]]
    # every first page; a deep page where the list has a live item to start it from
    assert measured == [request for request in lists if request in measured]
    assert {request for request in lists if request.endswith("(first)")} <= set(measured)
    for row in rows:
        assert all(number(cell) > 0 for cell in row[2:6]) and int(row[1]) <= 5 + 5, row
    assert "Tables: live, 1,000, 1,500 activities; mostly expired, 1,500 activities" in text

    # the plan check, one line per list query, and nothing from an earlier run
    # (on the live table: every page; on the mostly expired one: every first page and search's rare
    # term, a deep one where a live item starts it)
    for table, pages in (("", {10}), (", mostly expired", {6, 7, 8, 9, 10})):
        checks = text.split(f"## Query plans at 1,500 activities{table}\n", 1)[1].split("\n## ", 1)[0]
        plan_lines = re.findall(r"^- \w+, (first|deep|rare) page \(`activities/\w+\.sql`\): (ok|CHECK): ",
                                checks, re.MULTILINE)
        assert len(plan_lines) in pages, checks
    assert text.count("# bin/bench results") == 1

    plan_text = plans.read_text()
    assert plan_text.count("# Query plans at 1,500 activities\n") == 1
    assert plan_text.count("# Query plans at 1,500 activities, mostly expired\n") == 1
    for route in ("home", "user", "search", "notifications"):
        for page in ("first", "deep"):
            assert f"## {route}, {page} page" in plan_text
    assert "## search, rare page" in plan_text and "## status, first page" in plan_text
    assert "Index" in plan_text and "Buffers:" in plan_text
    assert not (tmp_path / "pgdata").exists() or not any((tmp_path / "pgdata").iterdir())


@needs_wrk
@pytest.mark.skipif(find_pgbouncer() is None, reason=PGBOUNCER_INSTALL_HINT)
def test_a_tiny_pooled_run_goes_through_pgbouncer(tmp_path):
    results, plans = tmp_path / "results-pooled.md", tmp_path / "PLANS.md"
    result = run_script("bench", "--pooled", "--activities", "400", "--duration", "1",
                        "--connections", str(CONNECTIONS),
                        "--expired-size", "0",
                        "--routes", ",".join(POOLED_ROUTES), "--datadir", str(tmp_path / "pgdata"),
                        "--output", str(results),
                        "--plans", str(plans), env=script_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = results.read_text()
    assert_well_formed(text, ("400",), POOLED_ROUTES)
    pooled = re.search(r"Pooled: the API reached PostgreSQL through PgBouncer in transaction mode"
                       r" \(DB_POOLER=transaction\), (\d+) API connections on (\d+) server", text)
    assert pooled and int(pooled[1]) == 4 * int(pooled[2]), pooled
    assert not plans.exists() and "## Query plans" not in text  # the plans are the direct run's
    assert "mostly expired" not in text
