#!/usr/bin/env bash
# demo.sh - run the demo publisher and a reader following it; Ctrl-C stops both cleanly.
set -u
bin=${1:-build/examples}
seg="procbus-demo-$$"
secs=${DEMO_SECONDS:-8}
"$bin/demo_publisher" "$seg" "$secs" &
pub=$!
trap 'kill -INT $pub 2>/dev/null' INT TERM
"$bin/demo_reader" "$seg"
wait $pub 2>/dev/null
rm -f "/dev/shm/$seg"
