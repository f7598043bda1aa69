#!/usr/bin/env bash
# Names every binary `just up` starts: one per file in handlers/src/bin, then the gateway.
root=$(cd "$(dirname "$0")/.." && pwd)
for f in "$root"/handlers/src/bin/*.rs; do basename "$f" .rs; done
[ -d "$root/gateway" ] && echo gateway
