"""The bin/rds-* scripts as subprocesses, through the real aws CLI, against a local moto server."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import termios
import time

import pytest

from aws_support import (
    INSTANCE,
    OLD_CIDR,
    aws_script_env,
    client,
    fake_aws,
    make_rule,
    rule_now,
    serve_text,
)
from support import ROOT, TEST_PASSWORD, VENV_BIN, changed, run_script

# --- fixtures ----------------------------------------------------------------------------------

# Security-group tests each make a group of their own, so they share moto's account as it is; the
# RDS tests, which name one instance, start from an empty account (aws_env resets moto).

@pytest.fixture
def env(moto):
    return aws_script_env(moto)


@pytest.fixture
def ec2(moto):
    return client(moto, "ec2")


@pytest.fixture
def rds(aws_env):
    return client(aws_env, "rds")


@pytest.fixture
def rule(ec2, env):
    """(group id, rule id); `env` carries them as DB_SG_ID and DB_SG_RULE_ID."""
    group, rule_id = make_rule(ec2)
    env.update(DB_SG_ID=group, DB_SG_RULE_ID=rule_id)
    return group, rule_id


@pytest.fixture
def no_aws(tmp_path, env):
    """A failing `aws` first on PATH that records any call: proves a script made none."""
    env["PATH"], calls = fake_aws(tmp_path / "no-aws", "exit 99")
    return calls


def describe(rds, instance: str = INSTANCE) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]


def instance_exists(rds, instance: str = INSTANCE) -> bool:
    try:
        describe(rds, instance)
    except rds.exceptions.DBInstanceNotFoundFault:
        return False
    return True


def make_instance(rds, instance: str = INSTANCE) -> None:
    rds.create_db_instance(DBInstanceIdentifier=instance, DBInstanceClass="db.t3.micro", Engine="postgres",
                           MasterUsername="cruddurroot", MasterUserPassword=TEST_PASSWORD,
                           AllocatedStorage=20, DBName="cruddur")


def error_line(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "error: " in result.stderr, result.stderr
    return result.stderr


# --- bin/rds-update-sg-rule --------------------------------------------------------------------

def assert_rule(ec2, rule_id: str, cidr: str) -> None:
    now = rule_now(ec2, rule_id)
    assert (now["CidrIpv4"], now["Description"], now["IpProtocol"], now["FromPort"], now["ToPort"]) == \
        (cidr, "GITPOD", "tcp", 5432, 5432)


def test_sg_rule_from_argument(env, rule, ec2):
    group, rule_id = rule
    result = run_script("rds-update-sg-rule", "203.0.113.7", env=env)
    assert result.returncode == 0, result.stderr
    assert_rule(ec2, rule_id, "203.0.113.7/32")
    assert f"{rule_id} in {group}: tcp 5432-5432 from 203.0.113.7/32 (GITPOD)" in result.stdout


def test_sg_rule_argument_wins_over_gitpod_ip(env, rule, ec2):
    env["GITPOD_IP"] = "198.51.100.9"
    assert run_script("rds-update-sg-rule", env=env).returncode == 0
    assert_rule(ec2, rule[1], "198.51.100.9/32")
    assert run_script("rds-update-sg-rule", "203.0.113.8", env=env).returncode == 0
    assert_rule(ec2, rule[1], "203.0.113.8/32")


def test_sg_rule_from_lookup(env, rule, ec2):
    with serve_text("198.51.100.23\n") as url:
        result = run_script("rds-update-sg-rule", env={**env, "PUBLIC_IP_URL": url})
    assert result.returncode == 0, result.stderr
    assert_rule(ec2, rule[1], "198.51.100.23/32")


def test_sg_rule_lookup_times_out(env, rule, ec2, no_aws):
    with serve_text("198.51.100.23\n", delay=8) as url:
        started = time.monotonic()
        result = run_script("rds-update-sg-rule", env={**env, "PUBLIC_IP_URL": url, "PUBLIC_IP_TIMEOUT": "1"})
        elapsed = time.monotonic() - started
    assert "could not look up the public IP" in error_line(result)
    assert elapsed < 6
    assert not no_aws.exists()


def test_sg_rule_unknown_rule_is_a_clean_error(env, rule):
    env["DB_SG_RULE_ID"] = "sgr-0123456789abcdef0"
    stderr = error_line(run_script("rds-update-sg-rule", "203.0.113.7", env=env))
    assert "InvalidSecurityGroupRuleId.NotFound" in stderr
    assert "could not update rule sgr-0123456789abcdef0" in stderr


BAD_IPS = ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.4/32", "/32", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ",
           "1.2.3.4\n5.6.7.8", "::1", "2001:db8::1", "example.com", "1.2.3.-4", "--help",
           "\uff11.\uff12.\uff13.\uff14"]  # fullwidth digits


@pytest.mark.parametrize("ip", BAD_IPS)
@pytest.mark.parametrize("origin", ["the first argument", "GITPOD_IP"])
def test_sg_rule_refuses_bad_ip_before_any_aws_call(env, rule, ec2, no_aws, ip, origin):
    if origin == "GITPOD_IP":
        result = run_script("rds-update-sg-rule", env={**env, "GITPOD_IP": ip})
    else:
        result = run_script("rds-update-sg-rule", ip, env=env)
    assert f"error: the IP from {origin}" in error_line(result)
    assert not no_aws.exists(), "aws was called"
    assert rule_now(ec2, rule[1])["CidrIpv4"] == OLD_CIDR


@pytest.mark.parametrize(("body", "status", "message"), [
    ("", 200, "is empty"),
    ("<html>your IP</html>", 200, "is not an IPv4 address"),
    ("1.2.3.4/32\n", 200, "is not an IPv4 address"),
    ("198.51.100.23\n", 500, "could not look up the public IP"),
])
def test_sg_rule_refuses_bad_lookup(env, rule, ec2, no_aws, body, status, message):
    with serve_text(body, status=status) as url:
        result = run_script("rds-update-sg-rule", env={**env, "PUBLIC_IP_URL": url})
    assert message in error_line(result)
    assert not no_aws.exists(), "aws was called"


@pytest.mark.parametrize(("overrides", "args", "message"), [
    ({"DB_SG_ID": None}, ["203.0.113.7"], "DB_SG_ID is not set"),
    ({"DB_SG_RULE_ID": None}, ["203.0.113.7"], "DB_SG_RULE_ID is not set"),
    ({"DB_SG_ID": ""}, ["203.0.113.7"], "DB_SG_ID is not set"),
    ({"DB_SG_ID": "sg-nothex!"}, ["203.0.113.7"], "is not a security group id"),
    ({"DB_SG_RULE_ID": "sg-0123456789abcdef0"}, ["203.0.113.7"], "is not a security group rule id"),
    ({}, ["203.0.113.7", "203.0.113.8"], "too many arguments"),
])
def test_sg_rule_refuses_bad_settings_before_any_aws_call(env, rule, no_aws, overrides, args, message):
    result = run_script("rds-update-sg-rule", *args, env=changed(env, **overrides))
    assert message in error_line(result)
    assert not no_aws.exists(), "aws was called"


def test_the_no_call_check_can_fail(env, rule, no_aws):
    """Control: with a good IP the fake aws is called, so `not no_aws.exists()` above means something."""
    result = run_script("rds-update-sg-rule", "203.0.113.7", env=env)
    assert result.returncode != 0
    assert "modify-security-group-rules" in no_aws.read_text()


# --- bin/rds-create ----------------------------------------------------------------------------

def test_create_sets_every_flag(env, ec2, rds, tmp_path):
    group = ec2.create_security_group(GroupName="cruddur-db", Description="cruddur db",
                                      VpcId=ec2.describe_vpcs()["Vpcs"][0]["VpcId"])["GroupId"]
    # The real aws CLI behind a shim that logs its arguments: moto does not keep Performance
    # Insights, so the flags are checked where they are sent, along with the password's absence.
    path, calls = fake_aws(tmp_path / "log-aws", f'exec "{VENV_BIN}/aws" "$@"')
    env.update(PATH=path, RDS_MASTER_PASSWORD=TEST_PASSWORD, DB_SG_ID=group,
               RDS_AVAILABILITY_ZONE="us-east-1b")
    result = run_script("rds-create", env=env)
    assert result.returncode == 0, result.stderr

    db = describe(rds)
    assert db["DBInstanceStatus"] == "available"
    assert db["DBInstanceClass"] == "db.t3.micro"
    assert (db["Engine"], db["EngineVersion"]) == ("postgres", "17")
    assert db["MasterUsername"] == "cruddurroot"
    assert db["DBName"] == "cruddur"
    assert (db["AllocatedStorage"], db["StorageType"]) == (20, "gp2")
    assert db["AvailabilityZone"] == "us-east-1b"
    assert db["BackupRetentionPeriod"] == 0
    assert db["Endpoint"]["Port"] == 5432
    assert db["MultiAZ"] is False
    assert db["PubliclyAccessible"] is True
    assert db["StorageEncrypted"] is True
    assert db["DeletionProtection"] is False
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [group]

    create = [line for line in calls.read_text().splitlines() if " rds create-db-instance " in line]
    assert len(create) == 1
    assert "--enable-performance-insights --performance-insights-retention-period 7" in create[0]
    assert "--master-user-password file:///dev/stdin" in create[0]
    assert TEST_PASSWORD not in calls.read_text()

    host = db["Endpoint"]["Address"]
    assert f"PROD_CONNECTION_URL=postgresql://cruddurroot@{host}:5432/cruddur\n" in result.stdout


def test_create_with_a_password_rds_manages(env, rds, tmp_path):
    """--manage-master-user-password: no password is asked for or sent; RDS keeps it in a secret,
    whose ARN is printed for bin/lambda-deploy --secret-arn."""
    path, calls = fake_aws(tmp_path / "log-aws", f'exec "{VENV_BIN}/aws" "$@"')
    env.update(PATH=path)
    result = run_script("rds-create", "--manage-master-user-password", env=env, input="")  # no stdin
    assert result.returncode == 0, result.stderr

    db = describe(rds)
    assert db["DBInstanceStatus"] == "available"
    arn = db["MasterUserSecret"]["SecretArn"]
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:")
    [create] = [line for line in calls.read_text().splitlines() if " rds create-db-instance " in line]
    assert "--manage-master-user-password" in create and "--master-user-password" not in create
    assert f"MASTER_USER_SECRET_ARN={arn}\n" in result.stdout
    assert f"bin/lambda-deploy --secret-arn {arn}" in result.stdout
    assert f"aws secretsmanager get-secret-value --secret-id {arn}" in result.stdout
    assert "PROD_CONNECTION_URL=postgresql://cruddurroot@" in result.stdout
    assert "~/.pgpass" not in result.stdout  # the password rotates: it is read from the secret

    again = run_script("rds-create", env=env)  # the existing instance: its secret, no password asked
    assert again.returncode == 0, again.stderr
    assert "already exists (available)" in again.stdout and f"MASTER_USER_SECRET_ARN={arn}" in again.stdout


def test_managed_password_asked_of_an_instance_with_its_own_says_so(env, rds):
    make_instance(rds)
    result = run_script("rds-create", "--manage-master-user-password", env=env)
    assert result.returncode == 0, result.stderr
    assert "was made with a password of its own: no secret to print" in result.stderr
    assert "MASTER_USER_SECRET_ARN" not in result.stdout


def test_create_engine_version_and_default_group(env, rds):
    env.update(RDS_MASTER_PASSWORD=TEST_PASSWORD, RDS_ENGINE_VERSION="16.4")
    result = run_script("rds-create", env=env)
    assert result.returncode == 0, result.stderr
    assert describe(rds)["EngineVersion"] == "16.4"
    assert "DB_SG_ID is not set" in result.stderr


def test_create_reads_the_password_from_stdin(env, rds):
    result = run_script("rds-create", env=env, input=TEST_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert describe(rds)["DBInstanceStatus"] == "available"


def test_create_prompts_without_echo(env, rds):
    """On a terminal the password is asked twice with echo off, and never shows."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([str(ROOT / "bin" / "rds-create")], stdin=terminal, stdout=terminal,
                               stderr=terminal, env=env, cwd="/", start_new_session=True)
    transcript = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal transcript
        deadline = time.monotonic() + timeout
        while marker not in transcript:
            assert time.monotonic() < deadline, f"no {marker!r} in {transcript!r}"
            if select.select([controller], [], [], 0.2)[0]:
                transcript += os.read(controller, 4096)

    def type_when_echo_is_off() -> None:
        deadline = time.monotonic() + 10
        while termios.tcgetattr(terminal)[3] & termios.ECHO:
            assert time.monotonic() < deadline, "the prompt left echo on"
            time.sleep(0.05)
        os.write(controller, TEST_PASSWORD.encode() + b"\n")

    try:
        read_until(b"master password for cruddurroot: ")
        type_when_echo_is_off()
        read_until(b"the same again: ")
        type_when_echo_is_off()
        read_until(b"PROD_CONNECTION_URL=")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(terminal)
        while select.select([controller], [], [], 0.2)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
        os.close(controller)
    assert TEST_PASSWORD.encode() not in transcript
    assert describe(rds)["DBInstanceStatus"] == "available"


