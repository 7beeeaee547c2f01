# shellcheck shell=bash
# bin/lib/aws.sh: the aws CLI and the cruddur RDS instance, for the bin/rds-* scripts.
# Sourced after common.sh.

RDS_INSTANCE_ID="${RDS_INSTANCE_ID:-cruddur-db-instance}"
RDS_MASTER_USERNAME=cruddurroot
RDS_DB_NAME=cruddur
# Creating takes 5-20 minutes, starting and stopping a few: 30 minutes is a generous bound.
RDS_WAIT_SECONDS="${RDS_WAIT_SECONDS:-1800}"
RDS_POLL_SECONDS="${RDS_POLL_SECONDS:-15}"
RDS_SECRET_ARN="" # the master password's secret, when RDS manages it (bin/rds-create sets it)
AWS_BIN=""

# find_aws: the aws CLI (PATH first, then the project's .venv) into AWS_BIN.
find_aws() {
  AWS_BIN="$(command -v aws || true)"
  if [[ -z "${AWS_BIN}" && -x "${VENV}/bin/aws" ]]; then
    AWS_BIN="${VENV}/bin/aws"
  fi
  [[ -n "${AWS_BIN}" ]] || die "aws CLI not found: run bin/dev once (it installs awscli into .venv) or install it"
  export AWS_PAGER="" # aws CLI v2 would page long output
}

# require_aws: find the aws CLI and check the RDS settings.
require_aws() {
  find_aws
  [[ "${RDS_INSTANCE_ID}" =~ ^[A-Za-z][A-Za-z0-9-]{0,62}$ && "${RDS_INSTANCE_ID}" != *- && "${RDS_INSTANCE_ID}" != *--* ]] \
    || die "RDS_INSTANCE_ID '${RDS_INSTANCE_ID}' is not a valid RDS identifier (a letter, then letters, digits, single hyphens; at most 63)"
  [[ "${RDS_WAIT_SECONDS}" =~ ^[0-9]+$ ]] || die "RDS_WAIT_SECONDS must be a whole number of seconds, not '${RDS_WAIT_SECONDS}'"
  [[ "${RDS_POLL_SECONDS}" =~ ^[0-9]+$ ]] || die "RDS_POLL_SECONDS must be a whole number of seconds, not '${RDS_POLL_SECONDS}'"
}

# aws_cli SERVICE ARGS...: the aws CLI, always honouring AWS_ENDPOINT_URL(_SERVICE).
# awscli v1 pins some services (rds, sqs, emr) in us-east-1 to a fixed endpoint and ignores
# AWS_ENDPOINT_URL, so a run meant for a local emulator would reach real AWS: pass it explicitly.
aws_cli() {
  local service_var="AWS_ENDPOINT_URL_${1//-/_}" endpoint
  service_var="${service_var^^}" # cognito-idp -> AWS_ENDPOINT_URL_COGNITO_IDP
  endpoint="${!service_var:-${AWS_ENDPOINT_URL:-}}"
  if [[ -n "${endpoint}" ]]; then
    "${AWS_BIN}" --endpoint-url "${endpoint}" "$@"
  else
    "${AWS_BIN}" "$@"
  fi
}

# rds_describe: read the instance into RDS_STATUS, RDS_HOST, RDS_PORT, RDS_VERSION, RDS_CLASS.
# Returns 1 when it does not exist; any other failure ends the script.
rds_describe() {
  local out errfile status=0
  errfile="$(mktemp)"
  out="$(aws_cli rds describe-db-instances --db-instance-identifier "${RDS_INSTANCE_ID}" --output text \
    --query 'DBInstances[0].[DBInstanceStatus,Endpoint.Address,Endpoint.Port,EngineVersion,DBInstanceClass]' \
    2>"${errfile}")" || status=$?
  if [[ "${status}" != 0 ]]; then
    if grep -q 'DBInstanceNotFound' "${errfile}"; then
      rm -f "${errfile}"
      RDS_STATUS=""
      return 1
    fi
    warn "$(cat "${errfile}")"
    rm -f "${errfile}"
    die "could not describe RDS instance ${RDS_INSTANCE_ID} (check AWS credentials and region)"
  fi
  rm -f "${errfile}"
  # shellcheck disable=SC2034 # RDS_VERSION and RDS_CLASS are for the scripts that source this file
  IFS=$'\t' read -r RDS_STATUS RDS_HOST RDS_PORT RDS_VERSION RDS_CLASS <<< "${out}"
}

# rds_require: rds_describe, or end the script when there is no instance.
rds_require() {
  rds_describe || die "RDS instance ${RDS_INSTANCE_ID} does not exist (create it with bin/rds-create)"
}

# rds_wait_for STATUS: poll until the instance is STATUS; give up after RDS_WAIT_SECONDS.
rds_wait_for() {
  local want="$1" seen="" deadline=$((SECONDS + RDS_WAIT_SECONDS))
  while true; do
    rds_describe || die "RDS instance ${RDS_INSTANCE_ID} disappeared while waiting for it to be ${want}"
    [[ "${RDS_STATUS}" == "${want}" ]] && return 0
    case "${RDS_STATUS}" in
      failed | deleting | incompatible-* | inaccessible-encryption-credentials* | storage-full | restore-error)
        die "RDS instance ${RDS_INSTANCE_ID} is ${RDS_STATUS}: it will not become ${want} (see the RDS console)" ;;
    esac
    if [[ "${RDS_STATUS}" != "${seen}" ]]; then
      label "${RDS_INSTANCE_ID} is ${RDS_STATUS}; waiting until it is ${want} (at most ${RDS_WAIT_SECONDS}s)"
      seen="${RDS_STATUS}"
    fi
    ((SECONDS < deadline)) \
      || die "RDS instance ${RDS_INSTANCE_ID} is still ${RDS_STATUS} after ${RDS_WAIT_SECONDS}s; check later with bin/rds-status"
    sleep "${RDS_POLL_SECONDS}"
  done
}

# rds_print_url: the PROD_CONNECTION_URL for the instance, without a password (libpq finds it in
# ~/.pgpass, or the user writes it into the URL in .env as .env.example shows); when RDS keeps the
# master password (RDS_SECRET_ARN set), where it is.
rds_print_url() {
  if [[ -z "${RDS_HOST}" || "${RDS_HOST}" == None ]]; then
    echo "no endpoint yet (the instance is ${RDS_STATUS})"
    return 0
  fi
  echo "PROD_CONNECTION_URL=postgresql://${RDS_MASTER_USERNAME}@${RDS_HOST}:${RDS_PORT}/${RDS_DB_NAME}"
  if [[ -n "${RDS_SECRET_ARN}" ]]; then
    echo "(no password in it: RDS keeps the master password in Secrets Manager and rotates it;"
    echo " read it with: aws secretsmanager get-secret-value --secret-id ${RDS_SECRET_ARN} --query SecretString)"
    return 0
  fi
  echo "(no password in it: add a line host:port:database:user:password for it to ~/.pgpass,"
  echo " or write the master password into the URL in .env as .env.example shows, URL-encoded)"
}
