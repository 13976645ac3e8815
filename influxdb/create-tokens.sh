#!/bin/bash
# Run by the influxdb:2.7 image once, on InfluxDB's first start, after its setup, with the influx
# CLI logged in as the admin (the preflight service puts it in /docker-entrypoint-initdb.d).
# It creates a token per consumer and writes it to a volume that only InfluxDB and that consumer
# share, readable by the consumer's user only:
#   pipeline  may write the bucket, nothing else        -> $TOKENS/pipeline/token (uid 10001)
#   grafana   may read the bucket, nothing else         -> $TOKENS/grafana/token  (uid 472)
#   backup    operator token, as `influx backup` needs  -> $TOKENS/backup/token   (uid 10001)
set -euo pipefail
umask 077
TOKENS=${DATA_IMPORTS_TOKENS_DIR:-/tokens}
PIPELINE_UID=${DATA_IMPORTS_PIPELINE_UID:-10001}
GRAFANA_UID=${DATA_IMPORTS_GRAFANA_UID:-472}
ORG=$DOCKER_INFLUXDB_INIT_ORG
BUCKET=$DOCKER_INFLUXDB_INIT_BUCKET
BUCKET_ID=$DOCKER_INFLUXDB_INIT_BUCKET_ID

# create NAME UID [FLAGS]: a token from `influx auth create FLAGS --json`, to $TOKENS/NAME/token
create() {
  local name=$1 owner=$2 file="$TOKENS/$1/token" token
  shift 2
  token=$(influx auth create --json --org "$ORG" --user "$DOCKER_INFLUXDB_INIT_USERNAME" \
    --description "data-imports $name" "$@" \
    | grep -o '"token": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
  if [ -z "$token" ]; then
    echo "create-tokens: influx auth create gave no token for $name" >&2
    exit 1
  fi
  mkdir -p "$TOKENS/$name"
  printf '%s' "$token" >"$file.new"
  chown "$owner" "$file.new"
  chmod 0400 "$file.new"
  mv -f "$file.new" "$file"
  echo "create-tokens: $name token written to $file"
}

create pipeline "$PIPELINE_UID" --write-bucket "$BUCKET_ID"
create grafana "$GRAFANA_UID" --read-bucket "$BUCKET_ID"
create backup "$PIPELINE_UID" --operator
echo "create-tokens: bucket $BUCKET: the pipeline may write it, Grafana may read it"
