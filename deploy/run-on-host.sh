#!/usr/bin/env bash
# Start data-imports on a Docker host, or roll it back: the logic is deploy/host.py (python3 3.9+,
# standard library only), copied beside this script by the deploy workflow.
#
#   run-on-host.sh IMAGE         start IMAGE (on the host already) in the shape deployed last;
#                                when it does not turn healthy, the image before it is started again
#   run-on-host.sh --rollback    start the image that ran before the last deploy
#   run-on-host.sh deploy        the workflow's deploy, its data as JSON on stdin
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/host.py" "$@"
