#!/usr/bin/env bash
# Set up data-imports on this machine: a Python virtual environment with Meltano, the two
# plugins, and a .env to fill in. Safe to run again: it repairs what is missing and never
# overwrites .env.
#   ./setup.sh          what running the pipeline needs
#   ./setup.sh --dev    also the test and lint tools; names the system packages the tests need
set -euo pipefail
umask 077  # .env, .meltano/ (the plugins' config files hold the token) and logs: owner only

cd "$(dirname "${BASH_SOURCE[0]}")"
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

DEV=""
case "${1:-}" in
  "") ;;
  --dev) DEV=1 ;;
  *) die "unknown option $1 (usage: ./setup.sh [--dev])" ;;
esac

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 \
  || die "$PYTHON not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11 or newer is needed, found $("$PYTHON" --version 2>&1); set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
  || die "the Python venv module is missing: apt-get install python3-venv"

if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtual environment .venv"
  "$PYTHON" -m venv .venv || die "could not create .venv"
fi
echo "Installing Meltano, the pinned dependencies (requirements.txt) and the plugins' packages"
.venv/bin/python -m pip install --quiet --upgrade pip || die "could not upgrade pip in .venv"
# the runner reads the plugins' settings schemas and writes run health points with their code
if [ -n "$DEV" ]; then
  echo "  with the test and lint tools (--dev)"
  .venv/bin/python -m pip install --quiet -r requirements.txt --group dev \
    -e "plugins/target-influxdb[test]" -e "plugins/tap-nationalgas[test]" \
    || die "could not install the packages: check the network access to PyPI"
else
  .venv/bin/python -m pip install --quiet -r requirements.txt \
    -e plugins/target-influxdb -e plugins/tap-nationalgas \
    || die "could not install the packages: check the network access to PyPI"
fi

echo "Installing the plugins (meltano install)"
.venv/bin/meltano install || die "meltano install failed: see the messages above"
chmod -R go-rwx .meltano
echo "Creating and migrating Meltano's system database"
.venv/bin/meltano upgrade database >/dev/null 2>&1 \
  || die "meltano upgrade database failed: run it to see why"

if [ -f .env ]; then
  echo ".env exists: left as it is"
else
  cp .env.example .env
  chmod 600 .env
  echo "Created .env from .env.example"
fi

if [ -n "$DEV" ]; then
  missing=()
  command -v influxd >/dev/null 2>&1 || missing+=("influxdb (the InfluxDB engine the tests start)")
  if [ "${#missing[@]}" -gt 0 ]; then
    printf '\nThe tests also need these system packages: %s\n' "${missing[*]}"
    printf 'Debian: apt-get install influxdb   (or set INFLUXDB_TEST_URL, INFLUXDB_TEST_TOKEN and\n'
    printf 'INFLUXDB_TEST_ORG to a real InfluxDB 2.x); then: .venv/bin/python -m pytest\n'
    exit 0
  fi
  printf '\nSet up for development. Run the tests: .venv/bin/python -m pytest\n'
  exit 0
fi

cat <<'NEXT'

Set up. Next:
  1. edit .env (InfluxDB URL, token, org, bucket; TAP_NATIONALGAS_START_DATE)
  2. .venv/bin/python test_setup.py      # checks the installation and the connections
  3. ./run-etl.sh                        # loads the latest data once
NEXT
