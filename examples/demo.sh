#!/usr/bin/env bash
# demo.sh - `make demo`: run procbusd on examples/demo/procbus.conf and show `procbus status`
# every two seconds until Ctrl-C (or DEMO_SECONDS, default 20 without a terminal), then stop
# everything cleanly.
set -u
bin=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
export PROCBUS_DEMO_DIR
PROCBUS_DEMO_DIR=$(mktemp -d /tmp/procbus-demo.XXXXXX)
seg="procbus-demo-$$"
sock="$PROCBUS_DEMO_DIR/procbus.sock"
conf="$PROCBUS_DEMO_DIR/procbus.conf"
{
    printf '[procbusd]\nsegment = %s\nsocket = %s\n\n' "$seg" "$sock"
    cat "$here/demo/procbus.conf"
} >"$conf"
if [ -t 1 ]; then limit=${DEMO_SECONDS:-0}; else limit=${DEMO_SECONDS:-20}; fi

"$bin/procbusd" -c "$conf" 2>"$PROCBUS_DEMO_DIR/procbusd.log" &
pbd=$!
stop=0
trap 'stop=1' INT TERM
echo "procbusd (pid $pbd) supervises web, db, api (waits for db to be ready) and flaky."
if [ "$(id -u)" -eq 0 ]; then segdir=/run/procbus; else segdir=/dev/shm; fi
echo "Segment $segdir/$seg, logs in $PROCBUS_DEMO_DIR. Ctrl-C stops it cleanly."
start=$SECONDS
while [ $stop -eq 0 ] && kill -0 $pbd 2>/dev/null; do
    sleep 2 || true
    [ $stop -eq 1 ] && break
    echo
    echo "--- procbus status (t=$((SECONDS - start))s; read from shared memory, no daemon round trip)"
    "$bin/procbus" -s "$seg" status
    if [ $(((SECONDS - start) % 10)) -lt 2 ]; then
        echo "--- procbus ps --all --tree (each program's processes, as procbusd traced them)"
        "$bin/procbus" -s "$seg" ps --all --tree
    fi
    if [ "$limit" -gt 0 ] && [ $((SECONDS - start)) -ge "$limit" ]; then break; fi
done
trap - INT TERM
echo
echo "--- stopping: procbus shutdown (dependents first)"
"$bin/procbus" -S "$sock" shutdown >/dev/null 2>&1 || kill -TERM $pbd 2>/dev/null
wait $pbd
rc=$?
"$bin/procbus" -s "$seg" status
echo "procbusd exited with status $rc"
rm -rf "${segdir:?}/$seg" "$PROCBUS_DEMO_DIR"
exit $rc
