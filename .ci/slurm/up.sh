#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for the SLURM tests: munged, a private
# MariaDB with slurmdbd (submitit learns that a job was cancelled, timed out or killed only from
# sacct, so accounting must be on), slurmctld and slurmd. Debian 12, as root, no systemd needed.
#
# Idempotent: a daemon whose PID file names a live process of that name is left running; missing
# packages are installed with apt-get. Stop with .ci/slurm/down.sh (it stops only these PIDs).
#
#   MTL_SLURM_DIR   state, spool, logs, PID files, database  (default /tmp/mtl-slurm)
#   MTL_SLURM_DB_PORT  the private MariaDB's port on 127.0.0.1  (default 3307)
#
# Partitions: debug (default) and debug-urgent, whose jobs preempt debug jobs (requeued).
set -euo pipefail

source "$(dirname "$0")/common.sh"
DB_PORT=${MTL_SLURM_DB_PORT:-3307}
SLURM_CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
STARTED=$(date +%s)

say() { echo "[slurm up] $*"; }
fail() { echo "[slurm up] error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (the daemons run as root here)"
mkdir -p "$HOME_DIR"/{pid,log,state,spool,run,db}
chmod 755 "$HOME_DIR"

# --- packages -------------------------------------------------------------------------------
missing=0
for binary in slurmctld slurmd slurmdbd sinfo munged mariadbd mariadb-install-db; do
  command -v "$binary" >/dev/null || missing=1
done
if [ "$missing" -eq 1 ]; then
  say "installing slurm-wlm, munge and mariadb-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    slurmctld slurmd slurmdbd slurm-client munge mariadb-server >"$HOME_DIR/log/apt.log" 2>&1 \
    || { tail -20 "$HOME_DIR/log/apt.log" >&2; fail "apt-get install failed (log above)"; }
fi

# --- daemon bookkeeping ---------------------------------------------------------------------
halt() {  # halt NAME: stop our NAME (a changed config needs a restart)
  running "$1" || return 0
  local pid; pid=$(cat "$HOME_DIR/pid/$1.pid")
  kill "$pid"; for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$HOME_DIR/pid/$1.pid"
}
start() {  # start NAME COMMAND...: detached, own session, no inherited descriptors, PID recorded
  local name=$1; shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}; [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@" </dev/null >>"$HOME_DIR/log/$name.out" 2>&1
  ) &
  echo $! >"$HOME_DIR/pid/$name.pid"
  for _ in $(seq 50); do running "$name" && break; sleep 0.1; done
  running "$name" || fail "$name did not start: $(tail -3 "$HOME_DIR/log/$name.out")"
  say "$name started (pid $(cat "$HOME_DIR/pid/$name.pid"))"
}
until_ok() {  # until_ok SECONDS WHAT COMMAND...
  local seconds=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what not ready after $seconds s (logs: $HOME_DIR/log)"
    sleep 0.3
  done
}
write_if_changed() {  # write_if_changed FILE TEXT: 0 when rewritten; a foreign file is kept aside
  if [ -f "$1" ] && ! head -1 "$1" | grep -qF "$OWNER"; then cp -p "$1" "$1.before-mtl"; fi
  [ -f "$1" ] && [ "$(cat "$1")" = "$2" ] && return 1
  mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" >"$1"; return 0
}

# --- munge ----------------------------------------------------------------------------------
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
if ! (munge -n | unmunge) >/dev/null 2>&1; then
  start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
  until_ok 20 munged sh -c 'munge -n | unmunge'
fi

# --- slurm.conf (sacctmgr reads it too) -----------------------------------------------------
NODE=$(hostname -s)
HARDWARE=$(slurmd -C | head -1 | cut -d' ' -f2-)  # CPUs=... RealMemory=..., without NodeName
if write_if_changed "$SLURM_CONF" "$OWNER
ClusterName=mtl
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire + 1 s before it may start again (default 120 s)
AuthInfo=cred_expire=10
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$HOME_DIR/state
SlurmdSpoolDir=$HOME_DIR/spool
SlurmctldPidFile=$HOME_DIR/run/slurmctld.pid
SlurmdPidFile=$HOME_DIR/run/slurmd.pid
SlurmctldLogFile=$HOME_DIR/log/slurmctld.log
SlurmdLogFile=$HOME_DIR/log/slurmd.log
# no cgroups here: processes are tracked by parent pid, tasks are not confined
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
InactiveLimit=0
KillWait=10
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=$NODE NodeAddr=127.0.0.1 $HARDWARE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=5
PartitionName=debug-urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF"
then CONF_CHANGED=1; else CONF_CHANGED=0; fi

# --- accounting: a private MariaDB and slurmdbd ---------------------------------------------
DB="$HOME_DIR/db"
chown mysql:mysql "$DB"
if [ ! -d "$DB/data/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$DB/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$HOME_DIR/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
fi
sql() { mariadb --no-defaults --socket="$DB/socket" -uroot "$@"; }
if ! running mariadbd; then
  start mariadbd /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB/data" \
    --socket="$DB/socket" --pid-file="$DB/mariadbd.pid" --bind-address=127.0.0.1 --port="$DB_PORT" \
    --log-error="$HOME_DIR/log/mariadbd.err" --innodb-buffer-pool-size=64M
  until_ok 60 mariadbd sql -e 'SELECT 1'
fi
sql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
if write_if_changed "$DBD_CONF" "$OWNER
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$HOME_DIR/run/slurmdbd.pid
LogFile=$HOME_DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db"; then halt slurmdbd; fi
chmod 600 "$DBD_CONF"
if ! running slurmdbd; then
  start slurmdbd slurmdbd -D
  until_ok 60 slurmdbd sacctmgr -n list cluster
fi
sacctmgr -n -P list cluster format=cluster | grep -qx mtl || sacctmgr -i add cluster mtl >/dev/null

# --- the controller and the node ------------------------------------------------------------
[ "$CONF_CHANGED" -eq 0 ] || { halt slurmd; halt slurmctld; }
running slurmctld || start slurmctld slurmctld -D
until_ok 60 slurmctld scontrol ping
running slurmd || start slurmd slurmd -D
deadline=$(( $(date +%s) + 60 ))
until sinfo -h -n "$NODE" -o %T | grep -Eqx 'idle|mixed|allocated|completing'; do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
  case "$state" in *drain*|down*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;; esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "node $NODE is $state (logs: $HOME_DIR/log)"
  sleep 0.5
done
say "up in $(( $(date +%s) - STARTED )) s: node $NODE, partitions debug and debug-urgent, logs in $HOME_DIR/log"
