#!/usr/bin/env bash
# Run one Meltano job once, as cron does: ./run-etl.sh [JOB]   (default: nationalgas-to-influxdb)
# Works from any folder, loads .env, never runs the same job twice at once, writes timestamped
# lines to stdout and to logs/run-etl.log, and exits with the job's status.
set -uo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$PROJECT_DIR" || exit 1
JOB="${1:-nationalgas-to-influxdb}"

# .env fills in what the environment does not already set (as in Meltano, the environment wins)
if [ -f .env ]; then
  exported="$(export -p)"
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
  eval "$exported"
fi

MELTANO="${MELTANO:-$PROJECT_DIR/.venv/bin/meltano}"
[ -x "$MELTANO" ] || MELTANO="$(command -v meltano || true)"
LOG_DIR="${DATA_IMPORTS_LOG_DIR:-$PROJECT_DIR/logs}"
LOCK_DIR="${DATA_IMPORTS_LOCK_DIR:-$PROJECT_DIR/.meltano}"
mkdir -p "$LOG_DIR" "$LOCK_DIR"
LOG_FILE="$LOG_DIR/run-etl.log"

log() { printf '%s run-etl %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" | tee -a "$LOG_FILE"; }

if [ -z "$MELTANO" ]; then
  log "meltano not found: run ./setup.sh first"
  exit 1
fi

exec 9>"$LOCK_DIR/run-etl-$JOB.lock"
if ! flock --nonblock 9; then
  log "another run of $JOB is in progress: this one stops here"
  exit 0
fi

log "starting $JOB"
"$MELTANO" run "$JOB" 2>&1 | tee -a "$LOG_FILE"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
  log "finished $JOB"
else
  log "$JOB failed with exit status $status"
fi
exit "$status"
