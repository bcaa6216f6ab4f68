#!/usr/bin/env bash
# Stop the daemons started by slurm-up.sh, by PID (only if the PID still runs that daemon).
SLURM_CI_DIR=${SLURM_CI_DIR:-/tmp/slurm-ci}
for d in slurmd slurmctld slurmdbd mariadbd munged; do
  f="$SLURM_CI_DIR/$d.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f"); rm -f "$f"
  [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$d" ] || continue
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
done
exit 0
