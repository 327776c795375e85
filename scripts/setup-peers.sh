#!/usr/bin/env bash
# Configuration the real peers need on this machine (see shared notes/machine.md):
# podman/buildah must use runc and stay under the hard nofile limit.
set -eu
conf=/etc/containers/containers.conf
if [ -d /etc/containers ] && ! grep -q 'gantry-setup' "$conf" 2>/dev/null; then
  hard=$(ulimit -Hn)
  cat > "$conf" <<CONF
# gantry-setup: written by gantry's scripts/setup-peers.sh
[containers]
default_ulimits = ["nofile=${hard}:${hard}", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
