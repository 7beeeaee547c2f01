"""bin/lambda-deploy (boto3) against a local moto server.

Moto stores what the script creates (secret, role and its policies, function, permission, pool
trigger) and never runs the function, so these tests assert the resulting configuration;
test_lambda_handler.py runs the code, with its credentials from a moto secret.
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
    """A user pool with settings of its own and another trigger; the VPC the function goes in
    (two subnets, a security group), with no VPC endpoint yet."""
    pool = client(aws, "cognito-idp").create_user_pool(
        PoolName="cruddur-user-pool",
        AutoVerifiedAttributes=["email"],
        LambdaConfig={"PreSignUp": PRE_SIGN_UP},
        Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireUppercase": False, "RequireLowercase": True,
                                     "RequireNumbers": False, "RequireSymbols": False,
                                     "TemporaryPasswordValidityDays": 3}},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]
    ec2 = client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")
               ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]
    group = ec2.create_security_group(GroupName="cruddur-lambda", Description="lambda", VpcId=vpc)["GroupId"]
    return {"aws": aws, "pool": pool, "vpc": vpc, "subnets": subnets, "group": group}


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


def refused(account, *args, **overrides):
    """A run that must fail before it changes anything: its stderr."""
    result = run_script("lambda-deploy", *args, env=deploy_env(account, **overrides), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def function_config(aws, name=FUNCTION):
    config = client(aws, "lambda").get_function_configuration(FunctionName=name)
    assert TEST_PASSWORD not in json.dumps(config, default=str), "its configuration holds the password"
    return config


def secret_policy(aws, role=f"{FUNCTION}-role"):
    """The role's inline policy: its statements."""
    iam = client(aws, "iam")
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["read-database-secret"]
    document = iam.get_role_policy(RoleName=role, PolicyName="read-database-secret")["PolicyDocument"]
    return (json.loads(document) if isinstance(document, str) else document)["Statement"]


def reads_only(arn):
    return [{"Sid": "ReadTheDatabaseSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": arn}]