BAD_PASSWORDS = [
    ("", "8 to 128 characters"),
    ("Short7!", "8 to 128 characters"),
    ("x" * 129, "8 to 128 characters"),
    ("has/slash1", "may not contain"),
    ('has"quote1', "may not contain"),
    ("has@at-sign", "may not contain"),
    ("has a space", "may not contain"),
    ("tab\there-x", "printable ASCII"),
    ("naïve-pass1", "printable ASCII"),
]


@pytest.mark.parametrize(("password", "message"), BAD_PASSWORDS)
def test_create_refuses_a_bad_password_before_any_aws_call(env, no_aws, password, message):
    result = run_script("rds-create", env={**env, "RDS_MASTER_PASSWORD": password})
    stderr = error_line(result)
    assert "the master password does not meet RDS's rules" in stderr
    assert message in stderr
    if len(password) >= 3:
        assert password not in result.stdout + result.stderr
    assert not no_aws.exists()


def test_create_refuses_no_password_on_stdin(env, rds):
    assert "no password" in error_line(run_script("rds-create", env=env, input=""))
    assert not instance_exists(rds)


@pytest.mark.parametrize(("overrides", "args", "message"), [
    ({"RDS_ENGINE_VERSION": "latest"}, [], "RDS_ENGINE_VERSION 'latest'"),
    ({"RDS_AVAILABILITY_ZONE": "us-east-1"}, [], "RDS_AVAILABILITY_ZONE 'us-east-1'"),
    ({"DB_SG_ID": "default"}, [], "DB_SG_ID 'default'"),
    ({"RDS_INSTANCE_ID": "1st-db"}, [], "RDS_INSTANCE_ID '1st-db'"),
    ({"RDS_WAIT_SECONDS": "soon"}, [], "RDS_WAIT_SECONDS"),
    ({}, ["prod"], "unexpected argument 'prod'"),
    ({}, ["--manage-master-user-password", "--now"], "unexpected argument '--now'"),
])
def test_create_refuses_bad_settings_before_any_aws_call(env, no_aws, overrides, args, message):
    env.update(RDS_MASTER_PASSWORD=TEST_PASSWORD, **overrides)
    assert message in error_line(run_script("rds-create", *args, env=env))
    assert not no_aws.exists(), "aws was called"


