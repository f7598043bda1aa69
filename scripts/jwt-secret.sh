#!/usr/bin/env bash
# Prints the HS256 secret the development gateway checks bearer tokens
# with: OMS_JWT_SECRET when the user set it (never replaced), else the one
# in .secrets/jwt-secret (git-ignored, mode 600), made on first use from
# 32 random bytes.
set -euo pipefail
if [ -n "${OMS_JWT_SECRET:-}" ]; then
  printf '%s\n' "$OMS_JWT_SECRET"
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
file="$root/.secrets/jwt-secret"
if [ ! -s "$file" ]; then
  (umask 077 && mkdir -p "$root/.secrets" &&
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file.tmp" && mv "$file.tmp" "$file")
fi
cat "$file"
