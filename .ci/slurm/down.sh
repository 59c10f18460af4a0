#!/usr/bin/env bash
# Stop what .ci/slurm/up.sh started, and nothing else: each daemon is signalled through the PID
# recorded in $MTL_SLURM_DIR/pid/ and only while that PID is still a process of that name. Jobs
# still queued or running on this cluster are cancelled first.  --purge also deletes the state
# folder and the config files up.sh wrote.
set -uo pipefail

source "$(dirname "$0")/common.sh"
say() { echo "[slurm down] $*"; }

if running slurmctld; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    say "cancelling jobs $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null
    for _ in $(seq 30); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 1; done
  fi
fi
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  file="$HOME_DIR/pid/$name.pid"
  [ -e "$file" ] || continue
  if running "$name"; then
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null
    for _ in $(seq 300); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if running "$name"; then say "$name (pid $pid) outlived SIGTERM by 30 s: SIGKILL"; kill -9 "$pid"; fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$file"
done
if [ "${1:-}" = "--purge" ]; then
  for conf in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [ -f "$conf" ] && head -1 "$conf" | grep -qF "$OWNER"; then rm -f "$conf"; fi
  done
  case "$HOME_DIR" in /|/tmp|/var|/etc|/root|/home|"") say "not deleting $HOME_DIR" ;; *) rm -rf "$HOME_DIR" ;; esac
fi
exit 0
