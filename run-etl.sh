#!/usr/bin/env bash
# Run one Meltano job once, as cron does: ./run-etl.sh [JOB]   (default: nationalgas-to-influxdb)
# Works from any folder, loads .env, never runs the same job twice at once, writes timestamped
# lines to stdout and to logs/run-etl.log, and exits with the job's status. Files it and Meltano
# write (the plugins' config files hold the InfluxDB token) are readable by the owner only.
# SIGTERM, SIGINT or SIGHUP (cron's timeout, a stop) are passed on to the run, which gets
# DATA_IMPORTS_STOP_GRACE seconds (60) to stop before it is killed; the log says so.
set -uo pipefail
umask 077

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
mkdir -p "$LOG_DIR" "$LOCK_DIR" .meltano
chmod go-rwx .meltano "$LOCK_DIR" 2>/dev/null || true
LOG_FILE="$LOG_DIR/run-etl.log"
GRACE="${DATA_IMPORTS_STOP_GRACE:-60}"
LOG_MAX_KB="${DATA_IMPORTS_LOG_MAX_KB:-2048}"  # run-etl.log is rotated past this size...
LOG_KEEP="${DATA_IMPORTS_LOG_KEEP:-5}"         # ...keeping this many old files
run_output=""                                   # this run's lines, one block in the log at the end
last_line=""

log() {
  local line
  line="$(printf '%s run-etl %s' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*")"
  last_line="$*"
  printf '%s\n' "$line"
  if [ -n "$run_output" ]; then printf '%s\n' "$line" >>"$run_output"; else append_to_log "$line"; fi
}

# Appends lines to run-etl.log in one piece, rotating it when it has grown past LOG_MAX_KB.
append_to_log() {
  (
    flock 7
    if [ -f "$LOG_FILE" ] && [ "$(stat -c %s "$LOG_FILE")" -gt $((LOG_MAX_KB * 1024)) ]; then
      for ((n = LOG_KEEP - 1; n >= 1; n--)); do
        [ -f "$LOG_FILE.$n" ] && mv -f "$LOG_FILE.$n" "$LOG_FILE.$((n + 1))"
      done
      mv -f "$LOG_FILE" "$LOG_FILE.1"
    fi
    if [ "$#" -gt 0 ]; then printf '%s\n' "$@" >>"$LOG_FILE"; else cat >>"$LOG_FILE"; fi
  ) 7>>"$LOG_DIR/.run-etl.log.lock"
}

# By default a run says little: its start, one line per stream, warnings and errors, and its
# result. Meltano's own info lines, METRIC lines and the SDK's routine notices are left out
# unless DATA_IMPORTS_LOG_VERBOSE=1; a line that is not known to be routine is always kept.
ROUTINE='\[info +\] meltano |Force option is enabled, ignoring stale job check|METRIC: '
ROUTINE+='|Skipping parse of env var settings|No state was found, complete import'
ROUTINE+='|, Meltano SDK v|Beginning sync of|Starting (incremental|full table) sync of'
ROUTINE+='|Stream is assumed to be unsorted|Skipping deselected stream|completed processing'
ROUTINE+='|\] target-[a-z0-9-]+ Stream .* -> measurement |No .url. set: writing line protocol'
quiet() {
  if [ "${DATA_IMPORTS_LOG_VERBOSE:-0}" = 1 ]; then
    cat
  else
    grep --line-buffered -vE "$ROUTINE" || true
  fi
}

if [ -z "$MELTANO" ]; then
  log "meltano not found: run ./setup.sh first"
  exit 1
fi

exec 9>"$LOCK_DIR/run-etl-$JOB.lock"
if ! flock --nonblock 9; then
  log "another run of $JOB is in progress: this one stops here"
  exit 0
fi

# A new system database is created and migrated once (and again after Meltano changes), before
# any run, under one lock: two first runs at the same moment would otherwise both migrate it.
database_key="$(printf '%s %s' "${MELTANO_DATABASE_URI:-default}" "$(stat -c %Y "$MELTANO")" \
  | cksum | cut -d' ' -f1)"
ready="$LOCK_DIR/run-etl-database-$database_key.ready"
if [ ! -f "$ready" ]; then
  (
    flock 8
    [ -f "$ready" ] || { "$MELTANO" upgrade database >/dev/null 2>&1 && touch "$ready"; } \
      || log "meltano upgrade database failed: the run will say why"
  ) 8>"$LOCK_DIR/run-etl-database.lock"
fi

stopping=""
trap 'stopping=TERM' TERM
trap 'stopping=INT' INT
trap 'stopping=HUP' HUP

run_output="$(mktemp)"
# At the end: this run's block into the log, and its last line for the container's scheduler.
trap '[ -s "$run_output" ] && { printf "\n"; cat "$run_output"; } | append_to_log; rm -f "$run_output"
  printf "%s\n" "$last_line" >"$LOCK_DIR/run-etl-$JOB.result"' EXIT
log "starting $JOB"
started=$SECONDS
# The run gets a process group of its own (job control), so a stop reaches Meltano, the tap
# and the target. This script holds the job's lock, so a run that a kill left marked as running
# in Meltano's system database is stale: --force takes it over.
set -m
"$MELTANO" run --force "$JOB" > >(quiet | tee -a "$run_output") 2>&1 &
run=$!
set +m
wait "$run"
status=$?
if [ -n "$stopping" ]; then
  log "stopping $JOB: SIG$stopping received, passed on to the run (at most ${GRACE}s)"
  kill -TERM -- "-$run" 2>/dev/null
  for ((tenth = 0; tenth < GRACE * 10; tenth++)); do
    kill -0 -- "-$run" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 -- "-$run" 2>/dev/null; then
    kill -KILL -- "-$run" 2>/dev/null
    log "$JOB did not stop within ${GRACE}s: killed"
  fi
  wait "$run" 2>/dev/null
  log "$JOB stopped by SIG$stopping"
  exit 143
fi
wait  # the log's tee
if [ "$status" -eq 0 ]; then
  log "finished $JOB in $((SECONDS - started))s"
  if [ -z "${INFLUXDB_URL:-}${TARGET_INFLUXDB_URL:-}" ]; then
    output="${TARGET_INFLUXDB_OUTPUT_PATH:-$PROJECT_DIR/output}"
    log "INFLUXDB_URL is empty: the points are line protocol in $output; load them into InfluxDB" \
      "with: influx write --bucket BUCKET --org ORG --file $output/<stream>.lp"
  fi
else
  # The last line names the cause: the first plugin line "<plugin> failed: <why>".
  cause="$(grep -m1 -oE '(tap|target)-[a-z0-9-]+ failed: .*' "$run_output")"
  cause="${cause/ failed: / }"
  log "$JOB failed: ${cause:-exit status $status (see $LOG_FILE)}"
fi
exit "$status"
