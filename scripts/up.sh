#!/usr/bin/env bash
# Starts nats-server with nats-server.conf, then every binary, logging to
# .run/logs. Ctrl-C (or `just down`) stops them all.
#
# `up.sh --cluster`: three JetStream nodes instead of one (client ports
# 4222-4224, monitors 8222-8224, routes 6222-6224), every binary connected to
# all three, the bucket and event stream created with three replicas. Kill a
# node (its pid is in .run/nats-pids) and watch the system carry on.
#
# `up.sh --tls` (with or without --cluster): nats-server requires TLS of
# every client, and a client certificate (mutual TLS), and the cluster's
# routes use TLS both ways too; the gateway serves HTTPS. The CA and
# certificates are made once by scripts/tls.sh into .secrets/tls;
# .run/nats-tls.conf is nats-server.conf plus the tls blocks. Every binary
# gets NATS_TLS_CA/CERT/KEY and the gateway GATEWAY_TLS_CERT/KEY (values
# you set are kept), also in .run/tls.env for `just scale`.
set -euo pipefail
cluster=; tls=
for arg in "$@"; do
  case $arg in
    --cluster) cluster=1 ;;
    --tls) tls=1 ;;
    *) echo "usage: up.sh [--cluster] [--tls]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin_dir=$(scripts/bin-dir.sh)
tools=$(scripts/install-tools.sh)
[ -n "$tools" ] && export PATH="$tools:$PATH"
mkdir -p .run/logs
. scripts/secrets.sh
# The gateway checks bearer tokens (README, Security): unless a JWKS or
# OMS_AUTH=off is set, it gets OMS_JWT_SECRET, a development secret made
# on first start (a secret the user set is kept). `just token` signs with it.
if [ -z "${OMS_JWT_PUBLIC_KEYS:-}" ] && [ "${OMS_AUTH:-}" != off ]; then
  OMS_JWT_SECRET=$(scripts/jwt-secret.sh)
  export OMS_JWT_SECRET
fi
: > .run/pids
: > .run/nats-pids

conf=nats-server.conf
rm -f .run/tls.env
if [ -n "$tls" ]; then
  certs=$(scripts/tls.sh)
  block="{ cert_file: \"$certs/server.pem\", key_file: \"$certs/server-key.pem\", ca_file: \"$certs/ca.pem\", verify: true, timeout: 5 }"
  {
    echo "# Made by scripts/up.sh --tls: nats-server.conf, with TLS required."
    echo 'include "../nats-server.conf"'
    echo "tls $block"
    if [ -n "$cluster" ]; then echo "cluster { tls $block }"; fi
  } > .run/nats-tls.conf
  conf=.run/nats-tls.conf
  {
    echo "export NATS_TLS_CA=\"\${NATS_TLS_CA:-$certs/ca.pem}\""
    echo "export NATS_TLS_CERT=\"\${NATS_TLS_CERT:-$certs/client.pem}\""
    echo "export NATS_TLS_KEY=\"\${NATS_TLS_KEY:-$certs/client-key.pem}\""
    echo "export GATEWAY_TLS_CERT=\"\${GATEWAY_TLS_CERT:-$certs/server.pem}\""
    echo "export GATEWAY_TLS_KEY=\"\${GATEWAY_TLS_KEY:-$certs/server-key.pem}\""
  } > .run/tls.env
  . .run/tls.env
fi

stop() {
  trap - INT TERM EXIT
  echo "stopping..."
  scripts/down.sh
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

wait_for_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done
  echo "nothing listens on $1; see .run/logs" >&2; exit 1
}

if [ -n "$cluster" ]; then
  routes=nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224
  urls=()
  for i in 0 1 2; do
    mkdir -p ".run/cluster/n$i"
    nats-server -c "$conf" -n "oms-$i" -p $((4222 + i)) -m $((8222 + i)) -sd ".run/cluster/n$i" \
      --cluster_name oms --cluster "nats://127.0.0.1:$((6222 + i))" --routes "$routes" \
      > ".run/logs/nats-server-$i.log" 2>&1 &
    echo $! >> .run/nats-pids
    urls+=("nats://127.0.0.1:$((4222 + i))")
  done
  for i in 0 1 2; do wait_for_port $((4222 + i)); done
  NATS_URL=$(IFS=,; echo "${urls[*]}")
  export NATS_URL OMS_REPLICAS=3
  where="a three-node cluster on 127.0.0.1:4222-4224"
else
  mkdir -p .run/nats
  nats-server -c "$conf" -sd .run/nats > .run/logs/nats-server.log 2>&1 &
  echo $! >> .run/nats-pids
  wait_for_port 4222
  export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
  where="nats-server on 127.0.0.1:4222 (monitor :8222)"
fi

# The bucket and the streams, made by the one user allowed to.
(as_own_user oms-init "$bin_dir"/oms-init) > .run/logs/oms-init.log 2>&1 ||
  { echo "oms-init failed; see .run/logs/oms-init.log" >&2; exit 1; }
for bin in $(scripts/binaries.sh); do
  as_own_user "$bin" "$bin_dir/$bin" > ".run/logs/$bin.log" 2>&1 &
  echo $! >> .run/pids
done
gateway=${GATEWAY_ADDR:-127.0.0.1:8080}
if [ -n "${GATEWAY_TLS_CERT:-}" ]; then gateway="https://$gateway"; fi
echo "$where, gateway on $gateway"
tls_flags=
if [ -n "$tls" ]; then tls_flags=" --tlsca $NATS_TLS_CA --tlscert $NATS_TLS_CERT --tlskey $NATS_TLS_KEY"; fi
echo "nats CLI: nats context save oms --server ${NATS_URL%%,*} --user admin --password \$OMS_NATS_PASSWORD_ADMIN$tls_flags --select"
echo "          (after: . .run/secrets.env)"
echo "logs in .run/logs; Ctrl-C stops everything"
echo "a token for curl: TOKEN=\$(just token staff)   then  -H \"authorization: Bearer \$TOKEN\""
if [ -n "$tls" ]; then echo "curl trusts the local CA with: --cacert $certs/ca.pem"; fi
wait
