#!/usr/bin/env bash
# Entry point of the data-imports image.
#   schedule      (default) run every schedule of meltano.yml at its cron times, until stopped
#   run [JOB]     one run of JOB (default nationalgas-to-influxdb); exits with its status
#   check [ARGS]  test_setup.py: the installation, the variables and the connections
#   anything else is executed as given, e.g. `meltano state list`
set -euo pipefail
umask 077  # Meltano's files, the plugins' config files (they hold the token) and logs: owner only
cd /project

REQUIRED=(INFLUXDB_URL INFLUXDB_TOKEN INFLUXDB_ORG INFLUXDB_BUCKET)

require_variables() {
  local missing=() name
  for name in "${REQUIRED[@]}"; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "docker-entrypoint: missing required variables: ${missing[*]} (pass them with --env-file or -e)" >&2
    exit 2
  fi
}

mkdir -p "${DATA_IMPORTS_LOG_DIR:-/data/logs}" "${DATA_IMPORTS_LOCK_DIR:-/data/locks}" \
  "${DATA_IMPORTS_HEALTH_DIR:-/data/health}"

case "${1:-schedule}" in
  schedule)
    require_variables
    exec python scheduler.py run
    ;;
  run)
    require_variables
    exec ./run-etl.sh "${2:-nationalgas-to-influxdb}"
    ;;
  check)
    require_variables
    shift
    exec python test_setup.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