def test_create_again_reports_the_existing_instance(env, rds):
    make_instance(rds)
    result = run_script("rds-create", env=env)  # no password needed: nothing to create
    assert result.returncode == 0, result.stderr
    assert f"{INSTANCE} already exists (available)" in result.stdout
    assert "PROD_CONNECTION_URL=postgresql://cruddurroot@" in result.stdout


def test_create_on_a_stopped_instance_says_start_it(env, rds):
    make_instance(rds)
    rds.stop_db_instance(DBInstanceIdentifier=INSTANCE)
    result = run_script("rds-create", env=env)
    assert result.returncode == 0, result.stderr
    assert "already exists (stopped)" in result.stdout
    assert "bin/rds-start" in result.stdout
    assert describe(rds)["DBInstanceStatus"] == "stopped"


def test_waiting_is_bounded(env, tmp_path):
    # moto makes instances available at once; this fake aws keeps one "creating" forever.
    env["PATH"], _ = fake_aws(tmp_path / "slow-aws", """case "$*" in
  *describe-db-instances*) printf 'creating\\tNone\\tNone\\t17\\tdb.t3.micro\\n' ;;
  *) exit 99 ;;
esac""")
    env.update(RDS_WAIT_SECONDS="2", RDS_POLL_SECONDS="1")
    started = time.monotonic()
    result = run_script("rds-create", env=env, timeout=30)
    assert "is still creating after 2s" in error_line(result)
    assert time.monotonic() - started < 15


