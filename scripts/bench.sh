#!/usr/bin/env bash
# `just bench`: one benchmark run on a fresh stack (ephemeral ports, temp
# store; never the `just up` ports). Installs wrk from Debian when missing,
# builds every binary in release, runs target/release/oms-bench.
# Settings: BENCH_SECS (per case, default 5), BENCH_MAX_ORDERS (default
# 1000000), BENCH_ONLY (subset of echo,nats,http,hot,history,cold,growth),
# BENCH_HISTORY_ENTRIES (default 100000), BENCH_LEDGER=off (no inventory-ledger).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=$(scripts/install-tools.sh)
[ -n "$tools" ] && export PATH="$tools:$PATH"
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian package)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi
cargo build --release --workspace --bins
exec target/release/oms-bench
