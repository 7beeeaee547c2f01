"""bin/lambda-deploy through the real aws CLI against a local moto server.

Moto stores what the CLI creates (role, function, permission, pool trigger) and never runs the
function, so these tests assert the resulting configuration; test_lambda_handler.py runs the code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from aws_support import client
from support import ROOT, TEST_PASSWORD, run_script, script_env

FUNCTION = "cruddur-post-confirmation"
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
PRE_SIGN_UP = "arn:aws:lambda:us-east-1:123456789012:function:cruddur-pre-sign-up"
DB_URL = f"postgresql://cruddurroot:{TEST_PASSWORD}@cruddur-db.abc123.us-east-1.rds.amazonaws.com:5432/cruddur"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """psycopg2-binary for python3.13 on arm64, fetched from PyPI once, so that the deploy below
    builds its package offline (PIP_NO_INDEX) with conftest's no-leaving-the-machine proxy in place."""
    dest = tmp_path_factory.mktemp("wheels")
    direct = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                    "--implementation", "cp", "--python-version", "3.13", "--abi", "cp313",
                    "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
                    "--dest", str(dest), "-r", str(ROOT / "lambdas" / "requirements.txt")],
                   env=direct, check=True, capture_output=True, timeout=300)
    return dest


@pytest.fixture
def aws(aws_env):
    """An empty moto account (conftest's server knows AWS's managed IAM policies)."""
    return aws_env


@pytest.fixture
def account(aws):
    """A user pool with settings of its own and another trigger; the VPC the function goes in.

    Moto's Lambda does not look the subnets and security group up, so made-up ids serve.
    """
    pool = client(aws, "cognito-idp").create_user_pool(
        PoolName="cruddur-user-pool",
        AutoVerifiedAttributes=["email"],
        LambdaConfig={"PreSignUp": PRE_SIGN_UP},
        Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireUppercase": False, "RequireLowercase": True,
                                     "RequireNumbers": False, "RequireSymbols": False,
                                     "TemporaryPasswordValidityDays": 3}},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]
    return {"aws": aws, "pool": pool, "subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
            "group": "sg-0123456789abcdef0"}


@pytest.fixture
def no_account(moto):
    """Settings for runs that must stop before they change anything (moto is not reset)."""
    return {"aws": moto, "pool": {"Id": "us-east-1_Nope"}, "subnets": ["subnet-0a1b2c3d4e5f60718"],
            "group": "sg-0123456789abcdef0"}


def deploy_env(account, **overrides):
    settings = {**account["aws"], "AWS_COGNITO_USER_POOL_ID": account["pool"]["Id"],
                "PROD_CONNECTION_URL": DB_URL, "LAMBDA_SUBNET_IDS": ",".join(account["subnets"]),
                "LAMBDA_SECURITY_GROUP_IDS": account["group"]}
    return script_env(**{**settings, **overrides})


