#!/usr/bin/env bash
# Starts N more instances of one binary against the stack of `just up`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=$("$root"/scripts/bin-dir.sh)
bin=$1; n=${2:-1}
[ -x "$root/$bin_dir/$bin" ] || { echo "no binary $bin (try: $(scripts/binaries.sh | tr '\n' ' '))"; exit 1; }
. "$root/scripts/secrets.sh"
# Started with `just up --tls`: the same client certificates (yours when set).
if [ -f "$root/.run/tls.env" ]; then . "$root/.run/tls.env"; fi
if [ "$bin" = gateway ] && [ -z "${OMS_JWT_PUBLIC_KEYS:-}" ] && [ "${OMS_AUTH:-}" != off ]; then
  OMS_JWT_SECRET=$("$root/scripts/jwt-secret.sh")  # the same secret as `just up`'s
  export OMS_JWT_SECRET
fi
mkdir -p "$root/.run/logs"
for i in $(seq "$n"); do
  as_own_user "$bin" "$root/$bin_dir/$bin" >> "$root/.run/logs/$bin.$i.log" 2>&1 &
  echo $! >> "$root/.run/pids"
  echo "started $bin (pid $!)"
done