# --- bin/rds-stop, bin/rds-start, bin/rds-status -----------------------------------------------

def test_status_stop_start(env, rds):
    make_instance(rds)
    host = describe(rds)["Endpoint"]["Address"]

    status = run_script("rds-status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"{INSTANCE}: available" in status.stdout
    assert f"endpoint: {host}:5432" in status.stdout

    stop = run_script("rds-stop", env=env)
    assert stop.returncode == 0, stop.stderr
    assert "after 7 days" in stop.stdout
    assert describe(rds)["DBInstanceStatus"] == "stopped"

    again = run_script("rds-stop", env=env)
    assert again.returncode == 0, again.stderr
    assert "already stopped" in again.stdout
    assert f"{INSTANCE}: stopped" in run_script("rds-status", env=env).stdout

    start = run_script("rds-start", env=env)
    assert start.returncode == 0, start.stderr
    assert f"is available at {host}:5432" in start.stdout
    assert describe(rds)["DBInstanceStatus"] == "available"

    again = run_script("rds-start", env=env)
    assert again.returncode == 0, again.stderr
    assert "already available" in again.stdout


def test_stop_and_start_without_waiting(env, rds):
    make_instance(rds)
    assert run_script("rds-stop", "--no-wait", env=env).returncode == 0
    assert describe(rds)["DBInstanceStatus"] == "stopped"
    assert run_script("rds-start", "--no-wait", env=env).returncode == 0
    assert describe(rds)["DBInstanceStatus"] == "available"


@pytest.mark.parametrize("script", ["rds-status", "rds-stop", "rds-start"])
def test_missing_instance_is_a_clear_error(env, rds, script):
    stderr = error_line(run_script(script, env=env))
    assert f"RDS instance {INSTANCE} does not exist (create it with bin/rds-create)" in stderr


@pytest.mark.parametrize("script", ["rds-status", "rds-stop", "rds-start"])
def test_unknown_argument_is_refused_before_any_aws_call(env, no_aws, script):
    assert "argument 'now'" in error_line(run_script(script, "now", env=env))
    assert not no_aws.exists(), "aws was called"


def test_instance_id_is_configurable(env, rds):
    make_instance(rds, "cruddur-other")
    result = run_script("rds-status", env={**env, "RDS_INSTANCE_ID": "cruddur-other"})
    assert result.returncode == 0, result.stderr
    assert "cruddur-other: available" in result.stdout
