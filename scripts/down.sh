#!/usr/bin/env bash
# Stops what scripts/up.sh started: handlers first, nats-server last.
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$root/.run/pids" ] || { echo "nothing running"; exit 0; }
tac "$root/.run/pids" | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
rm -f "$root/.run/pids"
