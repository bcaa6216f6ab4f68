#!/usr/bin/env bash
# Stop the moto server s3-up.sh started, by its PID (only if that PID still runs moto).
S3_DIR=${LOOPC_S3_DIR:-/tmp/loopc-s3}
f="$S3_DIR/moto.pid"
[ -f "$f" ] || exit 0
pid=$(cat "$f"); rm -f "$f"
grep -q moto "/proc/$pid/cmdline" 2>/dev/null || exit 0
kill -TERM "$pid"
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null
exit 0
