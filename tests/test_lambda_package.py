"""bin/lambda-package: the zip and the layer it builds, unpacked and run the way Lambda runs them.

Each build downloads the psycopg2-binary wheel for the target Python from PyPI (pip caches it);
the builds are made once per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import psycopg
import pytest

from support import ROOT, TEST_PASSWORD, create_database, load_schema, run_script, script_env

# conftest points the proxy variables at a closed port so that no AWS request can leave the
# machine; lambda-package makes no AWS request and must reach PyPI for its wheels.
DIRECT = dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"))

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
DEFAULT = "3.13"  # the default runtime, python3.13

# What the Lambda runtime does: import the handler module by file name (dashes and all) from the
# code folder, with the layer's site-packages after it, and call it with the event.
RUNTIME = """
import importlib, json, sys
sys.path[:0] = sys.argv[1:]
module = importlib.import_module("cruddur-post-confirmation")
result = module.lambda_handler(json.load(sys.stdin), None)
import psycopg2
print(json.dumps({"event": result, "psycopg2": psycopg2.__file__}))
"""


def find_python(version: str) -> str | None:
    """An interpreter for `version` on this machine (PATH, then pyenv's versions), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}"),
                  *sorted(pyenv.glob(f"versions/{version}*/bin/python{version}"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return str(candidate)
    return None


def build(*args: str) -> tuple[Path, str]:
    result = run_script("lambda-package", *args, env=script_env(**DIRECT), timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(/\S+\.zip) (\d+) bytes \(\S+\)", last)
    assert match, f"no 'PATH SIZE bytes' line: {result.stdout}"
    path = Path(match.group(1))
    assert path.stat().st_size == int(match.group(2))
    return path, result.stdout


def unpack(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            assert mode & 0o444 == 0o444, f"{info.filename} is not world-readable ({oct(mode)})"
            assert "__pycache__" not in info.filename and not info.filename.endswith(".pyc")
        archive.extractall(into)
    return into


def run_handler(python: str, paths: list[Path], url: str, handle: str) -> dict:
    sub = str(uuid.uuid4())
    event = {
        "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_Cruddur01", "userName": sub,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "client"},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": {
            "sub": sub, "email_verified": "true", "cognito:user_status": "CONFIRMED",
            "name": handle.title(), "preferred_username": handle, "email": f"{handle}@example.com"}},
        "response": {},
    }
    # -I -S: no site-packages, no PYTHON* variables: psycopg2 can only come from the package
    result = subprocess.run([python, "-I", "-S", "-c", RUNTIME, *map(str, paths)],
                            input=json.dumps(event), capture_output=True, text=True, timeout=60,
                            env={"CONNECTION_URL": url, "PATH": os.environ["PATH"]}, cwd="/")
    assert TEST_PASSWORD not in result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["event"] == event
    assert any(output["psycopg2"].startswith(str(path)) for path in paths), output["psycopg2"]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT cognito_user_id FROM users WHERE handle = %s", (handle,)).fetchone()
    assert row == (sub,)
    return output


@pytest.fixture(scope="module")
def package_db(pg):
    url = create_database(pg, "lambda_package_test")
    load_schema(url)
    return url


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("lambda-build")


@pytest.fixture(scope="module")
def running_zip(out):
    return build("--python-version", RUNNING, "--output", str(out / "running.zip"))


def test_zip_holds_the_handler_and_psycopg2_for_the_runtime(running_zip):
    path, stdout = running_zip
    nodot = RUNNING.replace(".", "")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert "cruddur-post-confirmation.py" in names  # at the root, as the handler setting expects
    assert f"psycopg2/_psycopg.cpython-{nodot}-x86_64-linux-gnu.so" in names
    assert any(name.startswith("psycopg2_binary.libs/libpq") for name in names)
    assert (ROOT / "lambdas" / "cruddur-post-confirmation.py").read_bytes() == \
        zipfile.ZipFile(path).read("cruddur-post-confirmation.py")
    assert f"for python{RUNNING} (x86_64)" in stdout
    # boto3 (for DB_SECRET_ARN) is the Lambda runtime's own: not packaged
    assert not any(name.split("/")[0] in ("boto3", "botocore", "s3transfer") for name in names)


def test_zip_runs_the_handler_under_the_running_python(running_zip, package_db, tmp_path):
    tree = unpack(running_zip[0], tmp_path / "task")
    run_handler(sys.executable, [tree], package_db, "fromzip")


def test_default_zip_is_for_python313_and_runs_under_it(out, package_db, tmp_path):
    path, _ = build("--output", f"{out}/")
    assert path.name == "cruddur-post-confirmation-py313.zip"
    with zipfile.ZipFile(path) as archive:
        assert "psycopg2/_psycopg.cpython-313-x86_64-linux-gnu.so" in archive.namelist()
    python = find_python(DEFAULT)
    if python is None:
        pytest.skip("no python3.13 on this machine to run the default build under")
    run_handler(python, [unpack(path, tmp_path / "task")], package_db, "from313")


def test_layer_is_named_for_its_python_and_runs_beside_the_handler(out, package_db, tmp_path):
    python = find_python(DEFAULT)
    version = DEFAULT if python else RUNNING
    python = python or sys.executable
    nodot = version.replace(".", "")
    layers = out / "layers"
    layers.mkdir()

    path, stdout = build("--layer", "--python-version", version, "--output", f"{layers}/")

    assert path.name == f"psycopg2-py{nodot}.zip"
    assert f"--layer-name psycopg2-py{nodot} --compatible-runtimes python{version}" in stdout
    site = f"python/lib/python{version}/site-packages"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert f"{site}/psycopg2/_psycopg.cpython-{nodot}-x86_64-linux-gnu.so" in names
    assert all(name.startswith("python/") for name in names)
    assert "cruddur-post-confirmation.py" not in {Path(n).name for n in names}
    # Lambda: the function's code in /var/task, the layer unpacked in /opt
    task = tmp_path / "task"
    task.mkdir()
    shutil.copy(ROOT / "lambdas" / "cruddur-post-confirmation.py", task)
    opt = unpack(path, tmp_path / "opt")
    run_handler(python, [task, opt / site], package_db, "fromlayer")


def test_arm64_build_has_the_arm64_extension(out):
    path, _ = build("--arch", "arm64", "--output", f"{out}/")
    assert path.name == "cruddur-post-confirmation-py313-arm64.zip"
    with zipfile.ZipFile(path) as archive:
        assert "psycopg2/_psycopg.cpython-313-aarch64-linux-gnu.so" in archive.namelist()


@pytest.mark.parametrize(("args", "message"), [
    (["--runtime", "ruby3.3"], "unknown runtime 'ruby3.3'"),
    (["--python-version", "three"], "unknown runtime 'pythonthree'"),
    (["--arch", "sparc"], "unknown architecture 'sparc'"),
    (["--output", "/tmp/package.tar"], "--output must name a .zip file"),
    (["--runtime"], "--runtime needs a value"),
    (["--bogus"], "unknown argument '--bogus'"),
])
def test_bad_arguments_are_clear_errors(args, message):
    result = run_script("lambda-package", *args, env=script_env())
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_requirements_pin_matches_the_one_the_tests_use():
    def pin(path):
        lines = path.read_text().splitlines()
        return next(line.split("#")[0].strip() for line in lines if line.startswith("psycopg2-binary=="))

    assert pin(ROOT / "lambdas" / "requirements.txt") == pin(ROOT / "requirements-test.txt")
