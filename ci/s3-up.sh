#!/usr/bin/env bash
# Start moto's standalone S3-compatible server on loopback (moto[server] is in the dev extras).
set -euo pipefail
S3_DIR=${LOOPC_S3_DIR:-/tmp/loopc-s3}
S3_PORT=${LOOPC_S3_PORT:-55000}
MOTO=${LOOPC_MOTO_SERVER:-$(dirname "$0")/../.venv/bin/moto_server}
mkdir -p "$S3_DIR"
if [ -f "$S3_DIR/moto.pid" ] && kill -0 "$(cat "$S3_DIR/moto.pid")" 2>/dev/null; then
  echo "s3 already running: http://127.0.0.1:$S3_PORT"; exit 0
fi
setsid "$MOTO" -H 127.0.0.1 -p "$S3_PORT" > "$S3_DIR/moto.log" 2>&1 < /dev/null &
echo $! > "$S3_DIR/moto.pid"
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$S3_PORT/', timeout=1)" 2>/dev/null
  then echo "s3 ready: http://127.0.0.1:$S3_PORT"; exit 0; fi
  sleep 0.2
done
echo "moto server did not answer on port $S3_PORT; log:" >&2; tail -20 "$S3_DIR/moto.log" >&2; exit 1