def test_deploy_creates_everything_then_updates_in_place(account, tmp_path):
    aws, pool = account["aws"], account["pool"]
    result = deploy(account, "--create-secret", "--zip", str(fake_package(tmp_path / "a.zip", marker="a")))

    config = function_config(aws)
    assert config["Runtime"] == "python3.13"
    assert config["Handler"] == "cruddur-post-confirmation.lambda_handler"
    assert config["Architectures"] == ["x86_64"]
    assert config["Timeout"] == 5 and config["MemorySize"] == 128
    secrets = client(aws, "secretsmanager")
    secret = secrets.describe_secret(SecretId=f"{FUNCTION}/database")
    assert config["Environment"]["Variables"] == {"DB_SECRET_ARN": secret["ARN"]}  # and no password
    assert json.loads(secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"]) == {
        "engine": "postgres", "host": "cruddur-db.abc123.us-east-1.rds.amazonaws.com", "port": 5432,
        "dbname": "cruddur", "username": "cruddurroot", "password": TEST_PASSWORD}
    assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(account["subnets"])
    assert config["VpcConfig"]["SecurityGroupIds"] == [account["group"]]
    assert f"deployed {config['FunctionArn']}" in result.stdout
    assert f"created secret {FUNCTION}/database" in result.stdout
    assert f"{account['vpc']} has no VPC endpoint for com.amazonaws.us-east-1.secretsmanager" in result.stderr

    iam = client(aws, "iam")
    role = iam.get_role(RoleName=f"{FUNCTION}-role")["Role"]
    assert config["Role"] == role["Arn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName=f"{FUNCTION}-role")["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == [BASIC, VPC_ACCESS]
    assert secret_policy(aws) == reads_only(secret["ARN"])  # that one secret, nothing else

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

    # a second run updates in place: the secret gets the new credentials as a new version
    lam = client(aws, "lambda")
    new_url = DB_URL.replace("cruddur-db.abc123", "cruddur-db2.abc123")
    new_url = new_url.replace(TEST_PASSWORD, TEST_PASSWORD + "2")
    endpoint = client(aws, "ec2").create_vpc_endpoint(
        VpcId=account["vpc"], ServiceName="com.amazonaws.us-east-1.secretsmanager",
        VpcEndpointType="Interface", SubnetIds=account["subnets"], PrivateDnsEnabled=True)
    endpoint = endpoint["VpcEndpoint"]["VpcEndpointId"]

    result = deploy(account, "--create-secret", "--zip", str(fake_package(tmp_path / "b.zip", marker="b")),
                    LAMBDA_TIMEOUT="3", LAMBDA_MEMORY_MB="256", PROD_CONNECTION_URL=new_url,
                    LAMBDA_SUBNET_IDS=account["subnets"][0])

    updated = function_config(aws)
    assert updated["FunctionArn"] == config["FunctionArn"]
    assert updated["CodeSha256"] != config["CodeSha256"]
    assert updated["Timeout"] == 3 and updated["MemorySize"] == 256
    assert updated["Environment"]["Variables"] == {"DB_SECRET_ARN": secret["ARN"]}
    stored = json.loads(secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"])
    assert (stored["host"], stored["password"]) == ("cruddur-db2.abc123.us-east-1.rds.amazonaws.com",
                                                    TEST_PASSWORD + "2")
    assert "stored the credentials as its new version" in result.stdout
    assert f"has a Secrets Manager endpoint ({endpoint})" in result.stdout and "warning" not in result.stderr
    assert updated["VpcConfig"]["SubnetIds"] == [account["subnets"][0]]
    assert len(json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]) == 1
    assert "role cruddur-post-confirmation-role exists" in result.stdout
    assert "updated function" in result.stdout and "permission cognito-" in result.stdout
    assert "PostConfirmation is already" in result.stdout
    pool_again = client(aws, "cognito-idp").describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert pool_again["LambdaConfig"] == pool_after["LambdaConfig"]


def test_an_rds_managed_secret_and_the_url_without_a_password(account, tmp_path):
    """bin/rds-create --manage-master-user-password's secret holds only username and password:
    host, port and dbname come from PROD_CONNECTION_URL, which needs no password."""
    aws, rds = account["aws"], client(account["aws"], "rds")
    instance = rds.create_db_instance(
        DBInstanceIdentifier="cruddur-db-instance", DBInstanceClass="db.t3.micro", Engine="postgres",
        MasterUsername="cruddurroot", AllocatedStorage=20, DBName="cruddur",
        ManageMasterUserPassword=True)["DBInstance"]
    arn = instance["MasterUserSecret"]["SecretArn"]
    url = "postgresql://cruddurroot@cruddur-db-instance.abc123.us-east-1.rds.amazonaws.com:5432/cruddur"

    result = deploy(account, "--secret-arn", arn, "--zip", str(fake_package(tmp_path / "f.zip")),
                    PROD_CONNECTION_URL=url)

    config = function_config(aws)
    assert config["Environment"]["Variables"] == {
        "DB_SECRET_ARN": arn, "DB_HOST": "cruddur-db-instance.abc123.us-east-1.rds.amazonaws.com",
        "DB_PORT": "5432", "DB_NAME": "cruddur"}
    assert secret_policy(aws) == reads_only(arn)
    assert "DB_HOST, DB_PORT, DB_NAME from PROD_CONNECTION_URL" in result.stdout
    secret = client(aws, "secretsmanager").get_secret_value(SecretId=arn)
    password = json.loads(secret["SecretString"])["password"]
    assert password not in result.stdout + result.stderr + json.dumps(config, default=str)


def test_a_secret_encrypted_with_a_key_of_your_own_may_be_decrypted(account, tmp_path):
    aws = account["aws"]
    key = client(aws, "kms").create_key(Description="cruddur secrets")["KeyMetadata"]
    arn = client(aws, "secretsmanager").create_secret(
        Name="cruddur/db", KmsKeyId=key["KeyId"], SecretString=json.dumps(
            {"engine": "postgres", "host": "db.internal", "port": 5432, "dbname": "cruddur",
             "username": "cruddur_lambda", "password": TEST_PASSWORD}))["ARN"]

    deploy(account, "--secret-arn", arn, "--zip", str(fake_package(tmp_path / "f.zip")),
           PROD_CONNECTION_URL=None)

    assert function_config(aws)["Environment"]["Variables"] == {"DB_SECRET_ARN": arn}  # it holds the rest
    assert secret_policy(aws) == [*reads_only(arn), {
        "Sid": "DecryptTheDatabaseSecret", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key["Arn"],
        "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}}]


def test_a_function_deployed_with_its_url_in_the_environment_loses_it(account, tmp_path):
    """An older deploy put CONNECTION_URL (with the password) in the environment: it goes, and an
    unchanged secret is left as it is."""
    aws = account["aws"]
    role = client(aws, "iam").create_role(RoleName=f"{FUNCTION}-role",
                                          AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    client(aws, "lambda").create_function(
        FunctionName=FUNCTION, Runtime="python3.13", Handler="cruddur-post-confirmation.lambda_handler",
        Role=role["Role"]["Arn"], Code={"ZipFile": fake_package(tmp_path / "old.zip").read_bytes()},
        Environment={"Variables": {"CONNECTION_URL": DB_URL}})
    arn = client(aws, "secretsmanager").create_secret(Name=f"{FUNCTION}/database", SecretString=json.dumps(
        {"engine": "postgres", "host": "cruddur-db.abc123.us-east-1.rds.amazonaws.com", "port": 5432,
         "dbname": "cruddur", "username": "cruddurroot", "password": TEST_PASSWORD}))["ARN"]
    def versions():
        listed = client(aws, "secretsmanager").list_secret_version_ids(SecretId=arn)["Versions"]
        return [v["VersionId"] for v in listed]

    before = versions()

    result = deploy(account, "--create-secret", "--zip", str(fake_package(tmp_path / "new.zip")))

    assert function_config(aws)["Environment"]["Variables"] == {"DB_SECRET_ARN": arn}
    assert f"secret {FUNCTION}/database is up to date" in result.stdout
    assert versions() == before


def test_another_post_confirmation_trigger_is_replaced_and_said(account, tmp_path):
    cognito, pool_id = client(account["aws"], "cognito-idp"), account["pool"]["Id"]
    old = "arn:aws:lambda:us-east-1:123456789012:function:tutorial-post-confirmation"
    cognito.update_user_pool(UserPoolId=pool_id, AutoVerifiedAttributes=["email"],
                             LambdaConfig={"PreSignUp": PRE_SIGN_UP, "PostConfirmation": old})

    result = deploy(account, "--create-secret", "--zip", str(fake_package(tmp_path / "f.zip")))

    assert f"replacing the PostConfirmation trigger {old}" in result.stderr
    triggers = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]
    assert triggers["PostConfirmation"].endswith(f":function:{FUNCTION}")
    assert triggers["PreSignUp"] == PRE_SIGN_UP


def test_without_a_zip_it_builds_the_package_for_the_runtime(account, wheelhouse):
    result = deploy(account, "--create-secret", "--arch", "arm64", LAMBDA_FUNCTION_NAME="cruddur-pc-arm",
                    PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse))

    config = function_config(account["aws"], "cruddur-pc-arm")
    assert config["Architectures"] == ["arm64"]
    assert config["CodeSize"] > 1_000_000  # the handler and psycopg2's wheel, not a stub
    assert "for python3.13 (arm64)" in result.stdout
    client(account["aws"], "iam").get_role(RoleName="cruddur-pc-arm-role")
    client(account["aws"], "secretsmanager").describe_secret(SecretId="cruddur-pc-arm/database")


def test_a_package_for_another_runtime_is_refused(account, tmp_path):
    zip_path = fake_package(tmp_path / "old.zip", python="38")
    stderr = refused(account, "--create-secret", "--zip", str(zip_path))
    assert "is not the handler packaged for python3.13 on x86_64" in stderr
    with pytest.raises(client(account["aws"], "lambda").exceptions.ResourceNotFoundException):
        client(account["aws"], "lambda").get_function(FunctionName=FUNCTION)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"AWS_COGNITO_USER_POOL_ID": None}, "AWS_COGNITO_USER_POOL_ID is not set"),
    ({"PROD_CONNECTION_URL": None}, "PROD_CONNECTION_URL is not set: --create-secret stores its credentials"),
    ({"LAMBDA_SUBNET_IDS": ""}, "LAMBDA_SUBNET_IDS is not set"),
    ({"LAMBDA_SECURITY_GROUP_IDS": None}, "LAMBDA_SECURITY_GROUP_IDS is not set"),
    ({"PROD_CONNECTION_URL": f"mysql://root:{TEST_PASSWORD}@db/cruddur"},
     "PROD_CONNECTION_URL must be a URL"),
    ({"PROD_CONNECTION_URL": "postgresql://cruddurroot@db.example.com/cruddur"},
     "PROD_CONNECTION_URL has no password to store"),
    ({"PROD_CONNECTION_URL": f"postgresql://:{TEST_PASSWORD}@db.example.com:5432"},
     "has no username and no dbname"),
    ({"LAMBDA_SUBNET_IDS": "subnet-1,vpc-2"}, "LAMBDA_SUBNET_IDS must be comma-separated subnet-... ids"),
    ({"LAMBDA_SECURITY_GROUP_IDS": 'sg-1"]}'}, "LAMBDA_SECURITY_GROUP_IDS must be comma-separated sg-"),
    ({"LAMBDA_TIMEOUT": "0"}, "LAMBDA_TIMEOUT must be seconds"),
    ({"LAMBDA_SECRET_NAME": "no spaces please"},
     "LAMBDA_SECRET_NAME 'no spaces please' is not a secret name"),
    ({"AWS_COGNITO_USER_POOL_ID": "us-east-1_Nope"}, "user pool us-east-1_Nope does not exist"),
])
def test_bad_settings_are_clear_errors(no_account, tmp_path, overrides, message):
    zip_path = fake_package(tmp_path / "f.zip")
    stderr = refused(no_account, "--create-secret", "--zip", str(zip_path), **overrides)
    assert message in stderr


