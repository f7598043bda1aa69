#!/usr/bin/env bash
# Runs oms-verify once against the stack of `just up`, as its own NATS user
# (it may read the bucket and the ledger, nothing else). Its exit status is
# the answer: 0 the books balance, 1 a product disagrees (named on stdout),
# 2 it could not read them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/secrets.sh
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
(as_own_user oms-verify "$(scripts/bin-dir.sh)"/oms-verify)
