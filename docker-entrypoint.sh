#!/usr/bin/env bash
# Entry point of the data-imports image.
#   schedule      (default) run every schedule of meltano.yml at its cron times, until stopped
#   run [JOB]     one run of JOB (default nationalgas-to-influxdb); exits with its status
#   check [ARGS]  test_setup.py: the installation, the variables and the connections
#   preflight     the compose stack's start-up check (data_imports/preflight.py)
#   backup-daily  the compose stack's daily backup into /backups (data_imports/backup.py)
#   dashboards [ARGS]  Grafana's dashboards, named as InfluxDB holds them (data_imports/dashboards.py)
#   anything else is executed as given, e.g. `meltano state list`
# A token can come from a file: INFLUXDB_TOKEN_FILE (or INFLUXDB_BACKUP_TOKEN_FILE) names a file
# that holds it, e.g. one the compose stack's InfluxDB wrote on a volume.
set -euo pipefail
umask 077  # Meltano's files, the plugins' config files (they hold the token) and logs: owner only
cd "$(dirname "${BASH_SOURCE[0]}")"

REQUIRED=(INFLUXDB_URL INFLUXDB_TOKEN INFLUXDB_ORG INFLUXDB_BUCKET)
FROM_FILES=(INFLUXDB_TOKEN INFLUXDB_BACKUP_TOKEN)

fail() {
  echo "docker-entrypoint: $*" >&2
  exit 2
}

# NAME_FILE set: NAME is the file's content, less its trailing newlines.
read_variable_files() {
  local name file
  for name in "${FROM_FILES[@]}"; do
    file="${name}_FILE"
    [ -n "${!file:-}" ] || continue
    [ -z "${!name:-}" ] || fail "set ${name} or ${file}, not both"
    if [ ! -f "${!file}" ] || [ ! -r "${!file}" ]; then
      fail "${file}=${!file}: no such file readable here"
    fi
    export "${name}=$(cat -- "${!file}")"
    [ -n "${!name}" ] || fail "${file}=${!file}: the file is empty"
  done
}

require_variables() {
  local missing=() name
  for name in "${REQUIRED[@]}"; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    fail "missing required variables: ${missing[*]} (pass them with --env-file or -e;" \
      "INFLUXDB_TOKEN_FILE may name a file holding the token)"
  fi
}

# The project is read-only: Meltano's run folder (.meltano/run) points to /tmp/meltano-run.
prepare_folders() {
  mkdir -p /tmp/meltano-run "${DATA_IMPORTS_LOG_DIR:-/data/logs}" \
    "${DATA_IMPORTS_LOCK_DIR:-/data/locks}" "${DATA_IMPORTS_HEALTH_DIR:-/data/health}"
}

read_variable_files

case "${1:-schedule}" in
  schedule)
    require_variables
    prepare_folders
    exec python scheduler.py run
    ;;
  run)
    require_variables
    prepare_folders
    exec ./run-etl.sh "${2:-nationalgas-to-influxdb}"
    ;;
  check)
    require_variables
    prepare_folders
    shift
    exec python test_setup.py "$@"
    ;;
  preflight)
    shift
    exec python -m data_imports.preflight "$@"
    ;;
  dashboards)
    shift
    exec python -m data_imports.dashboards --names-from-influxdb "$@"
    ;;
  backup-daily)
    prepare_folders
    exec python -m data_imports.backup daily /backups
    ;;
  *)
    prepare_folders
    exec "$@"
    ;;
esac
