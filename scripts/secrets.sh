# Sourced by up.sh and scale.sh: every NATS user's password, as
# OMS_NATS_PASSWORD_<USER> (the names nats-users.conf reads). Made up once,
# on first start, into .run/secrets.env (git-ignored, mode 600); a value
# already set in the environment wins and is never overwritten.
secrets="$root/.run/secrets.env"
mkdir -p "$root/.run"
[ -f "$secrets" ] || (umask 077 && : > "$secrets")
for user in $(grep -o '{ user: "[^"]*"' "$root/nats-users.conf" | cut -d'"' -f2); do
  var=OMS_NATS_PASSWORD_$(echo "$user" | tr 'a-z-' 'A-Z_')
  grep -q "^export $var=" "$secrets" ||
    echo "export $var=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >> "$secrets"
done
set_by_user=$(export -p | grep ' OMS_NATS_PASSWORD_' || true)
# shellcheck disable=SC1090
. "$secrets"
eval "$set_by_user"

# Becomes a binary running as its own NATS user (unless NATS_CREDS names
# other credentials). It execs, so call it in a subshell or with `&`: the pid
# `$!` is then the binary's own, and `just down` stops the binary itself.
as_own_user() {
  local bin=$1; shift
  if [ -n "${NATS_CREDS:-}" ]; then exec "$@"; fi
  local var
  var=OMS_NATS_PASSWORD_$(echo "$bin" | tr 'a-z-' 'A-Z_')
  NATS_USER=$bin NATS_PASSWORD=${!var} exec "$@"
}