def test_bad_settings_change_nothing(no_account, tmp_path):
    secrets = client(no_account["aws"], "secretsmanager")
    refused(no_account, "--create-secret", "--zip", str(fake_package(tmp_path / "f.zip")),
            LAMBDA_SECRET_NAME="cruddur/never-made")
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.describe_secret(SecretId="cruddur/never-made")


SOME_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cruddur/db-AbCdEf"


@pytest.mark.parametrize(("args", "message"), [
    ([], "one of the arguments --create-secret --secret-arn is required"),
    (["--create-secret", "--secret-arn", SOME_ARN], "not allowed with argument"),
    (["--secret-arn", "cruddur/db"], "--secret-arn 'cruddur/db' is not a secret's ARN"),
    (["--create-secret", "--runtime", "nodejs20.x"], "unknown runtime 'nodejs20.x'"),
    (["--create-secret", "--arch", "mips"], "unknown architecture 'mips'"),
    (["--create-secret", "--zip"], "argument --zip: expected one argument"),
    (["--create-secret", "--zip", "/nonexistent.zip"], "/nonexistent.zip is not the handler packaged"),
    (["--create-secret", "deploy"], "unrecognized arguments: deploy"),
])
def test_bad_arguments_are_clear_errors(no_account, args, message):
    stderr = refused(no_account, *args)
    assert message in stderr


def make_secret(aws, values) -> str:
    text = values if isinstance(values, str) else json.dumps(values)
    name = f"cruddur/{os.urandom(4).hex()}"
    return client(aws, "secretsmanager").create_secret(Name=name, SecretString=text)["ARN"]


@pytest.mark.parametrize(("values", "overrides", "message"), [
    (None, {}, "ResourceNotFoundException"),
    ("not json", {}, "is not a JSON object"),
    ({"username": "u"}, {}, "has no 'password'"),
    ({"username": "u", "password": TEST_PASSWORD}, {"PROD_CONNECTION_URL": None},
     "has no 'host': set PROD_CONNECTION_URL"),
])
def test_an_unusable_secret_is_refused_before_anything_changes(account, tmp_path, values, overrides, message):
    arn = SOME_ARN if values is None else make_secret(account["aws"], values)
    zip_path = str(fake_package(tmp_path / "f.zip"))
    stderr = refused(account, "--secret-arn", arn, "--zip", zip_path, **overrides)
    assert message in stderr and arn in stderr
    with pytest.raises(client(account["aws"], "iam").exceptions.NoSuchEntityException):
        client(account["aws"], "iam").get_role(RoleName=f"{FUNCTION}-role")
