#!/usr/bin/env bash
# A three-node JetStream cluster on this machine (client ports 4222-4224,
# monitors 8222-8224, routes 6222-6224), every binary connected to all three
# nodes, the bucket and event stream created with three replicas. Kill a
# node (`kill <pid>` from .run/pids) and watch the system carry on.
# Ctrl-C stops all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=$(scripts/install-tools.sh)
[ -n "$tools" ] && export PATH="$tools:$PATH"
mkdir -p .run/logs
: > .run/pids
stop() {
  trap - INT TERM EXIT
  echo "stopping..."
  tac .run/pids 2>/dev/null | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f .run/pids
}
trap stop INT TERM EXIT

routes=nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224
for i in 0 1 2; do
  mkdir -p ".run/cluster/n$i"
  nats-server -c nats-server.conf -n "oms-$i" -p $((4222 + i)) -m $((8222 + i)) \
    -sd ".run/cluster/n$i" --cluster_name oms --cluster "nats://127.0.0.1:$((6222 + i))" --routes "$routes" \
    > ".run/logs/nats-server-$i.log" 2>&1 &
  echo $! >> .run/pids
done
for port in 4222 4223 4224; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

export NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
export OMS_REPLICAS=3
for bin in $(scripts/binaries.sh); do
  if [ "$bin" = gateway ]; then user=oms-gateway; else user=oms-service; fi
  NATS_USER=$user NATS_PASSWORD=$user target/release/"$bin" > ".run/logs/$bin.log" 2>&1 &
  echo $! >> .run/pids
done
echo "cluster nodes on 127.0.0.1:4222-4224, gateway on ${GATEWAY_ADDR:-127.0.0.1:8080}; logs in .run/logs; Ctrl-C stops everything"
wait
