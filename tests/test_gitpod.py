"""The Gitpod workspace: .gitpod.yml's tasks, the scripts they name, and the postgres task run for real."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from aws_support import aws_script_env, client, make_rule, rule_now, serve_text
from support import ROOT


@pytest.fixture(scope="module")
def gitpod() -> dict:
    return yaml.safe_load((ROOT / ".gitpod.yml").read_text())


def task(gitpod: dict, name: str) -> dict:
    tasks = {t.get("name"): t for t in gitpod["tasks"]}
    assert name in tasks, f"no task named {name!r} in .gitpod.yml"
    return tasks[name]


def test_postgres_task_installs_the_client(gitpod):
    postgres = task(gitpod, "postgres")
    install = postgres.get("before", "") + postgres.get("init", "")
    assert "postgresql-client" in install
    assert "libpq-dev" in install


def test_postgres_task_refreshes_the_rule_on_every_start(gitpod):
    # `command` runs on every start; `init` only on the first one (or in a prebuild).
    command = task(gitpod, "postgres")["command"]
    assert re.search(r"^export GITPOD_IP=", command, re.M)
    assert re.search(r"^bin/rds-update-sg-rule\s*$", command, re.M)
    assert "rds-update-sg-rule" not in task(gitpod, "postgres").get("init", "")


def test_backend_task_runs_the_start_command(gitpod):
    # the README's start command, listening on all interfaces so Gitpod can forward the port
    assert re.search(r"^API_HOST=0\.0\.0\.0 bin/dev(\s|$)", task(gitpod, "backend")["command"], re.M)


def test_api_port_is_exposed(gitpod):
    assert 4567 in [port["port"] for port in gitpod["ports"]]


def test_every_script_named_exists_and_is_executable(gitpod):
    named = {script for t in gitpod["tasks"] for phase in ("before", "init", "command")
             for script in re.findall(r"\bbin/[\w.-]+", t.get(phase, ""))}
    assert named >= {"bin/rds-update-sg-rule", "bin/dev"}
    for script in sorted(named):
        path = ROOT / script
        assert path.is_file(), f"{script} does not exist"
        assert os.access(path, os.X_OK), f"{script} is not executable"


def test_every_task_is_valid_bash(gitpod):
    for t in gitpod["tasks"]:
        for phase in ("before", "init", "command"):
            if phase in t:
                result = subprocess.run(["bash", "-n"], input=t[phase], capture_output=True, text=True)
                assert result.returncode == 0, f"{t['name']}.{phase}: {result.stderr}"


def test_postgres_task_command_updates_the_rule(gitpod, aws_env):
    """The task's own command, with its IP lookup answered on 127.0.0.1 and AWS on moto."""
    ec2 = client(aws_env, "ec2")
    group, rule_id = make_rule(ec2)
    with serve_text("198.51.100.77\n") as url:
        env = aws_script_env(aws_env, DB_SG_ID=group, DB_SG_RULE_ID=rule_id, PUBLIC_IP_URL=url)
        result = subprocess.run(["bash", "-c", task(gitpod, "postgres")["command"]], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    now = rule_now(ec2, rule_id)
    assert (now["CidrIpv4"], now["Description"]) == ("198.51.100.77/32", "GITPOD")
