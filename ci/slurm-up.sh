#!/usr/bin/env bash
# Install (if needed) and start a single-node Slurm cluster on localhost. Run as root.
# SLURM_ACCOUNTING=1 also installs/starts MariaDB + slurmdbd so that sacct works.
# Writes PIDs to $SLURM_CI_DIR/<daemon>.pid
set -euo pipefail
SLURM_CI_DIR=${SLURM_CI_DIR:-/tmp/slurm-ci}
SLURM_ACCOUNTING=${SLURM_ACCOUNTING:-0}
mkdir -p "$SLURM_CI_DIR"

PKGS="slurmctld slurmd slurm-client munge"
[ "$SLURM_ACCOUNTING" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- munge: key (postinst normally creates it), socket dir, daemon ---
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
  >"$SLURM_CI_DIR/munged.out" 2>&1 &
echo $! >"$SLURM_CI_DIR/munged.pid"
for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n | unmunge >/dev/null

# --- slurm.conf ---
if [ "$SLURM_ACCOUNTING" = 1 ]; then
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
  GATHER=jobacct_gather/linux
else
  ACCT_LINES="AccountingStorageType=accounting_storage/none"
  GATHER=jobacct_gather/none
fi
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2/1024) - 512}' /proc/meminfo)
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=${GATHER}
${ACCT_LINES}
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoInAddrAny
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# --- optional accounting: MariaDB (unix socket only) + slurmdbd ---
if [ "$SLURM_ACCOUNTING" = 1 ]; then
  install -d -o mysql -g mysql /run/mysqld
  /usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
    >"$SLURM_CI_DIR/mariadbd.out" 2>&1 &
  echo $! >"$SLURM_CI_DIR/mariadbd.pid"
  for _ in $(seq 1 100); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  mariadb -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat >/etc/slurm/slurmdbd.conf <<DBD
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
DBD
  chmod 600 /etc/slurm/slurmdbd.conf
  slurmdbd -D >"$SLURM_CI_DIR/slurmdbd.out" 2>&1 &
  echo $! >"$SLURM_CI_DIR/slurmdbd.pid"
  for _ in $(seq 1 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
  sacctmgr -n list cluster >/dev/null
fi

# --- daemons (foreground mode, backgrounded here so that we own the PIDs) ---
slurmctld -D -i >"$SLURM_CI_DIR/slurmctld.out" 2>&1 &
echo $! >"$SLURM_CI_DIR/slurmctld.pid"
slurmd -D -N localhost >"$SLURM_CI_DIR/slurmd.out" 2>&1 &
echo $! >"$SLURM_CI_DIR/slurmd.pid"

for _ in $(seq 1 100); do
  [ "$(sinfo -h -n localhost -o '%T' 2>/dev/null)" = idle ] && break
  sleep 0.2
done
sinfo -h -n localhost -o '%T' | grep -qx idle || {
  echo "slurm did not come up" >&2
  tail -n 30 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2
  exit 1
}
echo "slurm up: $(sinfo -h -o '%P %a %D %T %N')"
