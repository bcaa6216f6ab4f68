#!/usr/bin/env bash
# Start a throwaway PostgreSQL (Debian's packages) on loopback: private cluster, trust auth, no systemd.
# Prints nothing but progress; the URL is postgresql://loopc@127.0.0.1:$LOOPC_PG_PORT/loopc.
set -euo pipefail
PG_DIR=${LOOPC_PG_DIR:-/tmp/loopc-pg}
PG_PORT=${LOOPC_PG_PORT:-55432}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pgbin" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
if [ ! -f "$PG_DIR/PG_VERSION" ]; then
  mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  as_postgres "$pgbin/initdb -D $PG_DIR -A trust -U postgres" >/dev/null
fi
if ! as_postgres "$pgbin/pg_ctl -D $PG_DIR status" >/dev/null 2>&1; then
  as_postgres "$pgbin/pg_ctl -D $PG_DIR -l $PG_DIR/server.log -w \
    -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200' start" >/dev/null
fi
psql="$pgbin/psql -h 127.0.0.1 -p $PG_PORT -U postgres -v ON_ERROR_STOP=1 -q"
$psql -tc "select 1 from pg_roles where rolname = 'loopc'" | grep -q 1 \
  || $psql -c "create role loopc login superuser"
$psql -tc "select 1 from pg_database where datname = 'loopc'" | grep -q 1 \
  || $psql -c "create database loopc owner loopc"
echo "postgres ready: postgresql://loopc@127.0.0.1:$PG_PORT/loopc"
