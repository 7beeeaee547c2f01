"""AWS test helpers shared by the RDS and Gitpod tests: moto clients, a security-group rule,
a local what-is-my-IP service, and a recording stand-in for the aws CLI."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

from support import VENV_BIN, script_env

INSTANCE = "cruddur-db-instance"
OLD_CIDR = "192.0.2.1/32"
SETTINGS = ("GITPOD_IP", "DB_SG_ID", "DB_SG_RULE_ID", "PUBLIC_IP_URL", "PUBLIC_IP_TIMEOUT",
            "RDS_MASTER_PASSWORD", "RDS_INSTANCE_ID", "RDS_ENGINE_VERSION", "RDS_AVAILABILITY_ZONE",
            "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_RDS")


def aws_script_env(aws_env: dict[str, str], **overrides: str | None) -> dict[str, str]:
    """An operator's shell pointed at moto, with the venv's aws first on PATH.

    (conftest points the proxies at a closed local port: a request that ignores
    AWS_ENDPOINT_URL fails here instead of leaving the machine.)
    """
    env: dict[str, str | None] = {key: None for key in SETTINGS}
    env.update(aws_env, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
               AWS_MAX_ATTEMPTS="2", RDS_POLL_SECONDS="0", RDS_WAIT_SECONDS="60")
    env.update(overrides)
    return script_env(**env)


def client(aws_env: dict[str, str], service: str):
    """A boto3 client on moto; made once per service (loading a service model takes a while)."""
    return _client(aws_env["AWS_ENDPOINT_URL"], aws_env["AWS_DEFAULT_REGION"], service)


@cache
def _client(endpoint: str, region: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def make_rule(ec2) -> tuple[str, str]:
    """A security group with one inbound rule for 5432 from OLD_CIDR: (group id, rule id)."""
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    name = f"cruddur-db-{os.urandom(4).hex()}"  # tests share moto's account: a group of its own
    group = ec2.create_security_group(GroupName=name, Description="cruddur db", VpcId=vpc)["GroupId"]
    rules = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "IpRanges": [{"CidrIp": OLD_CIDR, "Description": "OLD"}]}])["SecurityGroupRules"]
    return group, rules[0]["SecurityGroupRuleId"]


def rule_now(ec2, rule_id: str) -> dict:
    return ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"][0]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a deliberately slow answer must not hold up the test

    def handle_error(self, request, client_address):  # the client gave up on a slow answer
        pass


@contextmanager
def serve_text(body: str, status: int = 200, delay: float = 0.0):
    """A what-is-my-IP service on 127.0.0.1 answering `body`; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(delay)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def fake_aws(directory: Path, body: str) -> tuple[str, Path]:
    """An `aws` in `directory` that appends its arguments to a log, then runs `body`.

    Returns (a PATH with it first, the log).
    """
    directory.mkdir(exist_ok=True)
    calls = directory / "calls.log"
    shim = directory / "aws"
    shim.write_text(f'#!/bin/sh\nprintf \'%s\\n\' "$*" >> "{calls}"\n{body}\n')
    shim.chmod(0o755)
    return f"{directory}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ['PATH']}", calls
