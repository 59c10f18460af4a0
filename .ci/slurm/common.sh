# What up.sh and down.sh share: where the cluster's state lives, the mark on the config files
# up.sh writes, and how a recorded daemon is recognised (sourced, not run).
HOME_DIR=${MTL_SLURM_DIR:-/tmp/mtl-slurm}
OWNER="# written by mtl-sparse-bench .ci/slurm/up.sh"

running() {  # running NAME: the recorded PID is alive and is a NAME process
  local file="$HOME_DIR/pid/$1.pid"
  [ -s "$file" ] && [ "$(cat "/proc/$(cat "$file")/comm" 2>/dev/null)" = "$1" ]
}
