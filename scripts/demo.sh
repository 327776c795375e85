#!/usr/bin/env bash
# `make demo`: gantry end to end, in a throwaway root so the user's store is untouched.
#   1. a busybox root filesystem from Debian's busybox-static, imported as busybox:latest
#   2. images / inspect / history of it, system df
#   3. save, then podman load + podman run of the archive (private podman storage)
#   4. load of the same archive into a second gantry root, checked with system check
# Every step prints the command it runs. DEMO_DIR (default: a new dir on /dev/shm) holds it all.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
gantry="$here/.venv/bin/gantry"
base=/dev/shm; [ -d "$base" ] || base=${TMPDIR:-/tmp}
demo=${DEMO_DIR:-$(mktemp -d "$base/gantry-demo-XXXXXX")}
export GANTRY_ROOT="$demo/root"
podman=(podman --root "$demo/podman/root" --runroot "$demo/podman/run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)

cleanup() {
  "${podman[@]}" rm -af >/dev/null 2>&1 || true
  if [ -z "${KEEP_DEMO:-}" ]; then rm -rf "$demo"; else echo "demo files kept in $demo"; fi
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

step "a busybox root filesystem (busybox-static, applet symlinks, /etc/passwd, /etc/group)"
run "$here/scripts/busybox-rootfs.sh" "$demo/rootfs"
run tar -C "$demo/rootfs" -cf "$demo/busybox-rootfs.tar" .

step "import it as busybox:latest (GANTRY_ROOT=$GANTRY_ROOT)"
run "$gantry" import --change 'CMD ["sh"]' "$demo/busybox-rootfs.tar" busybox:latest

step "look at it"
run "$gantry" images
run "$gantry" inspect busybox:latest
run "$gantry" history busybox:latest
run "$gantry" system df

step "save it, then load and run it with podman"
run "$gantry" save -o "$demo/busybox.tar" busybox:latest
run tar -tvf "$demo/busybox.tar"
run "${podman[@]}" load -i "$demo/busybox.tar"
run "${podman[@]}" run --rm --net=none busybox:latest sh -c 'echo "hello from a gantry image: $(busybox | head -1)"'

step "and back: load the same archive into a second gantry root"
run env GANTRY_ROOT="$demo/root2" "$gantry" load -i "$demo/busybox.tar"
run env GANTRY_ROOT="$demo/root2" "$gantry" images --no-trunc
run env GANTRY_ROOT="$demo/root2" "$gantry" system check
