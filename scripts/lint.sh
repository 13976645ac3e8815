#!/usr/bin/env bash
# Every static check of the repository: Python (ruff, mypy), the Dockerfile (hadolint), shell
# scripts (shellcheck), the compose file (docker compose config, JSON schema), the GitHub
# workflows (JSON schema, actionlint) and meltano.yml (JSON schema). Needs .venv (see .ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.venv/bin:$PATH"   # actionlint finds shellcheck here

step() { printf '\n==> %s\n' "$*"; }

step "ruff"
ruff check .
ruff format --check .

step "mypy"
mypy plugins/target-influxdb/target_influxdb plugins/tap-nationalgas/tap_nationalgas \
  data_imports testkit benchmarks scripts/*.py deploy/*.py test_setup.py scheduler.py

step "hadolint Dockerfile"
hadolint Dockerfile

step "shellcheck"
shellcheck setup.sh run-etl.sh docker-entrypoint.sh influxdb/*.sh deploy/*.sh scripts/*.sh .ci/run

step "docker compose config"
docker-compose --env-file .env.example --file docker-compose.yml config --quiet

step "JSON schemas: compose, workflows, meltano.yml"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
check-jsonschema --builtin-schema vendor.meltano meltano.yml

step "actionlint"
actionlint
