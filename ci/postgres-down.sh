#!/usr/bin/env bash
# Stop the cluster postgres-up.sh started (pg_ctl stops the postmaster by the PID in its data folder).
PG_DIR=${LOOPC_PG_DIR:-/tmp/loopc-pg}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] && [ -f "$PG_DIR/postmaster.pid" ] || exit 0
if [ "$(id -u)" = 0 ]; then
  su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $PG_DIR stop -m fast" >/dev/null || true
else
  "$pgbin/pg_ctl" -D "$PG_DIR" stop -m fast >/dev/null || true
fi
exit 0
