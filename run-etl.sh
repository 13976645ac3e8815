#!/usr/bin/env bash
# Run one Meltano job once, as cron does: ./run-etl.sh [JOB]   (default: nationalgas-to-influxdb)
#                     or forget a job's state:  ./run-etl.sh --reset-state JOB
# The runner is Python (data_imports/runner.py): it loads .env, checks the settings, never runs
# a job twice at once, passes a stop on to the run, logs to logs/run-etl.log and prints the
# result last. Files it and Meltano write (the plugins' config holds the token) are owner-only.
set -u
umask 077
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || PYTHON="$(command -v python3 || true)"
[ -n "$PYTHON" ] || { echo "run-etl: no Python found: run ./setup.sh first" >&2; exit 1; }
exec "$PYTHON" -m data_imports "$@"
