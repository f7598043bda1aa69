#!/usr/bin/env bash
# Starts nats-server with nats-server.conf, then every binary, logging to
# .run/logs. Ctrl-C (or `just down`) stops them all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=$(scripts/install-tools.sh)
[ -n "$tools" ] && export PATH="$tools:$PATH"
mkdir -p .run/logs .run/nats
: > .run/pids

export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
stop() {
  trap - INT TERM EXIT
  echo "stopping..."
  # Handlers first (they drain), the server last.
  tac .run/pids 2>/dev/null | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f .run/pids
}
trap stop INT TERM EXIT

nats-server -c nats-server.conf -sd .run/nats > .run/logs/nats-server.log 2>&1 &
echo $! > .run/pids
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done

for bin in $(scripts/binaries.sh); do
  if [ "$bin" = gateway ]; then user=oms-gateway; else user=oms-service; fi
  NATS_USER=$user NATS_PASSWORD=$user target/release/"$bin" > ".run/logs/$bin.log" 2>&1 &
  echo $! >> .run/pids
done
echo "nats-server on 127.0.0.1:4222 (monitor :8222), gateway on ${GATEWAY_ADDR:-127.0.0.1:8080}"
echo "logs in .run/logs; Ctrl-C stops everything"
wait
