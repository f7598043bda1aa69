#!/usr/bin/env bash
# `just token staff|customer [sub]`: prints a bearer token for the gateway
# of `just up`, signed with its development secret (scripts/jwt-secret.sh),
# valid for 12 hours. Use:  TOKEN=$(just token staff)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -n "${OMS_JWT_PUBLIC_KEYS:-}" ]; then
  echo "OMS_JWT_PUBLIC_KEYS is set: get tokens from your issuer (README, Security)" >&2
  exit 2
fi
OMS_JWT_SECRET=$(scripts/jwt-secret.sh)
export OMS_JWT_SECRET
# Quiet and a no-op when the binaries are current; an old gateway binary
# would not know the `token` command.
cargo build -q --profile "${OMS_PROFILE:-dev}" -p oms-handlers -p gateway --bins
exec "$(scripts/bin-dir.sh)"/gateway token "$@"
