#!/usr/bin/env bash
# Bring a backup of scripts/backup.sh back: InfluxDB (influx restore --full, into a new
# InfluxDB) unless --state-only, then every state ID (meltano state set). It holds every job's
# lock, so it refuses while a run goes on. The logic is Python: data_imports/backup.py.
#   scripts/restore.sh [--state-only] DIR
set -u
umask 077
PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$PROJECT/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3 || command -v python || true)"
[ -n "$PYTHON" ] || { echo "restore: no Python found: run ./setup.sh first" >&2; exit 1; }
export PYTHONPATH="$PROJECT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m data_imports.backup restore "$@"
