#!/usr/bin/env bash
# Start the data-imports container on a Docker host, or roll it back. The deploy workflow runs
# it on the EC2 host; it is also in the image (/project/deploy/run-on-host.sh).
#
#   run-on-host.sh IMAGE         start IMAGE in schedule mode; the image it replaces is kept
#   run-on-host.sh --rollback    start the image that was running before the last deploy
#
# Needs Docker and the environment file $DATA_IMPORTS_HOME/prod.env (default ~/data-imports).
# State lives in the Docker volume data-imports-state, mounted at /data.
set -euo pipefail

HOME_DIR="${DATA_IMPORTS_HOME:-$HOME/data-imports}"
NAME="${DATA_IMPORTS_CONTAINER:-data-imports}"
VOLUME="${DATA_IMPORTS_VOLUME:-data-imports-state}"
ENV_FILE="$HOME_DIR/prod.env"
WAIT_SECONDS="${DATA_IMPORTS_HEALTH_WAIT:-300}"
DOCKER_NETWORK="${DATA_IMPORTS_NETWORK:-}"

die() { printf 'run-on-host: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: run-on-host.sh IMAGE | --rollback"
[ -f "$ENV_FILE" ] || die "no environment file $ENV_FILE (the deploy workflow writes it)"

if [ "$1" = "--rollback" ]; then
  [ -s "$HOME_DIR/previous-image" ] || die "no previous image recorded in $HOME_DIR/previous-image"
  image="$(cat "$HOME_DIR/previous-image")"
  echo "Rolling back to $image"
else
  image="$1"
fi
docker image inspect "$image" >/dev/null 2>&1 || die "image $image is not on this host (docker pull it first)"

current="$(docker inspect --format '{{.Config.Image}}' "$NAME" 2>/dev/null || true)"
if [ -n "$current" ]; then
  if [ "$current" != "$image" ]; then
    printf '%s\n' "$current" > "$HOME_DIR/previous-image"
  fi
  echo "Stopping $NAME ($current); a run in flight may take up to 150 s to finish"
  docker stop --time 150 "$NAME" >/dev/null
  docker rm "$NAME" >/dev/null
fi

network_args=()
[ -z "$DOCKER_NETWORK" ] || network_args=(--network "$DOCKER_NETWORK")
echo "Starting $NAME from $image"
docker run --detach --name "$NAME" --restart unless-stopped \
  --env-file "$ENV_FILE" --volume "$VOLUME:/data" --stop-timeout 150 \
  --health-interval 15s "${network_args[@]}" "$image" schedule >/dev/null

deadline=$(( $(date +%s) + WAIT_SECONDS ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  status="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$NAME")"
  case "$status" in
    healthy)
      printf '%s\n' "$image" > "$HOME_DIR/current-image"
      echo "$NAME is healthy, running $image"
      exit 0
      ;;
    unhealthy|exited|dead)
      docker logs --tail 50 "$NAME" >&2 || true
      die "$NAME is $status; roll back with: $0 --rollback"
      ;;
  esac
  sleep 3
done
docker logs --tail 50 "$NAME" >&2 || true
die "$NAME did not report healthy within ${WAIT_SECONDS}s; roll back with: $0 --rollback"
