#!/bin/sh
# seatq image health check (/usr/local/bin/seatq-healthcheck), run inside the container.
# Healthy when the server answers PING with PONG (it answers LOADING while it reads its data)
# and seatq's commands are registered (COMMAND INFO queue.enqueue names the command only when
# the module is loaded). Both are keyless, so this also works on replicas and cluster nodes.
# Uses SEATQ_PASSWORD / SEATQ_PASSWORD_FILE like the entrypoint; port 6379 on loopback.
set -eu

cli=$(command -v valkey-cli || command -v redis-cli || true)
if [ -z "$cli" ]; then
    echo "seatq-healthcheck: neither valkey-cli nor redis-cli is in PATH" >&2
    exit 1
fi
if [ -n "${SEATQ_PASSWORD_FILE:-}" ]; then
    SEATQ_PASSWORD=$(cat "$SEATQ_PASSWORD_FILE")
fi
# Only when set: an empty REDISCLI_AUTH would still send AUTH.
if [ -n "${SEATQ_PASSWORD:-}" ]; then
    REDISCLI_AUTH=$SEATQ_PASSWORD
    export REDISCLI_AUTH
fi

pong=$("$cli" -h 127.0.0.1 -p 6379 PING 2>&1 || true)
if [ "$pong" != PONG ]; then
    echo "seatq-healthcheck: PING answered: $pong" >&2
    exit 1
fi
info=$("$cli" -h 127.0.0.1 -p 6379 COMMAND INFO queue.enqueue 2>&1 || true)
case "$info" in
    *queue.enqueue*) echo "seatq-healthcheck: ok" ;;
    *) echo "seatq-healthcheck: the seatq module is not loaded (COMMAND INFO queue.enqueue: $info)" >&2
       exit 1 ;;
esac
