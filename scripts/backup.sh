#!/usr/bin/env bash
# Write one backup into DIR (a new folder): every Meltano state ID as JSON and, where the
# variables reach an InfluxDB with an operator token (INFLUXDB_BACKUP_TOKEN), the whole InfluxDB
# server (influx backup). The logic is Python: data_imports/backup.py.
#   scripts/backup.sh DIR
set -u
umask 077
PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$PROJECT/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3 || command -v python || true)"
[ -n "$PYTHON" ] || { echo "backup: no Python found: run ./setup.sh first" >&2; exit 1; }
export PYTHONPATH="$PROJECT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m data_imports.backup backup "$@"
