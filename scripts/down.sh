#!/usr/bin/env bash
# Stops what scripts/up.sh started: the handlers and the gateway first, and
# only once they have exited nats-server, so they drain while NATS is there
# (killed together, each would wait out its drain deadline instead).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$root/.run/pids" ] || [ -f "$root/.run/nats-pids" ] || { echo "nothing running"; exit 0; }

# SIGTERM every pid in $1, wait up to 15 s for them to exit, forget them.
stop_all() {
  [ -f "$1" ] || return 0
  pids=$(cat "$1")
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 150); do
    alive=
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  rm -f "$1"
}

stop_all "$root/.run/pids"
stop_all "$root/.run/nats-pids"
