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

# ensure_venv: make .venv and install the pinned requirements when they changed.
ensure_venv() {
  local stamp="${VENV}/.requirements.sha256" wanted
  wanted="$(cat "${ROOT}/requirements-dev.txt" "${ROOT}/backend-flask/requirements.txt" | sha256sum | cut -d' ' -f1)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
    return 0
  fi
  label "installing pinned requirements into .venv (first run, or they changed)"
  if [[ ! -x "${VENV}/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "${VENV}" || die "could not create ${VENV} (is python3 -m venv available?)"
  fi
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "${ROOT}/requirements-dev.txt" || die "pip install failed"
  printf '%s\n' "${wanted}" > "${stamp}"
}
