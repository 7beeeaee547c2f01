# shellcheck shell=bash
# bin/lib/common.sh: what every bin/ script shares: the project root, output, the virtualenv.
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ROOT}/.venv"
export ROOT VENV

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  CYAN=$'\033[1;36m' RED=$'\033[1;31m' RESET=$'\033[0m'
else
  CYAN='' RED='' RESET=''
fi

# label TEXT: a progress line on stdout.
label() { printf '%s== %s%s\n' "${CYAN}" "$*" "${RESET}"; }

# warn TEXT: a message on stderr.
warn() { printf '%s%s%s\n' "${RED}" "$*" "${RESET}" >&2; }

# die TEXT: an error on stderr and exit 1.
die() { warn "error: $*"; exit 1; }

# tool_python: the Python for tools/*.py (standard library only): .venv's when there is one, which
# starts several times faster than a version manager's python3 shim, else the machine's python3.
tool_python() {
  if [[ -x "${VENV}/bin/python" ]]; then "${VENV}/bin/python" "$@"; else python3 "$@"; fi
}

UV_VERSION="0.13.9"  # the installer, bootstrapped into .venv with pip

# A layer of requirements is the pinned file bin/lock writes for one script, holding every pin of
# the layers below it: dev (bin/dev: the API and a local PostgreSQL) or test (bin/test: dev's and
# the test stack).
requirements_file() { printf '%s\n' "${ROOT}/requirements-$1.txt"; }

# installed LAYER: are LAYER's requirements, as they are now, in .venv?
installed() {
  local stamp="${VENV}/.installed-$1"
  [[ -f "${stamp}" ]] && sha256sum --status -c "${stamp}" 2>/dev/null
}

# ensure_uv: .venv with uv in it.
ensure_uv() {
  if [[ ! -x "${VENV}/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "${VENV}" || die "could not create ${VENV} (is python3 -m venv available?)"
  fi
  if [[ "$("${VENV}/bin/uv" --version 2>/dev/null)" != "uv ${UV_VERSION}"* ]]; then
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}" 2>/dev/null \
      || die "could not install uv ${UV_VERSION} with pip (is PyPI reachable?)"
  fi
}

# ensure_venv LAYER: install LAYER's pinned requirements into .venv, unless they are in already
# (test's include dev's, with the same pins).
ensure_venv() {
  local layer="$1" file
  if installed "${layer}" || { [[ "${layer}" == dev ]] && installed test; }; then
    return 0
  fi
  label "installing the ${layer} requirements into .venv (first run, or they changed)"
  ensure_uv
  file="$(requirements_file "${layer}")"
  # --compile-bytecode: each Python that starts (a server worker, the aws CLI, a test's script)
  # reads compiled modules, even where PYTHONDONTWRITEBYTECODE keeps Python from writing them
  "${VENV}/bin/uv" pip install --quiet --compile-bytecode --python "${VENV}/bin/python" -r "${file}" \
    || die "installing ${file} failed"
  sha256sum "${file}" > "${VENV}/.installed-${layer}"
}
