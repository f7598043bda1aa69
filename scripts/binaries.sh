#!/usr/bin/env bash
# Names every binary `just up` keeps running: one per file in handlers/src/bin
# (but oms-init, the bootstrap step that runs once before them, and oms-verify,
# the audit `just verify` runs), then the gateway.
root=$(cd "$(dirname "$0")/.." && pwd)
for f in "$root"/handlers/src/bin/*.rs; do
  name=$(basename "$f" .rs)
  [ "$name" = oms-init ] || [ "$name" = oms-verify ] || echo "$name"
done
[ -d "$root/gateway" ] && echo gateway
