#!/usr/bin/env bash
# `just up --tls`: a local certificate authority and the certificates made
# with it, in .secrets/tls/ (git-ignored, keys mode 600) or the folder given
# as the argument (the tests make theirs so), each made once on first use
# and reused after. Prints the folder.
#   ca.pem, ca-key.pem          the CA (10 years) that signs the two below
#   server.pem, server-key.pem  nats-server (and the gateway's HTTPS): SAN
#                               127.0.0.1, ::1 and localhost; also a client
#                               certificate, as a cluster node presents it
#                               on the routes it opens
#   client.pem, client-key.pem  the clients' certificate (mutual TLS)
# Needs openssl (Debian package `openssl`).
set -euo pipefail
command -v openssl >/dev/null ||
  { echo "openssl is needed for --tls (Debian: apt-get install openssl)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.secrets/tls}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
chmod 700 "$dir"
cd "$dir"

key() { (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null); }

if [ ! -s ca.pem ] || [ ! -s ca-key.pem ]; then
  key ca-key.pem
  openssl req -x509 -new -key ca-key.pem -out ca.pem -days 3650 -subj "/CN=OMS local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f server.pem client.pem # signed by a CA that is gone
fi

# sign <name> <CN> <extensions>: <name>-key.pem and <name>.pem, signed by the CA.
sign() {
  [ -s "$1.pem" ] && [ -s "$1-key.pem" ] && return
  key "$1-key.pem"
  printf '%s\n' "$3" > "$1.ext"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" 2>/dev/null |
    openssl x509 -req -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
      -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.ext" ca.srl
}
sign server "OMS nats-server" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
sign client "OMS client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
echo "$dir"