def fake_package(path, python="313", arch="x86_64", marker=""):
    """The package's layout (the handler, psycopg2's extension for the runtime): moto never runs it."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(ROOT / "lambdas" / "cruddur-post-confirmation.py", "cruddur-post-confirmation.py")
        extension = f"psycopg2/_psycopg.cpython-{python}-{arch}-linux-gnu.so"
        archive.writestr(extension, b"not really" + marker.encode())
    return path


def deploy(account, *args, **overrides):
    result = run_script("lambda-deploy", *args, env=deploy_env(account, **overrides), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_deploy_creates_everything_then_updates_in_place(account, tmp_path):
    aws, pool = account["aws"], account["pool"]
    result = deploy(account, "--zip", str(fake_package(tmp_path / "a.zip", marker="a")))

    config = client(aws, "lambda").get_function_configuration(FunctionName=FUNCTION)
    assert config["Runtime"] == "python3.13"
    assert config["Handler"] == "cruddur-post-confirmation.lambda_handler"
    assert config["Architectures"] == ["x86_64"]
    assert config["Timeout"] == 5 and config["MemorySize"] == 128
    assert config["Environment"]["Variables"] == {"CONNECTION_URL": DB_URL}
    assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(account["subnets"])
    assert config["VpcConfig"]["SecurityGroupIds"] == [account["group"]]
    assert f"deployed {config['FunctionArn']}" in result.stdout

    iam = client(aws, "iam")
    role = iam.get_role(RoleName=f"{FUNCTION}-role")["Role"]
    assert config["Role"] == role["Arn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName=f"{FUNCTION}-role")["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == [BASIC, VPC_ACCESS]

    [statement] = json.loads(client(aws, "lambda").get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "cognito-idp.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == pool["Arn"]

    pool_after = client(aws, "cognito-idp").describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert pool_after["LambdaConfig"] == {"PreSignUp": PRE_SIGN_UP, "PostConfirmation": config["FunctionArn"]}
    # update-user-pool resets what it is not given: the pool's own settings must survive
    assert pool_after["AutoVerifiedAttributes"] == ["email"]
    assert pool_after["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert pool_after["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"] == 3
    assert pool_after["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert "created role" in result.stdout and "created function" in result.stdout

    # a second run updates in place
    lam = client(aws, "lambda")
    new_url = DB_URL.replace("cruddur-db.abc123", "cruddur-db2.abc123")

    result = deploy(account, "--zip", str(fake_package(tmp_path / "b.zip", marker="b")),
                    LAMBDA_TIMEOUT="3", LAMBDA_MEMORY_MB="256", PROD_CONNECTION_URL=new_url,
                    LAMBDA_SUBNET_IDS=account["subnets"][0])

    updated = lam.get_function_configuration(FunctionName=FUNCTION)
    assert updated["FunctionArn"] == config["FunctionArn"]
    assert updated["CodeSha256"] != config["CodeSha256"]
    assert updated["Timeout"] == 3 and updated["MemorySize"] == 256
    assert updated["Environment"]["Variables"] == {"CONNECTION_URL": new_url}
    assert updated["VpcConfig"]["SubnetIds"] == [account["subnets"][0]]
    assert len(json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]) == 1
    assert "role cruddur-post-confirmation-role exists" in result.stdout
    assert "updated function" in result.stdout and "permission cognito-" in result.stdout
    assert "PostConfirmation is already" in result.stdout
    pool_again = client(aws, "cognito-idp").describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert pool_again["LambdaConfig"] == pool_after["LambdaConfig"]


def test_another_post_confirmation_trigger_is_replaced_and_said(account, tmp_path):
    cognito, pool_id = client(account["aws"], "cognito-idp"), account["pool"]["Id"]
    old = "arn:aws:lambda:us-east-1:123456789012:function:tutorial-post-confirmation"
    cognito.update_user_pool(UserPoolId=pool_id, AutoVerifiedAttributes=["email"],
                             LambdaConfig={"PreSignUp": PRE_SIGN_UP, "PostConfirmation": old})

    result = deploy(account, "--zip", str(fake_package(tmp_path / "f.zip")))

    assert f"replacing the PostConfirmation trigger {old}" in result.stderr
    triggers = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]
    assert triggers["PostConfirmation"].endswith(f":function:{FUNCTION}")
    assert triggers["PreSignUp"] == PRE_SIGN_UP


def test_without_a_zip_it_builds_the_package_for_the_runtime(account, wheelhouse):
    result = deploy(account, "--arch", "arm64", LAMBDA_FUNCTION_NAME="cruddur-pc-arm",
                    PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse))

    config = client(account["aws"], "lambda").get_function_configuration(FunctionName="cruddur-pc-arm")
    assert config["Architectures"] == ["arm64"]
    assert config["CodeSize"] > 1_000_000  # the handler and psycopg2's wheel, not a stub
    assert "for python3.13 (arm64)" in result.stdout
    client(account["aws"], "iam").get_role(RoleName="cruddur-pc-arm-role")


def test_a_package_for_another_runtime_is_refused(account, tmp_path):
    zip_path = fake_package(tmp_path / "old.zip", python="38")
    result = run_script("lambda-deploy", "--zip", str(zip_path), env=deploy_env(account))
    assert result.returncode == 1
    assert "is not the handler packaged for python3.13 on x86_64" in result.stderr
    with pytest.raises(client(account["aws"], "lambda").exceptions.ResourceNotFoundException):
        client(account["aws"], "lambda").get_function(FunctionName=FUNCTION)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"AWS_COGNITO_USER_POOL_ID": None}, "AWS_COGNITO_USER_POOL_ID is not set"),
    ({"PROD_CONNECTION_URL": None}, "PROD_CONNECTION_URL is not set"),
    ({"LAMBDA_SUBNET_IDS": ""}, "LAMBDA_SUBNET_IDS is not set"),
    ({"LAMBDA_SECURITY_GROUP_IDS": None}, "LAMBDA_SECURITY_GROUP_IDS is not set"),
    ({"PROD_CONNECTION_URL": f"mysql://root:{TEST_PASSWORD}@db/cruddur"},
     "PROD_CONNECTION_URL must be a URL"),
    ({"LAMBDA_SUBNET_IDS": "subnet-1,vpc-2"}, "LAMBDA_SUBNET_IDS must be comma-separated subnet-... ids"),
    ({"LAMBDA_SECURITY_GROUP_IDS": 'sg-1"]}'}, "LAMBDA_SECURITY_GROUP_IDS must be comma-separated sg-"),
    ({"LAMBDA_TIMEOUT": "0"}, "LAMBDA_TIMEOUT must be seconds"),
    ({"AWS_COGNITO_USER_POOL_ID": "us-east-1_Nope"}, "user pool us-east-1_Nope: "),
])
def test_bad_settings_are_clear_errors(no_account, tmp_path, overrides, message):
    zip_path = fake_package(tmp_path / "f.zip")
    result = run_script("lambda-deploy", "--zip", str(zip_path), env=deploy_env(no_account, **overrides))
    assert result.returncode == 1
    assert message in result.stderr
    assert "==" not in result.stdout  # stopped before the first step


@pytest.mark.parametrize(("args", "message"), [
    (["--runtime", "nodejs20.x"], "unknown runtime 'nodejs20.x'"),
    (["--arch", "mips"], "unknown architecture 'mips'"),
    (["--zip"], "--zip needs a value"),
    (["--zip", "/nonexistent.zip"], "/nonexistent.zip is not the handler packaged"),
    (["deploy"], "unknown argument 'deploy'"),
])
def test_bad_arguments_are_clear_errors(no_account, args, message):
    result = run_script("lambda-deploy", *args, env=deploy_env(no_account))
    assert result.returncode == 1
    assert message in result.stderr
