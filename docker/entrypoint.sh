#!/bin/sh
# seatq image entrypoint (/usr/local/bin/seatq-entrypoint). POSIX sh: no bash in some bases.
#   seatq-server [server options]   start redis-server (valkey-server in a Valkey base) with
#                                   /etc/seatq/seatq.conf; options are appended to it. The default.
#   --option value ...              the same: `docker run seatq --replicaof host 6379`
#   anything else                   run as given (`docker run -it seatq redis-cli`, `sh`, ...)
#
# SEATQ_PASSWORD, or SEATQ_PASSWORD_FILE (a file holding it, e.g. a Docker secret), sets
# requirepass and masterauth (the same password, so a replica can authenticate to its primary).
# They are handed to the server on stdin (`redis-server FILE [options] -`), not as arguments,
# so they do not show in `ps` or in the container's command line. Without a password protected
# mode stays on: only clients inside the container (loopback) may connect.
set -eu

conf=/etc/seatq/seatq.conf

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- seatq-server "$@"
fi
if [ "$1" != seatq-server ]; then
    exec "$@"
fi
shift

server=$(command -v valkey-server || command -v redis-server || true)
if [ -z "$server" ]; then
    echo "seatq-entrypoint: neither valkey-server nor redis-server is in PATH" >&2
    exit 1
fi

# Data files readable by the server's user only (as the official image does), unless the
# container was started with a umask of its own.
if [ "$(umask)" = 0022 ]; then
    umask 0077
fi

if [ -n "${SEATQ_PASSWORD_FILE:-}" ]; then
    SEATQ_PASSWORD=$(cat "$SEATQ_PASSWORD_FILE")
fi
password=${SEATQ_PASSWORD:-}
unset SEATQ_PASSWORD

if [ -z "$password" ]; then
    echo "seatq-entrypoint: SEATQ_PASSWORD is not set: protected mode is on, only clients" \
         "inside this container can connect (see docs/docker.md)" >&2
    exec "$server" "$conf" "$@"
fi

case "$password" in
    *"
"*) echo "seatq-entrypoint: SEATQ_PASSWORD must be a single line" >&2; exit 1 ;;
esac
# A double-quoted config value: escape backslashes and double quotes.
quoted=$(printf '%s' "$password" | sed 's/[\\"]/\\&/g')
# `-` must be the last argument: the server then reads more configuration from stdin.
exec "$server" "$conf" "$@" - <<EOF
requirepass "$quoted"
masterauth "$quoted"
EOF
